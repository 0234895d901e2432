// Interactive 3D scenes with plain WebGL 1. Each <figure class="scene3d"> holds a <canvas>, the
// scene (format: attnreport.scenes) in <script type="application/json" class="scene-data"> and a
// still <img class="scene-fallback">, which stays when there is no WebGL. Scene text is untrusted:
// textContent only. Sizes and widths are diameters in scene units, fov is vertical. Nothing moves
// by itself (prefers-reduced-motion). The figure gets data-state "drawn"|"fallback", data-frames;
// its first frame is marked "scene3d:first-frame" on the page's performance timeline.
// A <div class="scene3d-group"> holds several figures (data-choice) and buttons with the same
// data-choice: a button shows its figure and hides the others; a figure is set up (its JSON
// parsed, its WebGL context made) only when first shown. Its look is in base.css (classes
// scene3d-*, so themes can restyle it); it saves its PNG through save.js, loaded before it.
(function () {
  "use strict";

  // the drawing side (viewer3d-gl.js, loaded before this file)
  var G = window.attnreport.gl, PICK_PX = 8;
  var sub = G.sub, add = G.add, mulv = G.mulv, dot = G.dot, cross = G.cross, len = G.len, unit = G.unit,
    clamp = G.clamp, vec = G.vec, rotate = G.rotate, basis = G.basis, lookAt = G.lookAt,
    perspective = G.perspective, mul = G.mul, cssColor = G.cssColor, use = G.use, pointData = G.pointData,
    meshData = G.meshData, lineData = G.lineData, upload = G.upload;

  // the viewer's elements are styled by their classes (base.css), so themes can restyle them
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function show(e, on) { if (e) e.hidden = !on; }

  function fallback(figure, message, notes) {
    show(figure.querySelector("canvas"), false);
    show(figure.querySelector(".scene3d-stage"), false);
    show(figure.querySelector(".scene3d-bar"), false);
    var img = figure.querySelector("img.scene-fallback");
    show(img, true);
    figure.appendChild(el("p", "scene3d-fallback-note", message));
    if (notes && !notes.parentNode) figure.appendChild(notes);
    figure.dataset.state = "fallback";
  }

  // "#show=examples/x.html" in the page's address (a link from an example page) names the point to ring
  function shownLink() {
    var m = /(?:^#|&)show=([^&]*)/.exec(window.location.hash || "");
    if (!m) return null;
    try { return decodeURIComponent(m[1]); } catch (e) { return null; }
  }

  // the first opaque background colour at or above `node` (the card the scene sits on)
  function background(node) {
    for (; node && node.nodeType === 1; node = node.parentNode) {
      var c = getComputedStyle(node).backgroundColor;
      if (c && c !== "transparent" && !/rgba\(.*,\s*0\)$/.test(c)) return c;
    }
    return "#fff";
  }

  // ---- one figure ----
  function setup(figure) {
    var canvas = figure.querySelector("canvas"), img = figure.querySelector("img.scene-fallback");
    var scene = JSON.parse(figure.querySelector("script.scene-data").textContent);
    var notes = el("div", "scene3d-notes");
    (scene.notes || []).forEach(function (text) { notes.appendChild(el("div", "scene3d-note", text)); });
    var gl = null, attrs = {alpha: true, antialias: true, premultipliedAlpha: true, preserveDrawingBuffer: true};
    try { gl = canvas && canvas.getContext("webgl", attrs); } catch (e) { gl = null; }
    if (!gl) return fallback(figure, "A still image: the interactive view needs WebGL, which is off here.", notes);

    // a stage (canvas, label overlay, tooltip) shaped like the still image, a bar, the notes
    var src = [canvas, img].filter(function (e) { return e && e.getAttribute("width") > 0 && e.getAttribute("height") > 0; })[0];
    var stage = el("div", "scene3d-stage");
    if (src) stage.style.setProperty("--scene3d-aspect", src.getAttribute("width") + " / " + src.getAttribute("height"));
    canvas.parentNode.insertBefore(stage, canvas);
    stage.appendChild(canvas);
    show(canvas, true);
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", (scene.title || "3D scene") + ": drag or arrow keys turn, wheel or +/- zoom");
    var overlay = el("div", "scene3d-labels"), tip = el("div", "scene3d-tip");
    show(tip, false);
    stage.appendChild(overlay);
    stage.appendChild(tip);
    var bar = el("div", "scene3d-bar");
    var reset = el("button", "scene3d-reset", "reset view");
    reset.type = "button";
    bar.appendChild(reset);
    var saveButton = el("button", "scene3d-save", "save PNG");
    saveButton.type = "button";
    saveButton.title = "this view as a PNG, labels included";
    bar.appendChild(saveButton);
    bar.appendChild(el("span", "scene3d-hint",
      "drag to turn · wheel or pinch to zoom · hover a point for its label"));
    stage.parentNode.insertBefore(bar, stage.nextSibling);
    bar.parentNode.insertBefore(notes, bar.nextSibling);
    show(img, false);

    // data
    var axes = scene.axes || {}, bounds = axes.bounds || [-1, 1, -1, 1, -1, 1];
    var pts = scene.points || {}, labels = pts.label || [], links = pts.link || [], shown = shownLink();
    if (shown !== null && links.indexOf(shown) >= 0) {  // an example page sent the reader here
      pts.highlight = links.indexOf(shown);
      figure.dataset.highlight = String(pts.highlight);
    }
    var P = pointData(pts);
    var meshes = (scene.meshes || []).map(meshData).filter(function (m) { return m.count > 0; });
    var L = lineData(scene.lines || []);
    var lo = [+bounds[0], +bounds[2], +bounds[4]], hi = [+bounds[1], +bounds[3], +bounds[5]];
    var span = sub(hi, lo), axisSegs = [], ax;
    for (ax = 0; ax < 3; ax++) {
      var end = lo.slice();
      end[ax] = hi[ax];
      axisSegs = axisSegs.concat(lo, end);
    }
    var A = lineData([{segments: axisSegs, width: [-1.5, -1.5, -1.5], opacity: [0.7, 0.7, 0.7]}]);
    var centre = mulv(add(lo, hi), 0.5), radius = Math.max(len(span) / 2, 1e-6);
    for (var i = 0; i < P.n; i++) {
      var d = len(sub(vec(P.data.subarray(8 * i, 8 * i + 3), 0), centre)) + P.data[8 * i + 6];
      if (d > radius && isFinite(d)) radius = d;
    }

    var programs = G.programs(gl), pointProg = programs.point, lineProg = programs.line, meshProg = programs.mesh;
    var pointBuf = P.n ? upload(gl, P.data) : null, lineBuf = L.count ? upload(gl, L.data) : null;
    var axisBuf = upload(gl, A.data);
    meshes.forEach(function (m) { m.buffer = upload(gl, m.data); m.data = null; });
    var maxPoint = gl.getParameter(gl.ALIASED_POINT_SIZE_RANGE)[1] || 64;
    gl.clearColor(0, 0, 0, 0);  // transparent: the page's theme shows through
    gl.enable(gl.DEPTH_TEST);
    gl.depthFunc(gl.LEQUAL);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);  // premultiplied colours everywhere

    // HTML labels: each axis's name (past its far end) and its range (at its middle, "lo to hi"),
    // the scene's texts (right of their point, as in the still image) and the point a link asked
    // for. kind: "axis", "range", "shown" or none (a text). Each frame lays them out (`layout`):
    // inside the canvas and clear of one another, or not shown (a point keeps its hover label).
    var marks = [];
    function mark(xyz, text, kind, place) {
      var e = el("div", "scene3d-text" + (kind ? " scene3d-" + kind : ""), text);
      overlay.appendChild(e);
      marks.push({xyz: xyz, el: e, place: place, w: 0, h: 0});
    }
    function num(v) { return String(+v.toPrecision(3)); }
    // where a label may go, as its top-left corner for its anchor (x, y) and size (w, h); a
    // `clamp` label (an axis's) is moved into the canvas rather than left out
    var PLACES = {
      centred: {clamp: true, at: function (x, y, w, h) { return [[x - w / 2, y - h / 2], [x - w / 2, y - 1.6 * h], [x - w / 2, y + 0.6 * h]]; }},
      beside: {clamp: false, at: function (x, y, w, h) {
        return [[x + 4, y - h / 2], [x - 4 - w, y - h / 2], [x - w / 2, y - 4 - h], [x - w / 2, y + 4]];
      }},
      shown: {clamp: true, at: function (x, y, w, h) { return [[x + 10, y - h / 2], [x - 10 - w, y - h / 2], [x - w / 2, y + 10]]; }}
    };
    var names = axes.labels || ["x", "y", "z"], ranges = [];
    for (ax = 0; ax < 3; ax++) {
      var beyond = lo.slice(), middle = lo.slice();
      beyond[ax] = hi[ax] + 0.08 * Math.max(span[0], span[1], span[2]);
      middle[ax] = (lo[ax] + hi[ax]) / 2;
      mark(beyond, names[ax] == null ? "" : names[ax], "axis", PLACES.centred);
      ranges.push([middle, num(lo[ax]) + " to " + num(hi[ax])]);
    }
    if (figure.dataset.highlight) {
      var h = +figure.dataset.highlight, said = String(labels[h] == null ? "" : labels[h]);
      mark(vec(pts.xyz, h), said.length > 60 ? said.slice(0, 59) + "…" : said, "shown", PLACES.shown);
      figure.scrollIntoView({block: "center"});
    }
    (scene.texts || []).forEach(function (t) { mark(t.xyz || [0, 0, 0], t.text == null ? "" : t.text, null, PLACES.beside); });
    ranges.forEach(function (r) { mark(r[0], r[1], "range", PLACES.centred); });

    // in the order made (axes, the shown point, texts, ranges): each label at its first place that
    // lies inside the canvas and overlaps no label placed before it (a gap of 2 px), else hidden
    function layout() {
      var placed = [], GAP = 2;
      function clear(b) {
        for (var i = 0; i < placed.length; i++) {
          var o = placed[i];
          if (b[0] < o[2] + GAP && o[0] < b[2] + GAP && b[1] < o[3] + GAP && o[1] < b[3] + GAP) return false;
        }
        return true;
      }
      marks.forEach(function (m) {
        var s = toScreen(m.xyz), where = null;
        if (s && m.el.textContent) {
          m.el.hidden = false;
          if (!m.w) { m.w = m.el.offsetWidth; m.h = m.el.offsetHeight; }
          var tries = m.place.at(s[0], s[1], m.w, m.h);
          for (var k = 0; k < tries.length && !where; k++) {
            var x = tries[k][0], y = tries[k][1];
            if (m.place.clamp) { x = clamp(x, 0, cssW - m.w); y = clamp(y, 0, cssH - m.h); }
            var b = [x, y, x + m.w, y + m.h];
            if (b[0] >= 0 && b[1] >= 0 && b[2] <= cssW && b[3] <= cssH && clear(b)) where = b;
          }
        }
        m.el.hidden = !where;
        if (where) {
          placed.push(where);
          m.el.style.transform = "translate(" + where[0].toFixed(1) + "px," + where[1].toFixed(1) + "px)";
        }
      });
      figure.dataset.labelsShown = String(placed.length);
    }

    // camera: a turntable around the scene's up direction
    var c0 = scene.camera || {}, home = {
      pos: (c0.position || add(centre, [0, -3 * radius, radius])).slice(),
      target: (c0.target || centre).slice(),
      up: c0.up && len(c0.up) > 0 ? unit(c0.up) : [0, 0, 1],
      fov: clamp(+c0.fov || 30, 1, 170) * Math.PI / 180
    };
    var cam = {pos: home.pos, target: home.target};
    function orbit(dAz, dEl) {
      var up = home.up, off = rotate(sub(cam.pos, cam.target), up, dAz), r = len(off);
      var theta = Math.acos(clamp(dot(off, up) / r, -1, 1)), right = cross(up, off);
      if (len(right) < 1e-9) right = basis(cam.pos, cam.target, up)[0];
      off = rotate(off, unit(right), clamp(theta - dEl, 0.02, Math.PI - 0.02) - theta);
      cam = {pos: add(cam.target, off), target: cam.target};
      redraw();
    }
    function zoom(f) {
      var off = sub(cam.pos, cam.target), r = len(off);
      cam = {pos: add(cam.target, mulv(off, clamp(r * f, radius * 0.02, radius * 60) / r)), target: cam.target};
      redraw();
    }
    reset.addEventListener("click", function () { cam = {pos: home.pos, target: home.target}; redraw(); });

    // drawing, on demand
    var frames = 0, pending = false, view, proj, mvp, near, cssW = 0, cssH = 0, pxCss = 1;
    var projected = null;  // per point: screen x, y (CSS pixels) and pick radius, once per view
    function redraw() {
      projected = null;
      if (!pending) { pending = true; window.requestAnimationFrame(draw); }
    }
    function draw() {
      pending = false;
      cssW = canvas.clientWidth; cssH = canvas.clientHeight;
      if (!cssW || !cssH || gl.isContextLost()) return;
      var dpr = Math.min(window.devicePixelRatio || 1, 4096 / Math.max(cssW, cssH));
      var bw = Math.round(cssW * dpr), bh = Math.round(cssH * dpr);
      if (canvas.width !== bw || canvas.height !== bh) { canvas.width = bw; canvas.height = bh; }
      var b = basis(cam.pos, cam.target, home.up), dist = dot(sub(centre, cam.pos), b[2]);
      near = Math.max(dist - radius * 1.05, (dist + radius) * 0.002);
      view = lookAt(cam.pos, b);
      proj = perspective(home.fov, bw / bh, near, (dist + radius) * 1.5 + near);
      mvp = mul(proj, view);
      var px = proj[5] * bh / 2, ink = cssColor(getComputedStyle(figure).color);  // px: pixels per unit at depth 1
      pxCss = proj[5] * cssH / 2;
      var light = unit(add(add(mulv(b[0], 0.3), mulv(b[1], 0.5)), mulv(b[2], -1)));

      gl.viewport(0, 0, bw, bh);
      gl.depthMask(true);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      function drawMesh(m) {
        use(gl, meshProg, m.buffer, {u_mvp: mvp, u_light: light, u_col: m.color.concat(m.opacity)});
        gl.drawArrays(gl.TRIANGLES, 0, m.count);
      }
      function drawLines(buf, count, tint) {
        use(gl, lineProg, buf, {u_view: view, u_proj: proj, u_half: [bw / 2, bh / 2], u_near: near, u_px: px, u_tint: tint});
        gl.drawArrays(gl.TRIANGLES, 0, count);
      }
      var glass = meshes.filter(function (m) { return m.opacity < 0.999; });
      meshes.forEach(function (m) { if (m.opacity >= 0.999) drawMesh(m); });
      if (pointBuf) {
        use(gl, pointProg, pointBuf, {u_mvp: mvp, u_px: px, u_max: maxPoint, u_ink: ink});
        gl.drawArrays(gl.POINTS, 0, P.n);  // every point, one call
      }
      gl.depthMask(false);  // lines and translucent meshes blend, depth-tested, without writing depth
      drawLines(axisBuf, A.count, ink.concat(1));
      if (lineBuf) drawLines(lineBuf, L.count, [0, 0, 0, 0]);
      glass.sort(function (m, n) { return dot(sub(n.centre, m.centre), b[2]); });  // far to near
      gl.enable(gl.CULL_FACE);
      glass.forEach(function (m) {  // back faces first, then front faces
        gl.cullFace(gl.FRONT); drawMesh(m);
        gl.cullFace(gl.BACK); drawMesh(m);
      });
      gl.disable(gl.CULL_FACE);

      layout();
      frames += 1;
      if (frames === 1 && window.performance && performance.mark) performance.mark("scene3d:first-frame");
      figure.dataset.frames = String(frames);
      figure.dataset.state = "drawn";
    }
    // the current view as a PNG: the WebGL pixels over the page's background, then every visible
    // label drawn where the page shows it (the labels are HTML, not part of the WebGL canvas)
    function snapshot() {
      draw();
      var out = document.createElement("canvas"), k = canvas.width / Math.max(cssW, 1);
      out.width = canvas.width; out.height = canvas.height;
      var g = out.getContext("2d");
      g.fillStyle = background(figure);
      g.fillRect(0, 0, out.width, out.height);
      g.drawImage(canvas, 0, 0);
      var box = canvas.getBoundingClientRect();
      marks.forEach(function (m) {
        if (m.el.hidden || !m.el.textContent) return;
        var r = m.el.getBoundingClientRect(), cs = getComputedStyle(m.el), size = parseFloat(cs.fontSize) * k;
        g.font = cs.fontWeight + " " + size + "px " + cs.fontFamily;
        g.fillStyle = cs.color;
        g.globalAlpha = parseFloat(cs.opacity) || 1;
        g.textBaseline = "top";
        m.el.textContent.split("\n").forEach(function (line, i) {
          g.fillText(line, (r.left - box.left) * k, (r.top - box.top) * k + i * 1.2 * size);
        });
        g.globalAlpha = 1;
      });
      window.attnreport.save.saveCanvas(out, (scene.kind || "scene") + ".png");
    }
    saveButton.addEventListener("click", snapshot);
    function toScreen(p) {  // CSS pixels from the canvas's top left and depth; null behind the camera
      var m = mvp, w = m[3] * p[0] + m[7] * p[1] + m[11] * p[2] + m[15];
      if (!(w > near)) return null;
      return [((m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12]) / w + 1) / 2 * cssW,
        (1 - (m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13]) / w) / 2 * cssH, w];
    }

    // picking: project all points once per view on the CPU, then scan them per pointer move
    function pick(x, y) {
      if (!mvp || !P.n) return -1;
      var D = P.data, q = projected, best = -1, bestD = PICK_PX, i, o;
      if (!q) {
        q = projected = new Float32Array(3 * P.n);
        for (i = 0; i < P.n; i++) {
          o = 8 * i;
          var s = toScreen([D[o], D[o + 1], D[o + 2]]);
          q[3 * i + 2] = -1;
          if (s) q.set([s[0], s[1], Math.max(D[o + 6] * D[o + 7] * pxCss / s[2], 1.5) / 2], 3 * i);
        }
      }
      for (i = 0; i < P.n; i++) {
        var r = q[3 * i + 2], dx = q[3 * i] - x, dy = q[3 * i + 1] - y;
        if (r < 0 || Math.abs(dx) > r + bestD || Math.abs(dy) > r + bestD) continue;
        var d = Math.sqrt(dx * dx + dy * dy) - r;
        if (d < bestD) { bestD = d; best = i; }
      }
      return best;
    }
    function safeLink(i) {  // relative links only, resolved against the page, same scheme
      var link = links[i];
      if (typeof link !== "string" || !link || /[\u0000-\u0020\u007f\\]/.test(link) ||
        /^([a-z][a-z0-9+.-]*:|\/)/i.test(link)) return null;
      try {
        var url = new URL(link, document.baseURI);
        return url.protocol === window.location.protocol ? url.href : null;
      } catch (e) { return null; }
    }
    function hover(x, y) {
      var i = pick(x, y), label = i >= 0 && labels[i] != null ? String(labels[i]) : "";
      canvas.classList.toggle("scene3d-on-link", i >= 0 && !!safeLink(i));
      show(tip, !!label);
      if (!label) return;
      tip.textContent = label;
      var left = Math.max(0, Math.min(x + 12, cssW - tip.offsetWidth));
      var top = y + 14 + tip.offsetHeight > cssH ? y - 10 - tip.offsetHeight : y + 14;
      tip.style.transform = "translate(" + left + "px," + top + "px)";
    }

    // pointers: one drags (orbit), two pinch (zoom); a press without motion is a click
    var pointers = {}, downAt = null, moved = 0, pinch = 0;
    function local(e) { var r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }
    function spread() {  // distance between the first two pointers, 0 with fewer
      var k = Object.keys(pointers), a = pointers[k[0]], b = pointers[k[1]];
      return b ? Math.hypot(a[0] - b[0], a[1] - b[1]) : 0;
    }
    canvas.addEventListener("pointerdown", function (e) {
      if (e.button > 0) return;
      pointers[e.pointerId] = downAt = local(e);
      try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* not capturable: fine */ }
      moved = 0;
      pinch = spread();
    });
    canvas.addEventListener("pointermove", function (e) {
      var p = local(e), prev = pointers[e.pointerId];
      if (!prev) { if (e.pointerType === "mouse") hover(p[0], p[1]); return; }
      pointers[e.pointerId] = p;
      moved = Math.max(moved, Math.abs(p[0] - downAt[0]) + Math.abs(p[1] - downAt[1]));
      show(tip, false);
      if (Object.keys(pointers).length > 1) {
        var s = spread();
        if (pinch > 0 && s > 0) zoom(pinch / s);
        pinch = s;
        moved = 99;
      } else if (p[0] !== prev[0] || p[1] !== prev[1]) {
        var k = Math.PI / Math.max(cssH, 200);  // half a turn per canvas height
        orbit(-(p[0] - prev[0]) * k, (p[1] - prev[1]) * k);
      }
    });
    function release(e) {
      if (!pointers[e.pointerId]) return;
      delete pointers[e.pointerId];
      pinch = spread();
      if (Object.keys(pointers).length || e.type !== "pointerup" || moved > 4) return;
      var p = local(e), i = pick(p[0], p[1]), href = i >= 0 ? safeLink(i) : null;
      if (href) window.location.assign(href); else hover(p[0], p[1]);
    }
    canvas.addEventListener("pointerup", release);
    canvas.addEventListener("pointercancel", release);
    canvas.addEventListener("pointerleave", function () { show(tip, false); });
    canvas.addEventListener("wheel", function (e) {
      e.preventDefault();
      var dy = e.deltaY * (e.deltaMode === 1 ? 33 : e.deltaMode === 2 ? 400 : 1);
      zoom(Math.exp(clamp(dy, -300, 300) * 0.0015));
    }, {passive: false});
    var keys = {ArrowLeft: [1, 0], ArrowRight: [-1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1], "+": 1, "=": 1, "-": -1, "_": -1};
    canvas.addEventListener("keydown", function (e) {
      var k = keys[e.key];
      if (e.key === "Home" || e.key === "0") reset.click();
      else if (k && k.length) orbit(k[0] * Math.PI / 36, k[1] * Math.PI / 36);
      else if (k) zoom(Math.pow(1.15, -k));
      else return;
      e.preventDefault();
      show(tip, false);
    });
    canvas.addEventListener("webglcontextlost", function (e) {
      e.preventDefault();
      fallback(figure, "The graphics context was lost; this is a still image of the scene.", notes);
    });

    if (window.ResizeObserver) new ResizeObserver(redraw).observe(stage);
    window.addEventListener("resize", redraw);  // also catches devicePixelRatio changes (browser zoom)
    var mq = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)");
    if (mq && mq.addEventListener) mq.addEventListener("change", redraw);  // the text colour may change
    redraw();
  }

  function init(figure) {
    if (figure.dataset.setup) return;
    figure.dataset.setup = "1";
    try {
      setup(figure);
    } catch (e) {
      if (window.console) console.warn("scene3d:", e);
      fallback(figure, "The interactive view could not start; this is a still image of the scene.");
    }
  }
  function group(box) {
    if (box.dataset.setup) return;
    box.dataset.setup = "1";
    var buttons = box.querySelectorAll("button[data-choice]"), figures = box.querySelectorAll("figure.scene3d[data-choice]");
    function press(button, on) {  // the chosen button: base.css makes it bold and underlined
      button.setAttribute("aria-pressed", String(on));
    }
    function choose(key) {
      for (var i = 0; i < buttons.length; i++) press(buttons[i], buttons[i].dataset.choice === key);
      for (i = 0; i < figures.length; i++) {
        var on = figures[i].dataset.choice === key;
        figures[i].hidden = !on;
        if (on) init(figures[i]);
      }
      if (document.readyState === "complete") stills();
    }
    for (var i = 0; i < buttons.length; i++) {
      press(buttons[i], buttons[i].getAttribute("aria-pressed") === "true");
      buttons[i].addEventListener("click", function (e) { choose(e.currentTarget.dataset.choice); });
    }
  }
  function start() {
    var groups = document.querySelectorAll(".scene3d-group"), figures = document.querySelectorAll("figure.scene3d");
    for (var i = 0; i < groups.length; i++) group(groups[i]);
    for (i = 0; i < figures.length; i++) if (!figures[i].hidden) init(figures[i]);
  }
  // a printout shows the still image, not the canvas; the image is lazy (hidden while WebGL
  // draws, it would never load) and a print starts too soon to fetch it: so once the page has
  // loaded, and before a print, the shown scenes' images are fetched
  function stills() {
    var imgs = document.querySelectorAll("figure.scene3d:not([hidden]) img.scene-fallback");
    for (var i = 0; i < imgs.length; i++) imgs[i].loading = "eager";
  }
  if (document.readyState === "complete") stills(); else window.addEventListener("load", stills);
  window.addEventListener("beforeprint", stills);
  // a page that loads this script after its scenes (at the end of the body) gets them set up at
  // once, before any heavier script below it is parsed; the rest are set up when the DOM is done
  start();
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
})();
