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

  /* ---- rectangles in container pixels: {x, y, w, h} ---- */
  function overlaps(a, b) { return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h; }
  function anyOverlap(r, list) { for (var i = 0; i < list.length; i++) { if (overlaps(r, list[i])) { return true; } } return false; }
  function inside(r, size, m) { return r.x >= m && r.y >= m && r.x + r.w <= size.x - m && r.y + r.h <= size.y - m; }

  /* Candidate offsets of a label from its anchor: on it, then rings further out (px). */
  var OFFSETS = (function () {
    var out = [[0, 0]];
    [22, 32, 44, 58, 74, 92, 112, 135, 160, 190].forEach(function (r) {
      var n = Math.max(8, Math.round(2 * Math.PI * r / 16));
      for (var k = 0; k < n; k++) {
        var a = -Math.PI / 2 + (k % 2 ? -1 : 1) * Math.ceil(k / 2) * 2 * Math.PI / n;
        out.push([Math.round(r * Math.cos(a)), Math.round(r * Math.sin(a))]);
      }
    });
    return out;
  })();

  /* Rectangles the map's controls (legend, layer control, slider, scale, zoom, north
   * arrow, zoom-to) take, relative to the map container, with a 3 px margin. */
  function controlRects(map) {
    var c = map.getContainer().getBoundingClientRect(), out = [];
    map.getContainer().querySelectorAll(".leaflet-control").forEach(function (e) {
      var r = e.getBoundingClientRect();
      if (e.classList.contains("leaflet-control-layers")) {
        var a = layersArea(map, e);  // what it takes when expanded, not only the button
        out.push({ x: a.x - 3, y: a.y - 3, w: a.w + 6, h: a.h + 6 });
      } else if (r.width > 0 && r.height > 0) { out.push({ x: r.left - c.left - 3, y: r.top - c.top - 3, w: r.width + 6, h: r.height + 6 }); }
    });
    return out;
  }

  /* Where the expanded layer control may lie (container pixels): from its top down to the
   * controls at the bottom right (the legend), and from its right edge left to the strip the
   * right-hand controls take; fitted views keep markers out of that strip and popups are
   * panned out of it (freePadding), so the open list covers no marker, popup or legend. */
  function layersArea(map, ctl) {
    var box = map.getContainer().getBoundingClientRect(), size = map.getSize();
    var r = ctl.getBoundingClientRect(), top = r.top - box.top, right = r.right - box.left, left = right - 44;
    var bottom = size.y - 10;
    map.getContainer().querySelectorAll(".leaflet-right .leaflet-control").forEach(function (e) {
      var q = e.getBoundingClientRect();
      if (e === ctl || q.width <= 0 || q.height <= 0) { return; }
      left = Math.min(left, q.left - box.left);
      if (e.parentNode.classList.contains("leaflet-bottom")) { bottom = Math.min(bottom, q.top - box.top - 8); }
    });
    return { x: left, y: top, w: right - left, h: Math.max(80, bottom - top) };
  }

  /* The layer control: collapsed by default; opened (hover, focus, tap) it is sized into
   * layersArea, scrolls when longer, lies above the controls under it (zoom-to) without
   * moving them, and takes its usual place again when it closes. */
  var LayersControl = L.Control.Layers.extend({
    expand: function () {
      var c = this._container, s = this._section, map = this._map;
      var h0 = c.classList.contains("leaflet-control-layers-expanded") ? (this._rtH0 || c.offsetHeight) : c.offsetHeight;
      this._rtH0 = h0;
      L.Control.Layers.prototype.expand.call(this);
      if (!map) { return this; }
      var a = layersArea(map, c);
      c.style.boxSizing = "border-box";
      c.style.maxWidth = a.w + "px";
      c.style.zIndex = "1001";
      s.style.height = "";
      s.classList.add("leaflet-control-layers-scrollbar");
      s.style.maxHeight = Math.max(40, a.h - (c.offsetHeight - s.offsetHeight)) + "px";
      c.style.marginBottom = (h0 - c.offsetHeight) + "px";
      return this;
    },
    collapse: function () {
      var c = this._container, s = this._section;
      ["boxSizing", "maxWidth", "zIndex", "marginBottom"].forEach(function (k) { c.style[k] = ""; });
      s.style.maxHeight = "";
      return L.Control.Layers.prototype.collapse.call(this);
    }
  });

  /* The part of the map the controls leave free, as fitBounds / autoPan paddings. */
  function freePadding(map) {
    var size = map.getSize(), tl = [10, 10], br = [10, 10];
    controlRects(map).forEach(function (r) {
      var cx = r.x + r.w / 2;
      if (r.w > size.x * 0.6) { return; }
      if (cx < size.x / 2) { if (r.y + r.h > size.y - 140) { br[1] = Math.max(br[1], size.y - r.y + 4); } else { tl[0] = Math.max(tl[0], r.x + r.w + 4); } }
      else { br[0] = Math.max(br[0], size.x - r.x + 4); }
    });
    return { tl: tl, br: br };
  }

  /* The exhibit's layers on one map (the screen map or a printed page's map). */
  function buildLayers(map, D, opts) {
    var R = { map: map, D: D, print: !!opts.print, renderer: L.canvas({ padding: 0.3 }), overlays: [], T: Infinity,
              pad: { tl: L.point(10, 10), br: L.point(10, 10) } };
    background(R);
    routeLayers(R);
    gapLayers(R);
    stopLayers(R);
    placeLayers(R);
    pointLayers(R);
    R.frames = L.layerGroup().addTo(map);
    R.leaders = L.layerGroup().addTo(map);
    R.letters = D.groups.map(function (g) {
      var icon = L.divIcon({ className: "rt-group-letter", html: el("span", null, g.letter), iconSize: [22, 22], iconAnchor: [11, 11] });
      return { g: g, m: L.marker([g.bounds[0], g.bounds[1]], { icon: icon, interactive: false, keyboard: false, zIndexOffset: 2000 }) };
    });
    return R;
  }

  /* Vector tiles inlined by routetrace (base64 MVT, "z/x/y" keys), drawn by the vendored
   * protomaps-leaflet. Its PMTiles source is handed an object that answers getZxy from the
   * page itself: no URL, no request. */
  function vectorTiles(T, print) {
    var source = {
      getZxy: function (z, x, y) {
        var b = T.tiles[z + "/" + x + "/" + y];
        if (!b) { return Promise.resolve(undefined); }
        var s = atob(b), u = new Uint8Array(s.length);
        for (var i = 0; i < s.length; i++) { u[i] = s.charCodeAt(i); }
        return Promise.resolve({ data: u.buffer });
      }
    };
    return protomapsL.leafletLayer({ url: source, flavor: "light", lang: "en", maxDataZoom: T.max_zoom,
                                     attribution: "", noWrap: true, tileDelay: print ? 0 : 3 });
  }

  /* What the vector tile canvases show now (a cheap fingerprint of their pixels). */
  function canvasState(layers) {
    var parts = [];
    layers.forEach(function (l) {
      var c = l.getContainer && l.getContainer();
      if (!c) { return; }
      c.querySelectorAll("canvas").forEach(function (cv) { parts.push(cv.toDataURL()); });
    });
    var s = parts.join("|"), h = 0;
    for (var i = 0; i < s.length; i += 7) { h = (h * 31 + s.charCodeAt(i)) | 0; }
    return parts.length + ":" + s.length + ":" + h;
  }

  /* Resolves when the vector tile layers have drawn and stopped redrawing: no tile loading
   * and the canvases unchanged for 300 ms (protomaps-leaflet redraws a tile when a label
   * from a neighbour arrives, after the tile itself has loaded; under CPU load that came
   * after the screenshot: two PNGs of one exhibit differed). At most 15 s; at once without
   * vector layers. */
  function tilesDrawn(layers) {
    layers = layers.filter(function (l) { return !!l; });
    return new Promise(function (resolve) {
      var t0 = Date.now(), calm = 0, last = null;
      (function poll() {
        if (!layers.length || Date.now() - t0 > 15000) { resolve(); return; }
        var busy = layers.some(function (l) { return l.isLoading(); });
        var now = busy ? null : canvasState(layers);
        calm = (!busy && now === last) ? calm + 1 : 0;
        last = now;
        if (calm >= 3) { resolve(); return; }
        setTimeout(poll, 100);
      })();
    });
  }

  function background(R) {
    var map = R.map, D = R.D;
    map.getContainer().style.background = "#dde6ec";
    if (D.tiles && D.tiles.kind === "vector") {
      R.vectorLayer = vectorTiles(D.tiles, R.print).addTo(map);
    } else if (D.tiles) {
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
        interactive: false, renderer: R.renderer,
        style: { color: "#9b9b9b", weight: 1, fillColor: "#f4f2ee", fillOpacity: D.tiles ? 0 : 1 }
      }).addTo(map);
    }
    if (D.roads && D.roads.length) {
      var roads = L.layerGroup();
      D.roads.forEach(function (r) {
        var pts = r.lat.map(function (la, i) { return [la, r.lon[i]]; });
        L.polyline(pts, { color: "#b8b2a7", weight: 2, renderer: R.renderer, interactive: false }).addTo(roads);
      });
      roads.addTo(map);
      R.overlays.push(["Roads (background)", roads]);
    }
    R.townLayer = L.layerGroup();
    R.townItems = (D.towns || []).map(function (t) {
      var icon = L.divIcon({ className: "rt-town", html: el("span", null, t.name), iconSize: null });
      var m = L.marker([t.lat, t.lon], { icon: icon, interactive: false, keyboard: false, zIndexOffset: -1000 });
      m.addTo(R.townLayer);
      return { t: t, label: m, ll: L.latLng(t.lat, t.lon) };
    });
    if (R.townItems.length) { R.townLayer.addTo(map); R.overlays.push(["Town names (background)", R.townLayer]); }
  }

  /* ---- routes, per subject, simplified per zoom ---- */
  function routeLayers(R) {
    var map = R.map, D = R.D, span = Math.max(1, D.t_span);
    R.subjects = D.subjects.map(function (s) {
      var S = { s: s, levels: s.levels.map(function (lv) { return { tol: lv.tol, v: decode(lv.enc), runs: null }; }) };
      S.group = L.layerGroup().addTo(map);
      S.current = null;
      S.pos = L.circleMarker([0, 0], { radius: 6, color: "#000", weight: 2, fillColor: s.colour, fillOpacity: 1, renderer: R.renderer });
      S.pos.bindTooltip(el("span", null, s.id));
      R.overlays.push(["Route: " + s.id, S.group]);
      return S;
    });
    R.showLevels = function () {
      R.subjects.forEach(function (S) {
        var lv = levelFor(map, S);
        if (lv === S.current) { return; }
        if (S.current) { S.current.runs.forEach(function (r) { S.group.removeLayer(r.under); S.group.removeLayer(r.line); }); }
        if (!lv.runs) { lv.runs = buildRuns(lv.v, span, D.n_bins, R.renderer, S.s.colour); }
        lv.runs.forEach(function (r) { r.state = "full"; S.group.addLayer(r.under); });
        lv.runs.forEach(function (r) { S.group.addLayer(r.line); });
        S.current = lv;
        applyTime(S, R.T);
      });
    };
  }

  function levelFor(map, S) {
    var z = map.getZoom(), lat = map.getCenter().lat;
    var mpp = 40075016.686 * Math.cos(lat * Math.PI / 180) / (256 * Math.pow(2, z));
    for (var i = 0; i < S.levels.length; i++) { if (S.levels[i].tol <= mpp) { return S.levels[i]; } }
    return S.levels[S.levels.length - 1];
  }

  function applyTime(S, T) {
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

  function popupOptions(R) {
    return { autoPanPaddingTopLeft: R.pad.tl, autoPanPaddingBottomRight: R.pad.br, maxWidth: 340 };
  }

  /* ---- unobserved intervals: dashed lines; their labels are placed like stop labels ---- */
  function gapLayers(R) {
    R.gapLayer = L.layerGroup().addTo(R.map);
    R.gapItems = R.D.gaps.map(function (g) {
      var grp = L.layerGroup();
      var line = L.polyline([[g.lat0, g.lon0], [g.lat1, g.lon1]], { color: "#555", weight: 2.5, dashArray: "6 6", renderer: R.renderer });
      line.bindPopup(card("Unobserved: " + g.subject_id, [["from", g.start], ["to", g.end], ["duration", g.duration], ["distance", g.distance]]), popupOptions(R));
      line.addTo(grp);
      var icon = L.divIcon({ className: "rt-gap-label", html: el("span", null, g.label), iconSize: null });
      var mid = [(g.lat0 + g.lat1) / 2, (g.lon0 + g.lon1) / 2];
      var m = L.marker(mid, { icon: icon, interactive: false, keyboard: false, zIndexOffset: 500 }).addTo(grp);
      R.gapLayer.addLayer(grp);
      return { g: g, layer: grp, label: m, ll: L.latLng(mid) };
    });
    R.overlays.push(["Unobserved intervals (dashed)", R.gapLayer]);
  }

  /* ---- stops: numbered labels, a dot at the exact position, radius to scale ---- */
  function stopLayers(R) {
    var layers = {};
    R.stopItems = R.D.stops.map(function (s) {
      if (!layers[s.subject_id]) { layers[s.subject_id] = L.layerGroup().addTo(R.map); }
      var grp = L.layerGroup();
      L.circle([s.lat, s.lon], { radius: s.radius_m, color: s.colour, weight: 1.5, dashArray: "3 3", fillOpacity: 0.08, renderer: R.renderer, interactive: false }).addTo(grp);
      L.circleMarker([s.lat, s.lon], { radius: 2.5, color: "#111", weight: 1, fillColor: "#111", fillOpacity: 1, renderer: R.renderer, interactive: false }).addTo(grp);
      var w = Math.max(24, 12 + 8 * String(s.no).length);
      var icon = L.divIcon({ className: "rt-stop", html: el("span", null, s.no), iconSize: [w, 24], iconAnchor: [w / 2, 12] });
      var m = L.marker([s.lat, s.lon], { icon: icon, title: "stop " + s.no, zIndexOffset: 1000, keyboard: !R.print });
      m.bindTooltip(el("span", null, "Stop " + s.no + " \u00b7 " + s.subject_id + " \u00b7 " + s.arrival));
      m.bindPopup(card("Stop " + s.no + ": " + s.subject_id, [
        ["arrival", s.arrival], ["departure", s.departure], ["dwell (observed)", s.dwell],
        ["time zone", s.tz], ["position", s.lat.toFixed(6) + ", " + s.lon.toFixed(6)],
        ["radius", s.radius_m.toFixed(0) + " m"], ["fixes", s.n_fixes], ["observed", s.observed],
        ["near", s.near_place], ["sources", s.sources], ["flags", s.flags],
        ["chronology", "row " + s.no + (s.group ? " \u00b7 group " + s.group : "")]]), popupOptions(R));
      m.addTo(grp);
      grp.addTo(layers[s.subject_id]);
      return { s: s, layer: grp, parent: layers[s.subject_id], marker: m, w: w, ll: L.latLng(s.lat, s.lon) };
    });
    Object.keys(layers).sort().forEach(function (k) { R.overlays.push(["Stops: " + k, layers[k]]); });
  }

  var PLACE_LAYER = { safehouse: "Safehouses", indicated: "Indicated places", other: "Other places" };
  var PLACE_SYMBOL = { safehouse: "\u2302", indicated: "\u25C6", other: "\u25A0" };

  /* ---- places (indicated, safehouse, other) ---- */
  function placeLayers(R) {
    var layers = {};
    R.placeItems = R.D.places.map(function (p) {
      var key = PLACE_LAYER[p.symbol];
      if (!layers[key]) { layers[key] = L.layerGroup().addTo(R.map); }
      if (p.radius_m > 0) {
        L.circle([p.lat, p.lon], { radius: p.radius_m, color: "#b2182b", weight: 1, fillOpacity: 0.05, renderer: R.renderer, interactive: false }).addTo(layers[key]);
      }
      var cls = "rt-place rt-place-" + p.symbol + (p.worst ? " rt-verdict-" + p.worst.replace(/[^a-z-]/g, "") : "");
      var icon = L.divIcon({ className: cls, html: el("span", null, PLACE_SYMBOL[p.symbol]), iconSize: [16, 16], iconAnchor: [8, 8] });
      var m = L.marker([p.lat, p.lon], { icon: icon, title: p.name || p.kind, keyboard: !R.print });
      m.bindTooltip(el("span", null, (p.name || p.kind)));
      m.bindPopup(card(p.label, [["name", p.name], ["address", p.address], ["statement", p.text],
        ["time", p.time], ["radius", p.radius_m ? p.radius_m.toFixed(0) + " m" : ""], ["verdict", p.verdict], ["source", p.source]]), popupOptions(R));
      m.addTo(layers[key]);
      return { p: p, parent: layers[key], ll: L.latLng(p.lat, p.lon) };
    });
    Object.keys(layers).sort().forEach(function (k) { R.overlays.push([k, layers[k]]); });
  }

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
        dots.moveTo(p.x + 2.5, p.y); dots.arc(p.x, p.y, 2.5, 0, 2 * Math.PI);
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
      this._tip.setContent(el("span", null, s.kind[best] + " \u00b7 " + s.time[best] +
        (s.acc[best] > 0 ? " \u00b7 \u00b1" + Math.round(s.acc[best]) + " m" : "") + " \u00b7 " + this.src.label));
      m.openTooltip(this._tip);
    }
  });

  function pointLayers(R) {
    R.pointLayers = R.D.points.map(function (src) {
      var layer = new PointsLayer(src);
      if (src.on) { layer.addTo(R.map); }
      R.overlays.push(["Source: " + src.label, layer]);
      return layer;
    });
  }

  /* ---- the slider's time: what has happened by T is shown ---- */
  function setTime(R, T) {
    R.T = T;
    R.subjects.forEach(function (S) { applyTime(S, T); });
    R.stopItems.forEach(function (it) {
      var on = it.s.t_arrival <= T;
      if (on && !it.parent.hasLayer(it.layer)) { it.parent.addLayer(it.layer); }
      if (!on && it.parent.hasLayer(it.layer)) { it.parent.removeLayer(it.layer); }
    });
    R.gapItems.forEach(function (it) {
      var on = it.g.t_start <= T;
      if (on && !R.gapLayer.hasLayer(it.layer)) { R.gapLayer.addLayer(it.layer); }
      if (!on && R.gapLayer.hasLayer(it.layer)) { R.gapLayer.removeLayer(it.layer); }
    });
    R.pointLayers.forEach(function (l) { l.setTime(T); });
  }

  /* ---- label placement ----
   * Every visible stop number, group letter and gap label gets a box that overlaps no
   * other label, no control and (when moved) no stop's or place's exact position. A
   * number that cannot stay on its stop moves to the nearest free place on rings around
   * it, with a thin leader line to the stop's dot; one that finds no place within 190 px
   * is hidden (its group frame and detail view show it). */
  function shown(layer, map) { return map.hasLayer(layer); }

  function frameRect(R, g, size) {
    var map = R.map, x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity, n = 0;
    R.stopItems.forEach(function (it) {
      if (it.s.group !== g.letter || !shown(it.marker, map)) { return; }
      var p = map.latLngToContainerPoint(it.ll);
      x0 = Math.min(x0, p.x); y0 = Math.min(y0, p.y); x1 = Math.max(x1, p.x); y1 = Math.max(y1, p.y); n++;
    });
    if (!n) { return null; }
    // a frame is drawn while the map is well below its group's detail scale (the overview)
    if (map.getZoom() > map.getBoundsZoom(groupBounds(g), false, L.point(80, 80)) - 1.5) { return null; }
    return { x: x0 - 16, y: y0 - 16, w: x1 - x0 + 32, h: y1 - y0 + 32 };
  }

  function placeBox(anchor, w, h, offsets, size, blocked, dots) {
    for (var k = 0; k < offsets.length; k++) {
      var dx = offsets[k][0], dy = offsets[k][1];
      var r = { x: anchor.x + dx - w / 2, y: anchor.y + dy - h / 2, w: w, h: h };
      if (!inside(r, size, 2) || anyOverlap(r, blocked)) { continue; }
      if ((dx || dy) && anyOverlap(r, dots)) { continue; }
      return { r: r, dx: dx, dy: dy };
    }
    return null;
  }

  function setIconBox(marker, w, h, dx, dy, on) {
    var icon = marker._icon;
    if (!icon) { return; }
    icon.style.marginLeft = Math.round(dx - w / 2) + "px";
    icon.style.marginTop = Math.round(dy - h / 2) + "px";
    icon.style.display = on ? "" : "none";
  }

  function leaderTo(R, anchor, r, dashed) {
    var map = R.map;
    var ex = Math.max(r.x, Math.min(anchor.x, r.x + r.w)), ey = Math.max(r.y, Math.min(anchor.y, r.y + r.h));
    L.polyline([map.containerPointToLatLng(anchor), map.containerPointToLatLng([ex, ey])],
               { color: dashed ? "#555" : "#111", weight: 1, opacity: 0.9, dashArray: dashed ? "2 3" : null,
                 renderer: R.renderer, interactive: false }).addTo(R.leaders);
  }

  function layoutLabels(R) {
    var map = R.map, size = map.getSize();
    R.leaders.clearLayers();
    R.frames.clearLayers();
    var blocked = controlRects(map), dots = [];
    var stops = R.stopItems.filter(function (it) { return shown(it.marker, map); });
    stops.forEach(function (it) { it.p = map.latLngToContainerPoint(it.ll); dots.push({ x: it.p.x - 4, y: it.p.y - 4, w: 8, h: 8 }); });
    R.placeItems.forEach(function (it) {
      if (!map.hasLayer(it.parent)) { return; }
      var p = map.latLngToContainerPoint(it.ll);
      dots.push({ x: p.x - 7, y: p.y - 7, w: 14, h: 14 });
    });
    // group frames and letters first: they say where the detail views are
    R.letters.forEach(function (L_) {
      var fr = frameRect(R, L_.g, size);
      if (!fr) { if (map.hasLayer(L_.m)) { map.removeLayer(L_.m); } return; }
      L.rectangle([map.containerPointToLatLng([fr.x, fr.y]), map.containerPointToLatLng([fr.x + fr.w, fr.y + fr.h])],
                  { color: "#111", weight: 1.5, fill: false, renderer: R.renderer, interactive: false }).addTo(R.frames);
      var corners = [[fr.x - 12, fr.y - 12], [fr.x + fr.w + 12, fr.y - 12], [fr.x - 12, fr.y + fr.h + 12], [fr.x + fr.w + 12, fr.y + fr.h + 12]];
      var got = null;
      for (var c = 0; c < corners.length && !got; c++) { got = placeBox(L.point(corners[c]), 22, 22, [[0, 0]], size, blocked, []); }
      if (!got) { got = placeBox(L.point(corners[0]), 22, 22, OFFSETS, size, blocked, []); }
      if (!map.hasLayer(L_.m)) { L_.m.addTo(map); }
      L_.m.setLatLng(map.containerPointToLatLng([got ? got.r.x + 11 : fr.x, got ? got.r.y + 11 : fr.y]));
      if (got) { blocked.push(got.r); }
      setIconBox(L_.m, 22, 22, 0, 0, !!got);
    });
    // crowded stops first (they need the free room near them), then by number
    stops.forEach(function (it) {
      it.crowd = 0;
      stops.forEach(function (o) { if (o !== it && Math.abs(o.p.x - it.p.x) < 40 && Math.abs(o.p.y - it.p.y) < 40) { it.crowd++; } });
    });
    var order = stops.slice().sort(function (a, b) { return (a.crowd > 0) - (b.crowd > 0) || a.s.no - b.s.no; });
    order.forEach(function (it) {
      var got = placeBox(it.p, it.w, 24, OFFSETS, size, blocked, dots);
      it.placed = got ? got.r : null;
      setIconBox(it.marker, it.w, 24, got ? got.dx : 0, got ? got.dy : 0, !!got);
      if (!got) { return; }
      blocked.push(got.r);
      if (got.dx || got.dy) { leaderTo(R, it.p, got.r); }
    });
    // gap labels last: near the middle of their dashed line, or hidden
    R.gapItems.forEach(function (it) {
      if (!map.hasLayer(it.label)) { return; }
      var icon = it.label._icon;
      icon.style.display = "";  // measured while shown (a hidden label measures 0)
      var w = icon.offsetWidth || 100, h = icon.offsetHeight || 18;
      var p = map.latLngToContainerPoint(it.ll);
      var got = placeBox(p, w, h, OFFSETS.slice(0, 140), size, blocked, dots);
      setIconBox(it.label, w, h, got ? got.dx : 0, got ? got.dy : 0, !!got);
      if (!got) { return; }
      blocked.push(got.r);
      if (got.dx || got.dy) { leaderTo(R, p, got.r, true); }  // dotted, to the middle of its line
    });
    // town names: background, centred on the town or left out; never over a label or a marker
    R.townItems.forEach(function (it) {
      if (!map.hasLayer(it.label) || !it.label._icon) { return; }
      var icon = it.label._icon;
      icon.style.display = "";
      var w = icon.offsetWidth || 60, h = icon.offsetHeight || 14;
      var got = placeBox(map.latLngToContainerPoint(it.ll), w, h, [[0, 0]], size, blocked.concat(dots), []);
      setIconBox(it.label, w, h, 0, 0, !!got);
      if (got) { blocked.push(got.r); }
    });
  }

  /* ---- legend: one entry for every symbol the map draws ---- */
  function legendBox(D, opts) {
    var box = el("div", "rt-legend" + (opts.print ? " rt-legend-print" : " leaflet-bar"));
    if (!opts.print) { box.id = "rt-legend"; }
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
    var has = function (sym) { return D.places.some(function (p) { return p.symbol === sym; }); };
    var keys = [["rt-key-stop", "1", "numbered stop (row of the chronology); the dot is its exact position, a thin line leads to a number set aside"]];
    if (D.groups.length) { keys.push(["rt-key-frame", "A", "frame: stops close together, shown in detail (" + (opts.print ? "a page each" : "'Zoom to'") + ")"]); }
    if (has("indicated")) { keys.push(["rt-key-place rt-place-indicated", "\u25C6", "place indicated in a statement"]); }
    if (has("safehouse")) { keys.push(["rt-key-place rt-place-safehouse", "\u2302", "safehouse"]); }
    if (has("other")) { keys.push(["rt-key-place rt-place-other", "\u25A0", "other place (visit, learned or derived place)"]); }
    keys.push(["rt-key-circle", "", "circle: stated accuracy / stop or place radius, true scale"]);
    if (D.points.length) { keys.push(["rt-key-point", "\u25CF", "evidence point (photo, visit, cell, Wi-Fi" + (D.points.some(function (p) { return p.gps; }) ? "; every GPS fix: layer off at first" : "") + ")"]); }
    if (D.thinned) { keys.push(["rt-key-thinned", "!", D.thinned]); }
    if (D.gaps.length) { keys.push(["rt-key-gap", "", "dashed: unobserved, no fixes (straight line is not the route)"]); }
    if (D.roads && D.roads.length) { keys.push(["rt-key-road", "", "road (background, not evidence)"]); }
    if (D.towns && D.towns.length) { keys.push(["rt-key-town", "Aa", "town name (background, not evidence)"]); }
    if (!opts.print) { keys.push(["rt-key-pos", "\u25CB", "position at the slider's time"]); }
    if (D.has_verdicts) { keys.push(["rt-key-verdict", "\u25C6", "statement check: green supported, orange inconclusive / not observed, black contradicted"]); }
    keys.forEach(function (k) {
      var row = el("div", "rt-legend-row");
      row.appendChild(el("span", k[0], k[1]));
      row.appendChild(el("span", null, k[2]));
      box.appendChild(row);
    });
    return box;
  }

  var NorthArrow = L.Control.extend({
    options: { position: "topleft" },
    onAdd: function () {
      var box = el("div", "rt-north leaflet-bar");
      box.appendChild(el("div", "rt-north-arrow", "\u25B2"));
      box.appendChild(el("div", "rt-north-n", "N"));
      box.title = "North is up (Web Mercator)";
      return box;
    }
  });

  function groupBounds(g) {
    // at least about 400 m across, so a tight group is not shown at street-level zoom
    var s = g.bounds[0], w = g.bounds[1], n = g.bounds[2], e = g.bounds[3];
    var dlat = Math.max(0, 0.0036 - (n - s)) / 2, dlon = Math.max(0, 0.0036 / Math.cos(s * Math.PI / 180) - (e - w)) / 2;
    return [[s - dlat, w - dlon], [n + dlat, e + dlon]];
  }

  /* Redraw the whole route canvas now, instead of the pieces Leaflet queued for the next
   * frame (the leader lines and frames just replaced): pieces redrawn in one frame or in
   * two gave pixels that differed from run to run. */
  function redrawCanvas(R) {
    var r = R.renderer;
    if (!r._ctx) { return; }
    if (r._redrawRequest) { L.Util.cancelAnimFrame(r._redrawRequest); r._redrawRequest = null; }
    r._redrawBounds = null;
    r._redraw();
  }

  function finish(R) {
    // a reset view ends with 'viewreset', which leaves the canvas renderer at a sub-pixel
    // offset; Chromium sometimes prints that offset as it is and sometimes snapped to whole
    // pixels, so one exhibit gave two PDFs. A finished move ('moveend') puts the canvas on
    // whole pixels, the same on screen and on paper.
    R.map.fire("moveend");
    redrawCanvas(R);
  }

  /* ---- the screen exhibit ---- */
  window.routetraceExhibit = function (map, D) {
    window.routetraceData = D;
    var R = buildLayers(map, D, { print: false });
    var ticks = D.ticks, label, slider;
    function setTick(idx) {
      setTime(R, (idx >= ticks.t.length - 1) ? Infinity : ticks.t[idx]);
      label.textContent = ticks.label[idx];
      layoutLabels(R);
    }
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
        slider.addEventListener("input", function () { setTick(parseInt(slider.value, 10)); });
        return box;
      }
    });
    new SliderControl().addTo(map);
    var LegendControl = L.Control.extend({
      options: { position: "bottomright" },
      onAdd: function () {
        var box = legendBox(D, { print: false });
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        return box;
      }
    });
    new LegendControl().addTo(map);
    L.control.scale({ imperial: false, position: "topleft", maxWidth: 140 }).addTo(map);
    new NorthArrow().addTo(map);
    var ctlOverlays = {};
    R.overlays.forEach(function (o) { ctlOverlays[esc(o[0])] = o[1]; });
    new LayersControl(null, ctlOverlays, { collapsed: D.collapsed_layers, position: "topright" }).addTo(map);

    map.invalidateSize(false);
    function fitPad() {
      var fp = freePadding(map);
      R.pad.tl.x = fp.tl[0]; R.pad.tl.y = fp.tl[1]; R.pad.br.x = fp.br[0]; R.pad.br.y = fp.br[1];
      return { paddingTopLeft: [fp.tl[0] + 16, fp.tl[1] + 16], paddingBottomRight: [fp.br[0] + 16, fp.br[1] + 16], animate: false };
    }
    var views = {
      overview: function () { map.fitBounds([[D.bounds[0], D.bounds[1]], [D.bounds[2], D.bounds[3]]], fitPad()); }
    };
    D.groups.forEach(function (g) {
      views[g.letter] = function () { var o = fitPad(); o.maxZoom = 17; map.fitBounds(groupBounds(g), o); };
    });
    // zoom-to buttons: the whole journey and each framed group
    var ZoomTo = L.Control.extend({
      options: { position: "topright" },
      onAdd: function () {
        var box = el("div", "rt-zoomto leaflet-bar");
        box.id = "rt-zoomto";
        box.appendChild(el("div", "rt-zoomto-title", "Zoom to"));
        [["overview", "whole journey"]].concat(D.groups.map(function (g) { return [g.letter, g.title]; })).forEach(function (v) {
          var b = el("button", "rt-zoomto-btn", v[1]);
          b.type = "button";
          b.setAttribute("data-view", v[0]);
          b.addEventListener("click", function () { map.closePopup(); views[v[0]](); });
          box.appendChild(b);
        });
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.disableScrollPropagation(box);
        return box;
      }
    });
    if (D.groups.length) { new ZoomTo().addTo(map); }

    // chronology rows and markers: a click on a row zooms to its stop and opens its popup
    var byNo = {};
    R.stopItems.forEach(function (it) { byNo[it.s.no] = it; });
    function zoomToStop(no) {
      var it = byNo[no];
      if (!it) { return; }
      if (it.s.group) { views[it.s.group](); } else { var o = fitPad(); o.maxZoom = Math.max(map.getZoom(), 14); map.fitBounds(L.latLng(it.s.lat, it.s.lon).toBounds(400), o); }
      if (!it.parent.hasLayer(it.layer)) { it.parent.addLayer(it.layer); }
      map.getContainer().scrollIntoView({ block: "nearest" });
      it.marker.openPopup();
    }
    document.querySelectorAll("#rt-chronology tr.rt-row-stop").forEach(function (tr) {
      var no = parseInt((tr.cells[0] && tr.cells[0].textContent) || "", 10);
      if (!byNo[no]) { return; }
      tr.classList.add("rt-linked");
      tr.title = "show stop " + no + " on the map";
      tr.addEventListener("click", function () { zoomToStop(no); });
    });
    R.stopItems.forEach(function (it) {
      it.marker.on("click", function () {
        document.querySelectorAll("#rt-chronology tr.rt-selected").forEach(function (t) { t.classList.remove("rt-selected"); });
        document.querySelectorAll("#rt-chronology tr.rt-row-stop").forEach(function (t) {
          if (parseInt((t.cells[0] && t.cells[0].textContent) || "", 10) === it.s.no) { t.classList.add("rt-selected"); }
        });
      });
    });
    window.routetraceView = function (name) { map.closePopup(); views[name](); layoutLabels(R); finish(R); };
    window.routetraceZoomToStop = zoomToStop;

    views.overview();
    map.on("zoomend", R.showLevels);
    map.on("moveend overlayadd overlayremove", function () { layoutLabels(R); });
    R.showLevels();
    setTick(ticks.t.length - 1);
    finish(R);
    window.routetraceVectorLayer = R.vectorLayer || null;
    tilesDrawn([R.vectorLayer]).then(function () {
      window.routetraceReady = true;
      document.body.setAttribute("data-routetrace-ready", "1");
    });
  };

  /* ---- the printed exhibit: the overview, one detail page per group ----
   * Built on request (render_static calls it with print media on) into #rt-print; each
   * page has its own map of fixed size, a scale bar, a north arrow and the legend beside
   * the map, so nothing covers a marker. "page k of m" and the exhibit header are printed
   * by the PDF's header and footer. */
  window.routetracePrint = function () {
    var D = window.routetraceData;
    var root = document.getElementById("rt-print");
    if (root) { root.parentNode.removeChild(root); }
    root = el("div", "rt-print");
    root.id = "rt-print";
    document.body.appendChild(root);
    document.body.classList.add("rt-has-print");
    var views = [null].concat(D.groups), vector = [];
    views.forEach(function (g, k) {
      var page = el("section", "rt-page");
      page.setAttribute("data-view", g ? g.letter : "overview");
      var head = g ? "Detail " + g.title + " (frame " + g.letter + " on page 1)"
                   : "Overview: the whole journey" + (D.groups.length ? "; framed groups are shown in detail on pages 2\u2013" + (D.groups.length + 1) : "");
      page.appendChild(el("div", "rt-page-head", head));
      var body = el("div", "rt-page-body");
      var mapDiv = el("div", "rt-page-map");
      mapDiv.style.width = D.print.map_w + "px";
      mapDiv.style.height = D.print.map_h + "px";
      body.appendChild(mapDiv);
      var side = el("div", "rt-page-side");
      side.appendChild(legendBox(D, { print: true }));
      if (!g && D.groups.length) {
        var list = el("div", "rt-page-groups");
        list.appendChild(el("div", "rt-legend-title", "Detail pages"));
        D.groups.forEach(function (gg, i) { list.appendChild(el("div", null, gg.title + ": page " + (i + 2))); });
        side.appendChild(list);
      }
      body.appendChild(side);
      page.appendChild(body);
      root.appendChild(page);
      var map = L.map(mapDiv, { zoomControl: false, attributionControl: false, zoomSnap: 0.25, preferCanvas: true,
                                fadeAnimation: false, zoomAnimation: false, markerZoomAnimation: false, inertia: false });
      map.setView([(D.bounds[0] + D.bounds[2]) / 2, (D.bounds[1] + D.bounds[3]) / 2], 9);
      var R = buildLayers(map, D, { print: true });
      L.control.scale({ imperial: false, position: "bottomleft", maxWidth: 160 }).addTo(map);
      new NorthArrow().addTo(map);
      var pad = D.print.pad;
      if (g) { map.fitBounds(groupBounds(g), { padding: [pad, pad], maxZoom: 17, animate: false }); }
      else { map.fitBounds([[D.bounds[0], D.bounds[1]], [D.bounds[2], D.bounds[3]]], { padding: [pad, pad], animate: false }); }
      R.showLevels();
      setTime(R, Infinity);
      R.pointLayers.forEach(function (l) { l.drawNow(); });
      layoutLabels(R);
      finish(R);
      vector.push(R.vectorLayer);
    });
    // with vector tiles, the pages are ready once their tiles have drawn (Playwright awaits this)
    if (!D.tiles || D.tiles.kind !== "vector") { window.routetracePrintReady = true; return views.length; }
    return tilesDrawn(vector).then(function () { window.routetracePrintReady = true; return views.length; });
  };
})();
