/* routetrace exhibit timeline. Part of routetrace (Apache-2.0).
 *
 * Builds the exhibit's layers from the JSON that routetrace wrote into the page.
 * Rules: evidence strings are only ever put into the page with textContent (never
 * innerHTML); layer-control names are HTML-escaped; time labels are the finished strings
 * routetrace computed in the local time of the place: this file never formats a Date, so
 * the viewer's own time zone cannot leak into the exhibit.
 */
(function () {
  "use strict";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function card(title, rows) {
    var d = el("div", "rt-card");
    d.appendChild(el("div", "rt-card-title", title));
    var t = el("table");
    rows.forEach(function (r) {
      if (r[1] === null || r[1] === undefined || r[1] === "") { return; }
      var tr = el("tr");
      tr.appendChild(el("th", null, r[0]));
      tr.appendChild(el("td", null, r[1]));
      t.appendChild(tr);
    });
    d.appendChild(t);
    return d;
  }

  var RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function ramp(f) {
    f = Math.max(0, Math.min(1, f)) * (RAMP.length - 1);
    var i = Math.min(RAMP.length - 2, Math.floor(f)), u = f - i, a = RAMP[i], b = RAMP[i + 1];
    return "rgb(" + [0, 1, 2].map(function (k) { return Math.round(a[k] + (b[k] - a[k]) * u); }).join(",") + ")";
  }

  function decode(enc) {
    var n = enc.lat.length, lat = new Float64Array(n), lon = new Float64Array(n), t = new Float64Array(n);
    var a = 0, b = 0, c = 0;
    for (var i = 0; i < n; i++) {
      a += enc.lat[i]; b += enc.lon[i]; c += enc.t[i];
      lat[i] = a / 1e5; lon[i] = b / 1e5; t[i] = c;
    }
    return { lat: lat, lon: lon, t: t, parts: enc.parts };
  }

  /* Split one level of one subject into runs of equal time-colour bin. */
  function buildRuns(v, span, nbins, renderer, casing) {
    var runs = [], start = 0;
    v.parts.forEach(function (len) {
      var end = start + len;
      var i = start;
      while (i < end - 1) {
        var bin = Math.min(nbins - 1, Math.floor(v.t[i] / span * nbins));
        var j = i + 1;
        while (j < end - 1 && Math.min(nbins - 1, Math.floor(v.t[j] / span * nbins)) === bin) { j++; }
        var pts = [];
        for (var k = i; k <= j; k++) { pts.push([v.lat[k], v.lon[k]]); }
        var col = ramp((bin + 0.5) / nbins);
        var under = L.polyline(pts, { color: casing, weight: 7, opacity: 0.9, renderer: renderer, interactive: false });
        var line = L.polyline(pts, { color: col, weight: 3.5, opacity: 1, renderer: renderer, interactive: false });
        runs.push({ i: i, j: j, t0: v.t[i], t1: v.t[j], under: under, line: line, state: "full", v: v });
        i = j;
      }
      start = end;
    });
    return runs;
  }

  window.routetraceExhibit = function (map, D) {
    var renderer = L.canvas({ padding: 0.3 });
    var span = Math.max(1, D.t_span);
    var overlays = [];

    /* ---- neutral background ---- */
    map.getContainer().style.background = "#dde6ec";
    if (D.tiles) {
      var TileLayer = L.GridLayer.extend({
        createTile: function (coords) {
          var img = document.createElement("img");
          var src = D.tiles.tiles[coords.z + "/" + coords.x + "/" + coords.y];
          if (src && src.indexOf("data:image/") === 0) { img.src = src; }
          img.alt = "";
          return img;
        }
      });
      new TileLayer({ minZoom: 0, maxNativeZoom: D.tiles.max_zoom, minNativeZoom: D.tiles.min_zoom }).addTo(map);
    }
    if (D.countries && D.countries.features.length) {
      L.geoJSON(D.countries, {
        interactive: false, renderer: renderer,
        style: { color: "#9b9b9b", weight: 1, fillColor: "#f4f2ee", fillOpacity: D.tiles ? 0 : 1 }
      }).addTo(map);
    }
    if (D.roads && D.roads.length) {
      var roads = L.layerGroup();
      D.roads.forEach(function (r) {
        var pts = r.lat.map(function (la, i) { return [la, r.lon[i]]; });
        L.polyline(pts, { color: "#b8b2a7", weight: 2, renderer: renderer, interactive: false }).addTo(roads);
      });
      roads.addTo(map);
      overlays.push(["Roads (background)", roads]);
    }

    /* ---- routes, per subject, simplified per zoom ---- */
    var subjects = D.subjects.map(function (s) {
      var S = { s: s, levels: s.levels.map(function (lv) { return { tol: lv.tol, v: decode(lv.enc), runs: null }; }) };
      S.group = L.layerGroup().addTo(map);
      S.current = null;
      S.pos = L.circleMarker([0, 0], { radius: 6, color: "#000", weight: 2, fillColor: s.colour, fillOpacity: 1, renderer: renderer });
      S.pos.bindTooltip(el("span", null, s.id));
      overlays.push([ "Route: " + s.id, S.group ]);
      return S;
    });

    function levelFor(S) {
      var z = map.getZoom(), lat = map.getCenter().lat;
      var mpp = 40075016.686 * Math.cos(lat * Math.PI / 180) / (256 * Math.pow(2, z));
      for (var i = 0; i < S.levels.length; i++) { if (S.levels[i].tol <= mpp) { return S.levels[i]; } }
      return S.levels[S.levels.length - 1];
    }

    var T = Infinity;
    function applyTime(S) {
      var lv = S.current;
      if (!lv) { return; }
      lv.runs.forEach(function (r) {
        var want = r.t1 <= T ? "full" : (r.t0 > T ? "none" : "part");
        if (want === "part") {
          var v = r.v, pts = [];
          for (var k = r.i; k <= r.j && v.t[k] <= T; k++) { pts.push([v.lat[k], v.lon[k]]); }
          if (pts.length < 2) { pts.push(pts[0]); }
          r.line.setLatLngs(pts); r.under.setLatLngs(pts);
        } else if (r.state === "part") {
          var pts2 = [], w = r.v;
          for (var q = r.i; q <= r.j; q++) { pts2.push([w.lat[q], w.lon[q]]); }
          r.line.setLatLngs(pts2); r.under.setLatLngs(pts2);
        }
        if (want === "none" && r.state !== "none") { S.group.removeLayer(r.under); S.group.removeLayer(r.line); }
        if (want !== "none" && r.state === "none") { S.group.addLayer(r.under); S.group.addLayer(r.line); }
        r.state = want;
      });
      // current position (last vertex not after T)
      var v = lv.v, lo = 0, hi = v.t.length - 1;
      if (!v.t.length) { return; }
      if (T < v.t[0]) { S.group.removeLayer(S.pos); return; }
      while (lo < hi) { var mid = (lo + hi + 1) >> 1; if (v.t[mid] <= T) { lo = mid; } else { hi = mid - 1; } }
      S.pos.setLatLng([v.lat[lo], v.lon[lo]]);
      if (isFinite(T) && !S.group.hasLayer(S.pos)) { S.group.addLayer(S.pos); }
      if (!isFinite(T)) { S.group.removeLayer(S.pos); }
    }

    function showLevels() {
      subjects.forEach(function (S) {
        var lv = levelFor(S);
        if (lv === S.current) { return; }
        if (S.current) { S.current.runs.forEach(function (r) { S.group.removeLayer(r.under); S.group.removeLayer(r.line); }); }
        if (!lv.runs) { lv.runs = buildRuns(lv.v, span, D.n_bins, renderer, S.s.colour); }
        lv.runs.forEach(function (r) { r.state = "full"; S.group.addLayer(r.under); });
        lv.runs.forEach(function (r) { S.group.addLayer(r.line); });
        S.current = lv;
        applyTime(S);
      });
    }

    /* ---- unobserved intervals ---- */
    var gapLayer = L.layerGroup().addTo(map);
    var gapItems = D.gaps.map(function (g) {
      var line = L.polyline([[g.lat0, g.lon0], [g.lat1, g.lon1]], { color: "#555", weight: 2.5, dashArray: "6 6", renderer: renderer });
      line.bindTooltip(el("span", "rt-gap-label", g.label), { permanent: D.gaps.length <= 30, direction: "center", className: "rt-gap-tip" });
      line.bindPopup(card("Unobserved: " + g.subject_id, [["from", g.start], ["to", g.end], ["duration", g.duration], ["distance", g.distance]]));
      gapLayer.addLayer(line);
      return { g: g, layer: line };
    });
    overlays.push(["Unobserved intervals (dashed)", gapLayer]);

    /* ---- stops ---- */
    var stopLayers = {};
    var stopItems = D.stops.map(function (s) {
      if (!stopLayers[s.subject_id]) { stopLayers[s.subject_id] = L.layerGroup().addTo(map); }
      var grp = L.layerGroup();
      L.circle([s.lat, s.lon], { radius: s.radius_m, color: s.colour, weight: 1.5, dashArray: "3 3", fillOpacity: 0.08, renderer: renderer, interactive: false }).addTo(grp);
      var num = el("span", null, s.no);
      var icon = L.divIcon({ className: "rt-stop", html: num, iconSize: [24, 24], iconAnchor: [12, 12] });
      var m = L.marker([s.lat, s.lon], { icon: icon, title: "stop " + s.no, zIndexOffset: 1000 });
      m.bindTooltip(el("span", null, "Stop " + s.no + " · " + s.subject_id + " · " + s.arrival));
      m.bindPopup(card("Stop " + s.no + ": " + s.subject_id, [
        ["arrival", s.arrival], ["departure", s.departure], ["dwell (observed)", s.dwell],
        ["time zone", s.tz], ["position", s.lat.toFixed(6) + ", " + s.lon.toFixed(6)],
        ["radius", s.radius_m.toFixed(0) + " m"], ["fixes", s.n_fixes], ["observed", s.observed],
        ["near", s.near_place], ["sources", s.sources], ["flags", s.flags]]));
      m.addTo(grp);
      grp.addTo(stopLayers[s.subject_id]);
      return { s: s, layer: grp, parent: stopLayers[s.subject_id] };
    });
    Object.keys(stopLayers).sort().forEach(function (k) { overlays.push(["Stops: " + k, stopLayers[k]]); });

    /* ---- places (indicated, safehouse, other) ---- */
    var placeLayers = {};
    D.places.forEach(function (p) {
      var key = p.symbol === "safehouse" ? "Safehouses" : (p.symbol === "indicated" ? "Indicated places" : "Other places");
      if (!placeLayers[key]) { placeLayers[key] = L.layerGroup().addTo(map); }
      if (p.radius_m > 0) {
        L.circle([p.lat, p.lon], { radius: p.radius_m, color: "#b2182b", weight: 1, fillOpacity: 0.05, renderer: renderer, interactive: false }).addTo(placeLayers[key]);
      }
      var sym = el("span", null, p.symbol === "safehouse" ? "\u2302" : (p.symbol === "indicated" ? "\u25C6" : "\u25A0"));
      var cls = "rt-place rt-place-" + p.symbol + (p.worst ? " rt-verdict-" + p.worst.replace(/[^a-z-]/g, "") : "");
      var icon = L.divIcon({ className: cls, html: sym, iconSize: [22, 22], iconAnchor: [11, 11] });
      var m = L.marker([p.lat, p.lon], { icon: icon, title: p.name || p.kind });
      m.bindTooltip(el("span", null, (p.name || p.kind)));
      m.bindPopup(card(p.label, [["name", p.name], ["address", p.address], ["statement", p.text],
        ["time", p.time], ["radius", p.radius_m ? p.radius_m.toFixed(0) + " m" : ""], ["verdict", p.verdict], ["source", p.source]]));
      m.addTo(placeLayers[key]);
    });
    Object.keys(placeLayers).sort().forEach(function (k) { overlays.push([k, placeLayers[k]]); });

    /* ---- evidence points per source (exact positions, stated accuracy to scale) ----
     * One canvas per source, redrawn after each move/zoom: thousands of points stay fast.
     * Hover shows a tooltip (textContent) for the nearest point within 6 px. */
    var PointsLayer = L.Layer.extend({
      initialize: function (src) { this.src = src; this.T = Infinity; },
      onAdd: function (m) {
        this._canvas = L.DomUtil.create("canvas", "rt-points leaflet-zoom-hide");
        this._canvas.style.pointerEvents = "none";
        m.getPanes().overlayPane.appendChild(this._canvas);
        this._tip = L.tooltip({ direction: "top", offset: [0, -4] });
        m.on("moveend zoomend resize viewreset", this._redraw, this);
        m.on("mousemove", this._hover, this);
        this._redraw();
      },
      onRemove: function (m) {
        L.DomUtil.remove(this._canvas);
        m.off("moveend zoomend resize viewreset", this._redraw, this);
        m.off("mousemove", this._hover, this);
        m.closeTooltip(this._tip);
      },
      setTime: function (T) { this.T = T; if (this._map) { this._redraw(); } },
      drawNow: function () { if (this._frame) { L.Util.cancelAnimFrame(this._frame); this._frame = null; } this._draw(); },
      _redraw: function () {
        var self = this;
        if (this._frame) { return; }
        this._frame = L.Util.requestAnimFrame(function () { self._frame = null; self._draw(); });
      },
      _draw: function () {
        var m = this._map;
        if (!m) { return; }
        var size = m.getSize(), c = this._canvas, s = this.src;
        L.DomUtil.setPosition(c, m.containerPointToLayerPoint([0, 0]));
        c.width = size.x; c.height = size.y;
        var ctx = c.getContext("2d"), z = m.getZoom();
        var circles = new Path2D(), dots = new Path2D();
        for (var i = 0; i < s.lat.length; i++) {
          if (s.t[i] > this.T) { continue; }
          var p = m.latLngToContainerPoint([s.lat[i], s.lon[i]]);
          var mpp = 40075016.686 * Math.cos(s.lat[i] * Math.PI / 180) / (256 * Math.pow(2, z));
          var r = s.acc[i] > 0 ? s.acc[i] / mpp : 0;
          if (p.x < -r - 5 || p.y < -r - 5 || p.x > size.x + r + 5 || p.y > size.y + r + 5) { continue; }
          if (r > 1) { circles.moveTo(p.x + r, p.y); circles.arc(p.x, p.y, r, 0, 2 * Math.PI); }
          dots.moveTo(p.x + 3, p.y); dots.arc(p.x, p.y, 3, 0, 2 * Math.PI);
        }
        ctx.lineWidth = 1;
        ctx.strokeStyle = "rgba(33,102,172,0.55)"; ctx.stroke(circles);
        ctx.fillStyle = "rgba(33,102,172,0.85)"; ctx.fill(dots);
        ctx.strokeStyle = "#2166ac"; ctx.stroke(dots);
      },
      _hover: function (e) {
        var m = this._map, s = this.src, best = -1, bd = 36;
        for (var i = 0; i < s.lat.length; i++) {
          if (s.t[i] > this.T) { continue; }
          var p = m.latLngToContainerPoint([s.lat[i], s.lon[i]]);
          var dx = p.x - e.containerPoint.x, dy = p.y - e.containerPoint.y, d2 = dx * dx + dy * dy;
          if (d2 < bd) { bd = d2; best = i; }
        }
        if (best < 0) { m.closeTooltip(this._tip); return; }
        this._tip.setLatLng([s.lat[best], s.lon[best]]);
        this._tip.setContent(el("span", null, s.kind[best] + " · " + s.time[best] +
          (s.acc[best] > 0 ? " · ±" + Math.round(s.acc[best]) + " m" : "") + " · " + this.src.label));
        m.openTooltip(this._tip);
      }
    });
    var pointLayers = D.points.map(function (src) {
      var layer = new PointsLayer(src).addTo(map);
      overlays.push(["Source: " + src.label, layer]);
      return layer;
    });

    /* ---- time slider: labels are routetrace's local-time strings ---- */
    var ticks = D.ticks;
    function setTime(idx) {
      T = (idx >= ticks.t.length - 1) ? Infinity : ticks.t[idx];
      subjects.forEach(applyTime);
      stopItems.forEach(function (it) {
        var on = it.s.t_arrival <= T;
        if (on && !it.parent.hasLayer(it.layer)) { it.parent.addLayer(it.layer); }
        if (!on && it.parent.hasLayer(it.layer)) { it.parent.removeLayer(it.layer); }
      });
      gapItems.forEach(function (it) {
        var on = it.g.t_start <= T;
        if (on && !gapLayer.hasLayer(it.layer)) { gapLayer.addLayer(it.layer); }
        if (!on && gapLayer.hasLayer(it.layer)) { gapLayer.removeLayer(it.layer); }
      });
      pointLayers.forEach(function (l) { l.setTime(T); });
      label.textContent = ticks.label[idx];
    }
    var slider, label;
    var SliderControl = L.Control.extend({
      options: { position: "bottomleft" },
      onAdd: function () {
        var box = el("div", "rt-slider leaflet-bar");
        box.appendChild(el("div", "rt-slider-title", "Time (local time of the place shown, with UTC offset)"));
        slider = el("input");
        slider.type = "range"; slider.min = "0"; slider.max = String(ticks.t.length - 1);
        slider.step = "1"; slider.value = String(ticks.t.length - 1);
        slider.id = "rt-time-slider";
        box.appendChild(slider);
        label = el("div", "rt-slider-label");
        label.id = "rt-time-label";
        box.appendChild(label);
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        slider.addEventListener("input", function () { setTime(parseInt(slider.value, 10)); });
        return box;
      }
    });
    new SliderControl().addTo(map);

    /* ---- legend ---- */
    var LegendControl = L.Control.extend({
      options: { position: "bottomright" },
      onAdd: function () {
        var box = el("div", "rt-legend leaflet-bar");
        box.id = "rt-legend";
        box.appendChild(el("div", "rt-legend-title", "Legend"));
        var bar = el("div", "rt-ramp");
        bar.style.background = "linear-gradient(to right," + [0, 0.25, 0.5, 0.75, 1].map(ramp).join(",") + ")";
        box.appendChild(bar);
        var ends = el("div", "rt-ramp-ends");
        ends.appendChild(el("span", null, D.t_first_label));
        ends.appendChild(el("span", null, D.t_last_label));
        box.appendChild(ends);
        box.appendChild(el("div", null, "Route colour = time; outline colour = subject:"));
        D.subjects.forEach(function (s) {
          var row = el("div", "rt-legend-row");
          var sw = el("span", "rt-swatch"); sw.style.background = s.colour;
          row.appendChild(sw); row.appendChild(el("span", null, s.id + " (" + s.n_fixes + " fixes)"));
          box.appendChild(row);
        });
        [["rt-key-stop", "1", "numbered stop (see chronology)"],
         ["rt-key-place rt-place-indicated", "\u25C6", "place indicated in a statement"],
         ["rt-key-place rt-place-safehouse", "\u2302", "safehouse"],
         ["rt-key-circle", "", "circle: stated accuracy / stop radius, true scale"],
         ["rt-key-gap", "", "dashed: unobserved, no fixes (straight line is not the route)"]
        ].concat(D.has_verdicts ? [["rt-key-verdict", "\u25C6", "statement check: green supported, orange inconclusive / not observed, black contradicted"]] : []
        ).forEach(function (k) {
          var row = el("div", "rt-legend-row");
          row.appendChild(el("span", k[0], k[1]));
          row.appendChild(el("span", null, k[2]));
          box.appendChild(row);
        });
        L.DomEvent.disableClickPropagation(box);
        return box;
      }
    });
    new LegendControl().addTo(map);

    var ctlOverlays = {};
    overlays.forEach(function (o) { ctlOverlays[esc(o[0])] = o[1]; });
    L.control.layers(null, ctlOverlays, { collapsed: D.collapsed_layers, position: "topright" }).addTo(map);
    L.control.scale({ imperial: false, position: "bottomright" }).addTo(map);

    // fit the whole journey in the part of the map the panels leave free: the layer
    // control and legend take the right-hand side, the time slider the bottom left
    map.invalidateSize(false);
    var size = map.getSize();
    var right = Math.min(360, Math.round(size.x * 0.3));
    map.fitBounds([[D.bounds[0], D.bounds[1]], [D.bounds[2], D.bounds[3]]],
                  { paddingTopLeft: [60, 30], paddingBottomRight: [right, 110], animate: false });
    map.on("zoomend", showLevels);
    showLevels();
    setTime(ticks.t.length - 1);
    // a reset view ends with 'viewreset', which leaves the canvas renderer at a sub-pixel
    // offset (-384.01 px, -186.474 px); Chromium sometimes prints that offset as it is and
    // sometimes snapped to whole pixels, so one exhibit gave two PDFs. A finished move
    // ('moveend') puts the canvas on whole pixels, the same on screen and on paper.
    map.fire("moveend");
    window.routetraceReady = true;
    document.body.setAttribute("data-routetrace-ready", "1");
  };
})();
