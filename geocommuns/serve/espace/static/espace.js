/* Espace technicien: upload progress, maps, live re-check of the mapping, hours helper.
   Every page works without this script; it only adds to them. */
(function () {
  "use strict";

  function text(el, value) { if (el) { el.textContent = value; } }

  /* Upload: size checked before sending, progress while sending, then the report. */
  var depot = document.getElementById("depot");
  if (depot && window.FormData && window.XMLHttpRequest) {
    depot.addEventListener("submit", function (event) {
      var input = document.getElementById("fichier");
      var max = parseInt(depot.getAttribute("data-max"), 10);
      var alert = document.getElementById("erreur-envoi");
      var status = document.getElementById("etat-envoi");
      var box = depot.querySelector(".progression");
      var bar = document.getElementById("avancement");
      if (!input.files || !input.files.length) { return; }
      event.preventDefault();
      alert.hidden = true;
      var file = input.files[0];
      if (file.size > max) {
        alert.hidden = false;
        text(alert, "Le fichier dépasse la taille maximale acceptée (" + Math.round(max / 1000000) +
          " Mo). Découpez la livraison en plusieurs fichiers, ou compressez un shapefile en .zip.");
        alert.focus && alert.setAttribute("tabindex", "-1");
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", depot.getAttribute("action"));
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      box.hidden = false;
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          var pct = Math.round(100 * e.loaded / e.total);
          bar.value = pct; text(bar, pct + " %");
          text(status, "Envoi : " + pct + " %");
        }
      });
      xhr.addEventListener("load", function () {
        var answer = {};
        try { answer = JSON.parse(xhr.responseText); } catch (e) { answer = {}; }
        if (xhr.status < 300 && answer.location) {
          text(status, "Fichier reçu : vérification en cours…");
          window.location.assign(answer.location);
        } else {
          box.hidden = true;
          alert.hidden = false;
          text(status, "");
          text(alert, answer.error || ("L'envoi a échoué (erreur " + xhr.status + ")."));
        }
      });
      xhr.addEventListener("error", function () {
        box.hidden = true; alert.hidden = false;
        text(alert, "L'envoi a échoué : vérifiez la connexion et recommencez.");
      });
      text(status, "Envoi : 0 %");
      xhr.send(new FormData(depot));
    });
  }

  /* Maps: the commune outline and points, from the page's JSON (no tiles: works offline). */
  function drawMap(el, data) {
    if (!window.L) { return; }
    var map = L.map(el, { attributionControl: false });
    var bounds = null;
    if (data.outline) {
      var outline = L.geoJSON(data.outline, { style: { color: "#0b4f8a", weight: 2, fillOpacity: 0.05 } }).addTo(map);
      bounds = outline.getBounds();
    }
    var colours = { added: "#1b5e20", changed: "#b35c00", removed: "#8a1c0b" };
    if (data.features && data.features.features.length) {
      var points = L.geoJSON(data.features, {
        pointToLayer: function (feature, latlng) {
          var kind = feature.properties && feature.properties.kind;
          return L.circleMarker(latlng, { radius: 7, color: colours[kind] || "#0b4f8a", weight: 2, fillOpacity: 0.7 });
        },
        onEachFeature: function (feature, layer) {
          var p = document.createElement("p");
          p.textContent = (feature.properties && feature.properties.nom) || "(sans nom)";
          layer.bindPopup(p);
        }
      }).addTo(map);
      bounds = bounds ? bounds.extend(points.getBounds()) : points.getBounds();
    }
    if (bounds && bounds.isValid()) { map.fitBounds(bounds, { padding: [10, 10] }); } else { map.setView([44.45, 1.44], 11); }
  }

  function moveMap(el) {
    if (!window.L) { return; }
    var lon = document.getElementById("lon"), lat = document.getElementById("lat");
    var map = L.map(el, { attributionControl: false });
    var outline = null;
    try { outline = JSON.parse(el.getAttribute("data-contour") || "null"); } catch (e) { outline = null; }
    if (outline) { L.geoJSON(outline, { style: { color: "#0b4f8a", weight: 2, fillOpacity: 0.05 } }).addTo(map); }
    var at = L.latLng(parseFloat(lat.value), parseFloat(lon.value));
    var marker = L.marker(at, { draggable: true, keyboard: true, title: "Position du lieu", alt: "Position du lieu" }).addTo(map);
    map.setView(at, 15);
    marker.on("dragend", function () {
      var p = marker.getLatLng();
      lon.value = p.lng.toFixed(6); lat.value = p.lat.toFixed(6);
    });
    function follow() {
      var p = L.latLng(parseFloat(lat.value), parseFloat(lon.value));
      if (!isNaN(p.lat) && !isNaN(p.lng)) { marker.setLatLng(p); map.panTo(p); }
    }
    lon.addEventListener("change", follow); lat.addEventListener("change", follow);
  }

  function startMaps() {
    Array.prototype.forEach.call(document.querySelectorAll(".carte"), function (el) {
      if (el.hasAttribute("data-deplacer")) { moveMap(el); return; }
      var url = el.getAttribute("data-carte");
      if (!url) { return; }
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); })
        .then(function (data) { drawMap(el, data); el.setAttribute("data-chargee", "1"); });
    });
  }
  if (document.querySelector(".carte")) {
    if (window.L) { startMaps(); } else { window.addEventListener("load", startMaps); }
  }

  /* Mapping assistant: the check re-runs on every change, its result read out. */
  var assistant = document.getElementById("assistant");
  if (assistant && window.fetch) {
    var resume = document.getElementById("resume");
    assistant.addEventListener("change", function () {
      var form = new FormData(assistant);
      form.set("action", "verifier");
      text(resume, "Vérification en cours…");
      fetch(assistant.getAttribute("action"), { method: "POST", body: form, credentials: "same-origin",
                                headers: { "X-Requested-With": "XMLHttpRequest" } })
        .then(function (r) { return r.json(); })
        .then(function (s) { renderSummary(resume, s); });
    });
  }

  function renderSummary(box, s) {
    box.textContent = "";
    if (s.error) { var e = document.createElement("p"); e.className = "message"; e.textContent = s.error; box.appendChild(e); return; }
    var ul = document.createElement("ul"); ul.className = "compteurs";
    [[s.read, " ligne(s) lue(s)"], [s.valid, " ligne(s) valide(s)"], [s.rejected, " ligne(s) refusée(s)"]].forEach(function (c) {
      var li = document.createElement("li"), b = document.createElement("strong");
      b.textContent = String(c[0]); li.appendChild(b); li.appendChild(document.createTextNode(c[1])); ul.appendChild(li);
    });
    box.appendChild(ul);
    if (!s.groups.length) { var ok = document.createElement("p"); ok.className = "ok"; ok.textContent = "Toutes les lignes sont valides."; box.appendChild(ok); return; }
    var ol = document.createElement("ol"); ol.className = "motifs";
    s.groups.forEach(function (g) {
      var li = document.createElement("li"), h = document.createElement("h3"), p = document.createElement("p"), todo = document.createElement("p");
      h.textContent = g.title + " : " + g.field + " (" + g.count + " ligne" + (g.count > 1 ? "s" : "") + ")";
      p.textContent = g.rows + ". Motif : " + g.reason;
      todo.className = "afaire"; todo.textContent = "Que faire : " + g.todo;
      li.appendChild(h); li.appendChild(p); li.appendChild(todo); ol.appendChild(li);
    });
    box.appendChild(ol);
  }

  /* Opening hours helper: what the French text becomes. */
  Array.prototype.forEach.call(document.querySelectorAll("[data-horaires]"), function (input) {
    var out = input.parentNode.querySelector("output.conversion");
    input.addEventListener("change", function () {
      fetch(input.getAttribute("data-horaires") + "?texte=" + encodeURIComponent(input.value), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (a) { text(out, a.osm ? "Sera enregistré comme : " + a.osm : "Horaires non reconnus : vérifiez l'écriture."); });
    });
  });
})();
