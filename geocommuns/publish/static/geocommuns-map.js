/*
 * geocommuns citizen map: markers, popups in plain French, search, commune filter,
 * "autour de moi" and the accessible list of the places in view.
 * Licence: AGPL-3.0-or-later (geocommuns). Needs Leaflet and Leaflet.markercluster.
 * The page calls GeocommunsMap.init(map, parts, config) once folium has built the map.
 */
(function (global) {
  "use strict";

  var DAY_NAMES = { Mo: "lundi", Tu: "mardi", We: "mercredi", Th: "jeudi", Fr: "vendredi", Sa: "samedi", Su: "dimanche" };
  var MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
    "septembre", "octobre", "novembre", "décembre"];
  var WHEELCHAIR = {
    oui: "Accessible en fauteuil roulant",
    partiel: "Partiellement accessible en fauteuil roulant",
    non: "Non accessible en fauteuil roulant",
  };
  var LICENCES = {
    "etalab-2.0": "Licence Ouverte 2.0 (Etalab)",
    "ODbL-1.0": "ODbL 1.0",
  };
  var LIST_MAX = 200;
  /** What live mode asks the API for in each bbox request (the popup asks for the rest). */
  var LIVE_FIELDS = ["nom", "commune", "code_insee"];
  var NEAR_PER_LAYER = 3;

  // ---- plain French -------------------------------------------------------------------

  function esc(value) {
    return String(value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  /** "08:30" -> "8 h 30", "12:00" -> "12 h"; null when not a time. */
  function frTime(text) {
    var m = /^(\d{1,2}):(\d{2})$/.exec(text);
    if (!m || +m[1] > 24 || +m[2] > 59) return null;
    return +m[1] + " h" + (m[2] === "00" ? "" : " " + m[2]);
  }

  /** "08:30-12:00,13:30-17:00" -> "de 8 h 30 à 12 h et de 13 h 30 à 17 h". */
  function frTimes(text) {
    var parts = text.split(",").map(function (range) {
      var ends = range.trim().split("-");
      if (ends.length !== 2) return null;
      var a = frTime(ends[0]), b = frTime(ends[1]);
      return a && b ? "de " + a + " à " + b : null;
    });
    if (parts.indexOf(null) >= 0) return null;
    return joinFr(parts);
  }

  function joinFr(parts) {
    if (parts.length < 2) return parts.join("");
    return parts.slice(0, -1).join(", ") + " et " + parts[parts.length - 1];
  }

  var DAY_ORDER = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"];

  /**
   * "Mo-Fr" -> "du lundi au vendredi", "Sa,Su" -> "le samedi et le dimanche",
   * "Mo-Tu" -> "le lundi et le mardi" (two days in a row are named one by one).
   */
  function frDays(text) {
    if (text === "Mo-Su") return "tous les jours";
    var parts = [];
    var ok = text.split(",").every(function (item) {
      if (item === "PH") { parts.push("les jours fériés"); return true; }
      var ends = item.split("-");
      if (ends.length === 1 && DAY_NAMES[item]) { parts.push("le " + DAY_NAMES[item]); return true; }
      if (ends.length !== 2 || !DAY_NAMES[ends[0]] || !DAY_NAMES[ends[1]]) return false;
      if (DAY_ORDER.indexOf(ends[1]) - DAY_ORDER.indexOf(ends[0]) === 1) {
        parts.push("le " + DAY_NAMES[ends[0]], "le " + DAY_NAMES[ends[1]]);
      } else {
        parts.push("du " + DAY_NAMES[ends[0]] + " au " + DAY_NAMES[ends[1]]);
      }
      return true;
    });
    return ok ? joinFr(parts) : null;
  }

  /** One rule such as "Mo-Fr 08:30-12:00" or "Su off"; null when it cannot be said simply. */
  function frRule(rule) {
    var text = rule.trim();
    if (text === "24/7") return "ouvert 24 h sur 24, 7 jours sur 7";
    var m = /^([A-Za-z,\-]+)?\s*(.*)$/.exec(text);
    var days = m[1] ? frDays(m[1]) : "tous les jours";
    var rest = m[2].trim();
    if (!days) return null;
    if (rest === "off" || rest === "closed") return "fermé " + days;
    if (!m[1] && !rest) return null;
    var times = frTimes(rest);
    return times ? days + " " + times : null;
  }

  /**
   * OpenStreetMap opening_hours in plain French:
   * "Mo-Fr 08:30-12:00,13:30-17:00; Sa 09:00-12:00" ->
   * "du lundi au vendredi de 8 h 30 à 12 h et de 13 h 30 à 17 h ; le samedi de 9 h à 12 h".
   * Forms it cannot say simply (week numbers, months, sunrise...) are returned as written.
   */
  function openingHours(value) {
    if (!value) return null;
    var rules = String(value).split(";").filter(function (r) { return r.trim(); });
    var said = rules.map(frRule);
    return said.indexOf(null) >= 0 ? String(value) : said.join(" ; ");
  }

  /** "+33565222190" -> "05 65 22 21 90"; other numbers as written. */
  function frPhone(value) {
    var m = /^\+33(\d{9})$/.exec(value);
    if (!m) return value;
    return ("0" + m[1]).replace(/(\d{2})(?=\d)/g, "$1 ");
  }

  /** "2026-06-30" -> "30 juin 2026". */
  function frDate(value) {
    var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value || "");
    if (!m) return value;
    return (+m[3] === 1 ? "1er" : +m[3]) + " " + MONTHS[+m[2] - 1] + " " + m[1];
  }

  /** "1234.5" metres -> "1,2 km"; "850 m". */
  function frDistance(metres) {
    if (metres < 1000) return Math.round(metres / 10) * 10 + " m";
    return (metres / 1000).toFixed(1).replace(".", ",") + " km";
  }

  function frCount(n) {
    return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
  }

  /** Commune names as geocommuns.territory.normalise_name writes them. */
  function normalise(name) {
    var text = String(name).normalize("NFKD").replace(/[^\x00-\x7f]/g, "").toLowerCase();
    text = text.replace(/[\-'`.,()\/]/g, " ");
    return text.split(/\s+/).filter(Boolean).map(function (w) {
      return w === "st" ? "saint" : w === "ste" ? "sainte" : w;
    }).filter(function (w) { return ["le", "la", "les", "l"].indexOf(w) < 0; }).join(" ");
  }

  // ---- state ----------------------------------------------------------------------------

  var S = {
    map: null, cfg: null, parts: null, layers: {}, features: {}, markers: {},
    commune: "", outlinesByCode: {}, tileErrors: 0, fetches: {}, you: null,
  };

  function el(id) { return document.getElementById(id); }

  function status(text) { el("gc-status").textContent = text; }

  function feature(layerId, fields, row) {
    var p = {};
    for (var i = 0; i < fields.length; i++) {
      if (row[i + 2] !== null && row[i + 2] !== undefined && row[i + 2] !== "") p[fields[i]] = row[i + 2];
    }
    return { layer: layerId, lon: row[0], lat: row[1], p: p };
  }

  function fromGeoJSON(layerId, f) {
    var p = {};
    Object.keys(f.properties || {}).forEach(function (k) {
      var v = f.properties[k];
      if (v !== null && v !== undefined && v !== "") p[k] = v;
    });
    if (f.id !== undefined && p.id === undefined) p.id = f.id;
    return { layer: layerId, lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1], p: p };
  }

  // ---- popups ---------------------------------------------------------------------------

  function line(label, html) {
    return html ? '<p><span class="gc-k">' + label + " :</span> " + html + "</p>" : "";
  }

  function popupHtml(f) {
    var p = f.p, layer = S.layers[f.layer];
    var address = [p.adresse, p.complement_adresse, [p.code_postal, p.commune].filter(Boolean).join(" ")]
      .filter(Boolean).map(esc).join("<br>");
    var site = p.site_web ? '<a href="' + esc(p.site_web) + '" target="_blank" rel="noopener">' +
      esc(p.site_web.replace(/^https?:\/\//, "").replace(/\/$/, "")) + "</a>" : "";
    var licences = p.licence ? String(p.licence).split(/\s+AND\s+/) : [];
    var licence = esc(licences.map(function (l) { return LICENCES[l] || l; }).join(" et "));
    var osm = licences.indexOf("ODbL-1.0") >= 0 || p.osm_id;
    var source = [p.attribution, osm && !/openstreetmap/i.test(p.attribution || "")
      ? "© les contributeurs OpenStreetMap" : null].filter(Boolean).map(esc).join(" ; ");
    return '<div class="gc-popup"><h3>' + esc(p.nom || "Sans nom") + "</h3>" +
      '<p class="gc-kind">' + esc(layer.label) + (p.type ? " – " + esc(p.type) : "") + "</p>" +
      line("Adresse", address) +
      line("Horaires", p.horaires ? esc(openingHours(p.horaires))
        : p.horaires_texte ? esc(p.horaires_texte) : "") +  // hours a producer wrote that could not be converted, as written
      line("Téléphone", p.telephone ? '<a href="tel:' + esc(p.telephone) + '">' + esc(frPhone(p.telephone)) + "</a>" : "") +
      line("Courriel", p.courriel ? '<a href="mailto:' + esc(p.courriel) + '">' + esc(p.courriel) + "</a>" : "") +
      line("Site web", site) +
      line("Accès", esc(WHEELCHAIR[p.acces_pmr] || "accessibilité en fauteuil roulant non renseignée")) +
      line("Mis à jour le", p.date_maj ? esc(frDate(p.date_maj)) : "") +
      line("Source", source || (p.source ? esc(p.source) : "")) +
      line("Licence", licence) + "</div>";
  }

  // ---- markers --------------------------------------------------------------------------

  function clusterIcon(cluster, colour) {
    var n = cluster._group && cluster._group.gcOverview
      ? cluster.getAllChildMarkers().reduce(function (sum, m) { return sum + (m.gcCount || 1); }, 0)
      : cluster.getChildCount();
    var size = n < 10 ? 36 : n < 100 ? 42 : n < 1000 ? 48 : 56;
    return L.divIcon({
      html: '<span style="background:' + colour + '">' + frCount(n) + "</span>",
      className: "gc-cluster", iconSize: L.point(size, size),
    });
  }

  function markerFor(f) {
    var layer = S.layers[f.layer];
    var m = L.marker([f.lat, f.lon], { icon: layer.divIcon, title: f.p.nom || layer.label, alt: f.p.nom || layer.label, riseOnHover: true });
    m.bindPopup(function () { return f.partial ? "<p>Chargement…</p>" : popupHtml(f); }, { maxWidth: 320, autoPanPadding: [20, 20] });
    if (f.partial) m.on("popupopen", function () { completeFeature(f, m); });
    m.gcFeature = f;
    return m;
  }

  /** Live mode loads only what markers and lists need; a popup asks for the whole feature. */
  function completeFeature(f, marker) {
    var url = S.cfg.api + "/collections/" + encodeURIComponent(f.layer) + "/items/" +
      encodeURIComponent(f.p.id) + "?f=json";
    fetch(url, { headers: { Accept: "application/geo+json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (doc) {
        f.p = fromGeoJSON(f.layer, doc).p;
        f.partial = false;
        marker.setPopupContent(popupHtml(f));
      })
      .catch(function (e) {
        marker.setPopupContent("<p>Les détails de ce lieu n'ont pas pu être chargés (" + esc(e.message) + ").</p>");
      });
  }

  /** A live layer's grid cell: its count, where its features are; a click zooms in. */
  function cellMarker(layer, cell) {
    var n = cell[2];
    var size = n < 10 ? 36 : n < 100 ? 42 : n < 1000 ? 48 : 56;
    var m = L.marker([cell[1], cell[0]], {
      icon: L.divIcon({
        html: '<span style="background:' + layer.colour + '">' + frCount(n) + "</span>",
        className: "gc-cluster", iconSize: L.point(size, size),
      }),
      title: layer.label + " : " + frCount(n) + (n > 1 ? " lieux" : " lieu") + " ici, zoomez pour les voir",
    });
    m.gcCount = n;
    m.on("click", function () { S.map.setView(m.getLatLng(), Math.min(S.map.getZoom() + 2, 18)); });
    return m;
  }

  /** Features of a live layer in the view, estimated from its grid. */
  function estimate(layerId, bounds) {
    return (S.cfg.overview[layerId] || []).reduce(function (sum, c) {
      return sum + (bounds.contains([c[1], c[0]]) ? c[2] : 0);
    }, 0);
  }

  function fillOverview(layer) {
    var group = S.parts.clusters[layer.id];
    if (group.gcOverview) return;
    group.gcOverview = true;
    S.features[layer.id] = [];
    S.markers[layer.id] = [];
    group.clearLayers();
    group.addLayers((S.cfg.overview[layer.id] || []).map(function (c) { return cellMarker(layer, c); }));
  }

  function visible(f) { return !S.commune || f.p.code_insee === S.commune; }

  function fill(layerId, features) {
    var group = S.parts.clusters[layerId];
    group.gcOverview = false;
    S.features[layerId] = features;
    S.markers[layerId] = features.filter(visible).map(markerFor);
    group.clearLayers();
    group.addLayers(S.markers[layerId]);
  }

  function showStatic() {
    S.cfg.layers.forEach(function (layer) {
      var block = S.cfg.data[layer.id] || { fields: [], rows: [] };
      fill(layer.id, block.rows.map(function (row) { return feature(layer.id, block.fields, row); }));
    });
    refreshList();
  }

  // ---- live mode ------------------------------------------------------------------------

  function itemsUrl(layer, bounds, limit) {
    var b = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()]
      .map(function (v) { return v.toFixed(5); }).join(",");
    var url = S.cfg.api + "/collections/" + encodeURIComponent(layer.id) + "/items?bbox=" + b +
      "&limit=" + limit + "&f=json&properties=" + LIVE_FIELDS.join(",");
    if (S.commune) url += "&code_insee=" + encodeURIComponent(S.commune);
    return url;
  }

  function fetchLayer(layer, bounds, limit) {
    if (S.fetches[layer.id]) S.fetches[layer.id].abort();
    var ctrl = new AbortController();
    S.fetches[layer.id] = ctrl;
    return fetch(itemsUrl(layer, bounds, limit), { signal: ctrl.signal, headers: { Accept: "application/geo+json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (doc) {
        var features = (doc.features || []).filter(function (f) { return f.geometry; })
          .map(function (f) {
            var feature = fromGeoJSON(layer.id, f);
            feature.partial = true;
            return feature;
          });
        return { layer: layer, features: features, matched: doc.numberMatched };
      });
  }

  var liveTimer = null;

  /** Reload the live layers once the map has stopped moving for a moment. */
  function scheduleLive() {
    clearTimeout(liveTimer);
    liveTimer = setTimeout(loadLive, 150);
  }

  /** Ask every visible layer for the features of the view; each one is drawn as it comes. */
  function loadLive() {
    clearTimeout(liveTimer);
    var bounds = S.map.getBounds();
    var wanted = S.cfg.layers.filter(function (l) { return S.map.hasLayer(S.parts.clusters[l.id]); });
    // the same view asked twice (a resize that does not move the map) is not asked again
    var key = [bounds.toBBoxString(), S.commune].concat(wanted.map(function (l) { return l.id; })).join("|");
    if (key === S.liveKey) return;
    S.liveKey = key;
    var shown = 0, matched = 0, counted = [];
    // a layer with more features in view than one request brings is drawn from its grid
    var asked = wanted.filter(function (l) {
      if (S.commune || estimate(l.id, bounds.pad(0.05)) <= S.cfg.liveLimit) return true;
      if (S.fetches[l.id]) S.fetches[l.id].abort();
      fillOverview(l);
      counted.push(l.label);
      return false;
    });
    status(asked.length ? "Chargement des lieux…" : "");
    Promise.all(asked.map(function (l) {
      return fetchLayer(l, bounds, S.cfg.liveLimit).then(function (r) {
        fill(r.layer.id, r.features);
        shown += r.features.length;
        matched += r.matched === undefined ? r.features.length : r.matched;
      });
    }))
      .then(function () {
        refreshList();
        var notes = [];
        if (counted.length) {
          notes.push("À cette échelle, les lieux (" + counted.join(", ") + ") sont comptés par secteur : " +
            "zoomez ou cliquez sur un nombre pour les voir un par un.");
        }
        if (matched > shown) {
          notes.push(frCount(shown) + " lieux affichés sur " + frCount(matched) + " dans la zone : zoomez pour les voir tous.");
        }
        status(notes.join(" "));
      })
      .catch(function (e) {
        if (e.name === "AbortError") return;
        S.liveKey = null;
        status("Les lieux n'ont pas pu être chargés (" + e.message + "). Réessayez dans un instant.");
      });
  }

  // ---- list of the places in view -------------------------------------------------------

  function itemButton(f, extra) {
    var li = document.createElement("li");
    var b = document.createElement("button");
    b.type = "button";
    b.className = "gc-item";
    var layer = S.layers[f.layer];
    b.innerHTML = '<span class="gc-swatch" style="background:' + layer.colour + '">' + layer.icon + "</span>" +
      '<span class="gc-item-text"><span class="gc-item-name">' + esc(f.p.nom || "Sans nom") + "</span>" +
      '<span class="gc-item-meta">' + esc(layer.label) + (f.p.commune ? " · " + esc(f.p.commune) : "") +
      (extra ? " · " + esc(extra) : "") + "</span></span>";
    b.addEventListener("click", function () { openFeature(f); });
    li.appendChild(b);
    return li;
  }

  function openFeature(f) {
    var markers = S.markers[f.layer] || [];
    var marker = null;
    for (var i = 0; i < markers.length; i++) {
      if (markers[i].gcFeature === f) { marker = markers[i]; break; }
    }
    if (!marker) {
      marker = markerFor(f);
      S.markers[f.layer].push(marker);
      S.parts.clusters[f.layer].addLayer(marker);
    }
    if (!S.map.hasLayer(S.parts.clusters[f.layer])) S.map.addLayer(S.parts.clusters[f.layer]);
    S.parts.clusters[f.layer].zoomToShowLayer(marker, function () { marker.openPopup(); });
  }

  function refreshList() {
    var bounds = S.map.getBounds();
    var list = el("gc-list");
    var inView = [];
    S.cfg.layers.forEach(function (layer) {
      if (!S.map.hasLayer(S.parts.clusters[layer.id])) return;
      (S.features[layer.id] || []).forEach(function (f) {
        if (visible(f) && bounds.contains([f.lat, f.lon])) inView.push(f);
      });
    });
    inView.sort(function (a, b) { return (a.p.nom || "").localeCompare(b.p.nom || "", "fr"); });
    var frag = document.createDocumentFragment();
    inView.slice(0, LIST_MAX).forEach(function (f) { frag.appendChild(itemButton(f)); });
    list.replaceChildren(frag);
    var counted = S.cfg.layers.filter(function (l) {
      return S.parts.clusters[l.id].gcOverview && S.map.hasLayer(S.parts.clusters[l.id]);
    }).map(function (l) { return l.label; });
    el("gc-list-count").textContent = (inView.length === 0
      ? "Aucun lieu listé dans la zone affichée."
      : frCount(inView.length) + (inView.length > 1 ? " lieux" : " lieu") +
        (inView.length > LIST_MAX ? " ; les " + LIST_MAX + " premiers sont listés, zoomez pour voir les autres." : ".")) +
      (counted.length ? " Zoomez pour lister aussi : " + counted.join(", ") + "." : "");
  }

  // ---- search, communes, nearby -------------------------------------------------------

  function communeName(code) {
    for (var i = 0; i < S.cfg.communes.length; i++) if (S.cfg.communes[i][0] === code) return S.cfg.communes[i][1];
    return code;
  }

  function zoomToCommune(code) {
    var outline = S.outlinesByCode[code];
    if (outline) S.map.fitBounds(outline.getBounds(), { padding: [10, 10] });
  }

  function setCommune(code) {
    S.commune = code;
    el("gc-commune").value = code;
    Object.keys(S.outlinesByCode).forEach(function (c) {
      S.outlinesByCode[c].setStyle({ weight: c === code ? 4 : 1.5, color: c === code ? "#0b3d6b" : "#4a4a4a" });
    });
    if (S.cfg.mode === "static") {
      S.cfg.layers.forEach(function (l) { fill(l.id, S.features[l.id] || []); });
    }
    if (code) zoomToCommune(code);
    if (S.cfg.mode === "live") scheduleLive(); else refreshList();
  }

  function search(query) {
    var q = normalise(query);
    var box = el("gc-results");
    var ul = box.querySelector("ul");
    ul.replaceChildren();
    if (!q) { box.hidden = true; return; }
    var code = S.cfg.aliases[q];
    var items = [];
    if (!code) {
      Object.keys(S.cfg.aliases).forEach(function (alias) {
        if (!code && alias.indexOf(q) === 0) code = S.cfg.aliases[alias];
      });
    }
    if (code) {
      var li = document.createElement("li");
      var b = document.createElement("button");
      b.type = "button";
      b.className = "gc-item";
      var name = communeName(code);
      var note = normalise(name) === q ? "" : " (« " + query.trim() + " » fait partie de " + name + ")";
      b.textContent = "Commune : " + name + note;
      b.addEventListener("click", function () { setCommune(code); });
      li.appendChild(b);
      ul.appendChild(li);
    }
    S.cfg.layers.forEach(function (layer) {
      (S.features[layer.id] || []).forEach(function (f) {
        if (normalise(f.p.nom || "").indexOf(q) >= 0) items.push(f);
      });
    });
    items.slice(0, 50).forEach(function (f) { ul.appendChild(itemButton(f)); });
    box.hidden = false;
    var n = items.length;
    status((code ? "Commune trouvée : " + communeName(code) + ". " : "") +
      (n ? frCount(n) + (n > 1 ? " lieux trouvés." : " lieu trouvé.") : "Aucun lieu de ce nom" +
        (S.cfg.mode === "live" ? " parmi les lieux chargés." : ".")));
    if (code) setCommune(code);
    else if (n === 1) openFeature(items[0]);
  }

  function distance(lat1, lon1, lat2, lon2) {
    var r = 6371000, rad = Math.PI / 180;
    var dLat = (lat2 - lat1) * rad, dLon = (lon2 - lon1) * rad;
    var a = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * r * Math.asin(Math.sqrt(a));
  }

  function showNearby(lat, lon, byLayer) {
    var box = el("gc-nearby");
    var body = box.querySelector(".gc-nearby-body");
    body.replaceChildren();
    S.cfg.layers.forEach(function (layer) {
      var near = (byLayer[layer.id] || []).map(function (f) {
        return { f: f, d: distance(lat, lon, f.lat, f.lon) };
      }).sort(function (a, b) { return a.d - b.d; }).slice(0, NEAR_PER_LAYER);
      var h = document.createElement("h3");
      h.textContent = layer.label;
      body.appendChild(h);
      var ul = document.createElement("ul");
      ul.className = "gc-items";
      if (!near.length) {
        var li = document.createElement("li");
        li.textContent = "Aucun lieu à proximité.";
        ul.appendChild(li);
      }
      near.forEach(function (n) { ul.appendChild(itemButton(n.f, "à " + frDistance(n.d))); });
      body.appendChild(ul);
    });
    box.hidden = false;
    box.querySelector("h2").focus();
  }

  function nearMe() {
    if (!navigator.geolocation) {
      status("Votre navigateur ne sait pas donner votre position : choisissez votre commune dans la liste.");
      return;
    }
    status("Recherche de votre position…");
    navigator.geolocation.getCurrentPosition(function (pos) {
      var lat = pos.coords.latitude, lon = pos.coords.longitude;
      if (S.you) S.map.removeLayer(S.you);
      S.you = L.circleMarker([lat, lon], { radius: 9, color: "#fff", weight: 3, fillColor: "#d81b60", fillOpacity: 1 })
        .bindTooltip("Vous êtes ici").addTo(S.map);
      S.map.setView([lat, lon], 14);
      if (S.cfg.mode === "static") {
        showNearby(lat, lon, S.features);
        status("Lieux les plus proches de votre position, par thème.");
        return;
      }
      var box = L.latLngBounds([lat - 0.09, lon - 0.13], [lat + 0.09, lon + 0.13]);
      Promise.all(S.cfg.layers.map(function (l) { return fetchLayer(l, box, S.cfg.liveLimit); }))
        .then(function (results) {
          var byLayer = {};
          results.forEach(function (r) { byLayer[r.layer.id] = r.features; });
          showNearby(lat, lon, byLayer);
          status("Lieux les plus proches de votre position (dans un rayon d'environ 10 km), par thème.");
        })
        .catch(function (e) { status("Les lieux proches n'ont pas pu être chargés (" + e.message + ")."); });
    }, function () {
      status("Impossible d'obtenir votre position : autorisez la localisation, ou choisissez votre commune.");
    }, { timeout: 15000, maximumAge: 60000 });
  }

  // ---- set-up ---------------------------------------------------------------------------

  function layout(map) {
    var slot = el("gc-map-slot");
    slot.parentNode.replaceChild(map.getContainer(), slot);
    map.getContainer().setAttribute("aria-label", "Carte des services publics");
    map.invalidateSize({ pan: false });
  }

  function onTileError() {
    S.tileErrors += 1;
    if (S.tileErrors !== 1) return;
    S.map.getContainer().classList.add("gc-offline");
    S.parts.outlines.setStyle({ fillColor: "#f3efe4", fillOpacity: 1 });
    if (!S.map.getPane("gcLabels")) S.map.createPane("gcLabels").style.zIndex = 450;
    S.parts.outlines.eachLayer(function (l) {
      l.bindTooltip(l.feature.properties.commune, {
        permanent: true, direction: "center", className: "gc-commune-label", pane: "gcLabels",
      });
    });
    var note = el("gc-basemap");
    note.textContent = "Le fond de carte ne peut pas être chargé (pas de connexion ?) : les limites des communes sont affichées à la place.";
    note.hidden = false;
  }

  /** A legend line that is also the overlay's switch (the one shown on small screens). */
  function legendItem(layer, group) {
    var li = document.createElement("li");
    var label = document.createElement("label");
    var box = document.createElement("input");
    box.type = "checkbox";
    box.checked = S.map.hasLayer(group);
    box.addEventListener("change", function () {
      if (box.checked) S.map.addLayer(group); else S.map.removeLayer(group);
    });
    S.map.on("overlayadd overlayremove layeradd layerremove", function (e) {
      if (e.layer === group) box.checked = S.map.hasLayer(group);
    });
    label.appendChild(box);
    label.insertAdjacentHTML("beforeend", '<span class="gc-swatch" style="background:' + layer.colour + '">' +
      layer.icon + "</span> " + esc(layer.label) + " (" + frCount(layer.count) + ")");
    li.appendChild(label);
    return li;
  }

  function init(map, parts, cfg) {
    S.map = map; S.parts = parts; S.cfg = cfg;
    layout(map);
    // folium fitted the territory before the map found its place in the page: fit it again
    map.fitBounds(parts.outlines.getBounds(), { animate: false });
    el("gc-territory").textContent = "– " + cfg.territory;
    cfg.layers.forEach(function (layer) {
      layer.divIcon = L.divIcon({
        className: "gc-marker",
        html: '<span style="background:' + layer.colour + '">' + layer.icon + "</span>",
        iconSize: [34, 34], iconAnchor: [17, 17], popupAnchor: [0, -14],
      });
      S.layers[layer.id] = layer;
      el("gc-legend").appendChild(legendItem(layer, parts.clusters[layer.id]));
    });
    parts.outlines.eachLayer(function (l) { S.outlinesByCode[l.feature.properties.code_insee] = l; });
    var select = el("gc-commune");
    cfg.communes.forEach(function (c) {
      var o = document.createElement("option");
      o.value = c[0];
      o.textContent = c[1];
      select.appendChild(o);
    });
    select.addEventListener("change", function () { setCommune(select.value); });
    el("gc-search").addEventListener("submit", function (e) { e.preventDefault(); search(el("gc-q").value); });
    el("gc-near").addEventListener("click", nearMe);
    el("gc-toggle").addEventListener("click", function () {
      var panel = el("gc-panel");
      panel.hidden = !panel.hidden;
      this.setAttribute("aria-expanded", String(!panel.hidden));
      this.textContent = panel.hidden ? "Afficher la liste" : "Masquer la liste";
      map.invalidateSize();
    });
    parts.tiles.on("tileerror", onTileError);
    // commune names only when there is room for them
    var labelZoom = function () { map.getContainer().classList.toggle("gc-zoomed-out", map.getZoom() < 11); };
    map.on("zoomend", labelZoom);
    labelZoom();
    map.on("overlayadd overlayremove", function () { if (cfg.mode === "live") scheduleLive(); else refreshList(); });
    if (cfg.mode === "live") {
      map.on("moveend", scheduleLive);
      loadLive();
    } else {
      map.on("moveend", refreshList);
      showStatic();
    }
    global.GeocommunsMap.ready = true;
  }

  global.GeocommunsMap = {
    init: init, clusterIcon: clusterIcon, openingHours: openingHours, normalise: normalise,
    frPhone: frPhone, frDate: frDate, frDistance: frDistance, popupHtml: popupHtml, state: S,
    ready: false,
  };
})(window);
