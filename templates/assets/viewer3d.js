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

  var OUTLINE_RING = 1.5, HIGHLIGHT_RING = 2.2, PICK_PX = 8;

  // ---- vectors, column-major 4x4 matrices ----
  function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }
  function add(a, b) { return [a[0] + b[0], a[1] + b[1], a[2] + b[2]]; }
  function mulv(a, s) { return [a[0] * s, a[1] * s, a[2] * s]; }
  function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
  function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
  function len(a) { return Math.sqrt(dot(a, a)); }
  function unit(a) { var l = len(a); return l > 0 ? mulv(a, 1 / l) : [0, 0, 0]; }
  function clamp(v, lo, hi) { return v < lo ? lo : v > hi ? hi : v; }
  function vec(a, i) { return [+a[3 * i], +a[3 * i + 1], +a[3 * i + 2]]; }
  function rotate(v, k, t) {  // Rodrigues: v about the unit axis k by t
    var c = Math.cos(t), s = Math.sin(t), x = cross(k, v), d = dot(k, v) * (1 - c);
    return [v[0] * c + x[0] * s + k[0] * d, v[1] * c + x[1] * s + k[1] * d, v[2] * c + x[2] * s + k[2] * d];
  }
  function basis(eye, target, up) {  // [right, true up, forward]
    var f = unit(sub(target, eye)), r = cross(f, up);
    if (len(r) < 1e-9) r = cross(f, Math.abs(f[1]) < 0.9 ? [0, 1, 0] : [1, 0, 0]);
    r = unit(r);
    return [r, cross(r, f), f];
  }
  function lookAt(e, b) {
    var s = b[0], u = b[1], f = b[2];
    return [s[0], u[0], -f[0], 0, s[1], u[1], -f[1], 0, s[2], u[2], -f[2], 0, -dot(s, e), -dot(u, e), dot(f, e), 1];
  }
  function perspective(fovy, aspect, near, far) {
    var f = 1 / Math.tan(fovy / 2), nf = 1 / (near - far);
    return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0];
  }
  function mul(a, b) {
    var o = [];
    for (var i = 0; i < 16; i++) {
      var c = i & ~3, r = i & 3;
      o[i] = a[r] * b[c] + a[4 + r] * b[c + 1] + a[8 + r] * b[c + 2] + a[12 + r] * b[c + 3];
    }
    return o;
  }
  function rgb(c) { c = c || [128, 128, 128]; return [c[0] / 255, c[1] / 255, c[2] / 255]; }
  function cssColor(s) {  // "rgb(1, 2, 3)" or "color(srgb .1 .2 .3)" -> 0-1
    var m = String(s).match(/[\d.]+/g) || [0, 0, 0], k = /^color\(/.test(s) ? 1 : 255;
    return [m[0] / k, m[1] / k, m[2] / k];
  }
  // the viewer's elements are styled by their classes (base.css), so themes can restyle them
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function show(e, on) { if (e) e.hidden = !on; }

  // ---- shaders ----
  // points: flat discs of the exact colour, sized in scene units by perspective; a ring (outline,
  // highlight) widens the sprite and paints outside the disc in the text colour
  var POINT_VS = "attribute vec3 a_pos; attribute vec3 a_col; attribute vec2 a_size;" +
    "uniform mat4 u_mvp; uniform float u_px; uniform float u_max; varying vec3 v_col; varying float v_inner;" +
    "void main() { vec4 p = u_mvp * vec4(a_pos, 1.0); gl_Position = p;" +
    " float d = max(a_size.x * u_px / max(p.w, 1e-6), 1.5);" +
    " float s = min(a_size.y > 1.0 ? max(d * a_size.y, d + 3.0) : d, u_max);" +
    " gl_PointSize = s; v_col = a_col; v_inner = a_size.y > 1.0 ? min(d / s, 1.0 - 2.0 / s) : 2.0; }";
  var POINT_FS = "precision mediump float; varying vec3 v_col; varying float v_inner; uniform vec3 u_ink;" +
    "void main() { float r = length(gl_PointCoord * 2.0 - 1.0); if (r > 1.0) discard;" +
    " gl_FragColor = vec4(r > v_inner ? u_ink : v_col, 1.0); }";
  // a segment's quad: each vertex has its end, the other end, side (+-1), width (scene units, or
  // pixels when negative) and opacity; an end behind the near plane slides onto it; thinner than
  // a pixel draws one pixel, fainter
  var LINE_VS = "attribute vec3 a_a; attribute vec3 a_b; attribute vec3 a_swo; attribute vec3 a_col;" +
    "uniform mat4 u_view; uniform mat4 u_proj; uniform vec2 u_half; uniform float u_near; uniform float u_px;" +
    "uniform vec4 u_tint; varying vec4 v_col;" +
    "void main() { vec4 a = u_view * vec4(a_a, 1.0), b = u_view * vec4(a_b, 1.0); v_col = vec4(0.0);" +
    " if (a.z > -u_near && b.z > -u_near) { gl_Position = vec4(2.0, 2.0, 2.0, 1.0); return; }" +
    " if (a.z > -u_near) a = mix(a, b, (-u_near - a.z) / (b.z - a.z));" +
    " if (b.z > -u_near) b = mix(b, a, (-u_near - b.z) / (a.z - b.z));" +
    " vec4 ca = u_proj * a, cb = u_proj * b; vec2 d = (cb.xy / cb.w - ca.xy / ca.w) * u_half;" +
    " d = length(d) > 1e-5 ? normalize(d) : vec2(1.0, 0.0);" +
    " float w = a_swo.y < 0.0 ? -a_swo.y : a_swo.y * u_px / ca.w, alpha = a_swo.z * min(w, 1.0);" +
    " ca.xy += vec2(-d.y, d.x) * a_swo.x * 0.5 * max(w, 1.0) / u_half * ca.w; gl_Position = ca;" +
    " v_col = vec4(mix(a_col, u_tint.rgb, u_tint.a) * alpha, alpha); }";
  var LINE_FS = "precision mediump float; varying vec4 v_col; void main() { gl_FragColor = v_col; }";
  // meshes: two-sided Lambert (a light near the camera) plus ambient, premultiplied opacity
  var MESH_VS = "attribute vec3 a_pos; attribute vec3 a_nrm; uniform mat4 u_mvp; uniform vec3 u_light;" +
    "varying float v_light; void main() { gl_Position = u_mvp * vec4(a_pos, 1.0);" +
    " v_light = min(0.3 + 0.7 * abs(dot(normalize(a_nrm), u_light)), 1.0); }";
  var MESH_FS = "precision mediump float; varying float v_light; uniform vec4 u_col;" +
    "void main() { gl_FragColor = vec4(u_col.rgb * v_light * u_col.a, u_col.a); }";

  function compile(gl, vs, fs, attribs) {
    var p = gl.createProgram(), prog = {p: p, a: [], u: {}, stride: 0};
    [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]].forEach(function (pair) {
      var s = gl.createShader(pair[0]);
      gl.shaderSource(s, pair[1]);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error("shader: " + gl.getShaderInfoLog(s));
      gl.attachShader(p, s);
    });
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error("program: " + gl.getProgramInfoLog(p));
    attribs.forEach(function (a) { prog.a.push([gl.getAttribLocation(p, a[0]), a[1]]); prog.stride += 4 * a[1]; });
    return prog;
  }
  // switch to a program, point its attributes into one interleaved buffer, set its uniforms
  // (a number: float; 16 numbers: a matrix; 2-4: a vector)
  function use(gl, prog, buffer, uniforms) {
    for (var i = 0; i < 8; i++) gl.disableVertexAttribArray(i);
    gl.useProgram(prog.p);
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    var off = 0;
    prog.a.forEach(function (a) {
      if (a[0] >= 0) {
        gl.enableVertexAttribArray(a[0]);
        gl.vertexAttribPointer(a[0], a[1], gl.FLOAT, false, prog.stride, off);
      }
      off += 4 * a[1];
    });
    for (var k in uniforms) {
      var v = uniforms[k], loc = prog.u[k] || (prog.u[k] = gl.getUniformLocation(prog.p, k));
      if (typeof v === "number") gl.uniform1f(loc, v);
      else if (v.length === 16) gl.uniformMatrix4fv(loc, false, v);
      else gl["uniform" + v.length + "fv"](loc, v);
    }
  }
  function upload(gl, array) {
    var b = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, b);
    gl.bufferData(gl.ARRAY_BUFFER, array, gl.STATIC_DRAW);
    return b;
  }

  // ---- geometry from the scene JSON ----
  // points: one interleaved buffer, x y z r g b diameter ring
  function pointData(pts) {
    var xyz = pts.xyz || [], n = Math.floor(xyz.length / 3), col = pts.color || [], size = pts.size || [];
    var out = new Float32Array(n * 8), outline = pts.outline || [], grey = col.length < 3 * n;
    for (var i = 0, o = 0; i < n; i++, o += 8) {
      out.set(vec(xyz, i), o);
      out.set(grey ? [0.5, 0.5, 0.5] : rgb(vec(col, i)), o + 3);
      out[o + 6] = +size[i] > 0 ? +size[i] : 0.01;
      out[o + 7] = i === pts.highlight ? HIGHLIGHT_RING : outline[i] ? OUTLINE_RING : 1;
    }
    return {n: n, data: out};
  }
  // meshes: non-indexed triangles (so any size works in WebGL 1), area-weighted vertex normals
  function meshData(m) {
    var v = m.vertices || [], t = m.triangles || [], nv = Math.floor(v.length / 3), i, j;
    var nrm = new Float64Array(3 * nv), tris = [], sum = [0, 0, 0];
    for (i = 0; i + 2 < t.length; i += 3) {
      var a = t[i], b = t[i + 1], c = t[i + 2];
      if (!(a >= 0 && b >= 0 && c >= 0 && a < nv && b < nv && c < nv)) continue;
      var fn = cross(sub(vec(v, b), vec(v, a)), sub(vec(v, c), vec(v, a)));
      for (j = 0; j < 9; j++) nrm[3 * t[i + (j / 3 | 0)] + j % 3] += fn[j % 3];
      tris.push([a, b, c, fn]);
    }
    var out = new Float32Array(tris.length * 18);
    tris.forEach(function (tri, k) {
      for (j = 0; j < 3; j++) {
        var p = vec(v, tri[j]), nn = vec(nrm, tri[j]);
        nn = unit(len(nn) > 1e-12 ? nn : tri[3]);
        out.set(p.concat(len(nn) ? nn : [0, 0, 1]), 18 * k + 6 * j);
        sum = add(sum, p);
      }
    });
    var count = 3 * tris.length;
    return {count: count, data: out, centre: mulv(sum, 1 / Math.max(count, 1)), color: rgb(m.color),
      opacity: m.opacity == null ? 1 : clamp(+m.opacity, 0, 1)};
  }
  // line sets: 6 vertices per segment, a(3) b(3) side width opacity(3) colour(3)
  function lineData(sets) {
    var total = 0, o = 0;
    sets.forEach(function (s) { total += Math.floor((s.segments || []).length / 6); });
    var out = new Float32Array(total * 72);
    sets.forEach(function (s) {
      var seg = s.segments || [], c = rgb(s.color), w = s.width || [], op = s.opacity || [];
      for (var i = 0; i < Math.floor(seg.length / 6); i++) {
        var a = vec(seg, 2 * i), b = vec(seg, 2 * i + 1), wi = w[i] == null ? 0.02 : +w[i];
        var oi = op[i] == null ? 1 : +op[i];
        // corners A+n, A-n, B+n, A-n, B-n, B+n: seen from B the direction flips, so does the side
        [[a, b, 1], [a, b, -1], [b, a, -1], [a, b, -1], [b, a, 1], [b, a, -1]].forEach(function (q) {
          out.set(q[0].concat(q[1], [q[2], wi, oi], c), o);
          o += 12;
        });
      }
    });
    return {count: total * 6, data: out};
  }

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

    var pointProg = compile(gl, POINT_VS, POINT_FS, [["a_pos", 3], ["a_col", 3], ["a_size", 2]]);
    var lineProg = compile(gl, LINE_VS, LINE_FS, [["a_a", 3], ["a_b", 3], ["a_swo", 3], ["a_col", 3]]);
    var meshProg = compile(gl, MESH_VS, MESH_FS, [["a_pos", 3], ["a_nrm", 3]]);
    var pointBuf = P.n ? upload(gl, P.data) : null, lineBuf = L.count ? upload(gl, L.data) : null;
    var axisBuf = upload(gl, A.data);
    meshes.forEach(function (m) { m.buffer = upload(gl, m.data); m.data = null; });
    var maxPoint = gl.getParameter(gl.ALIASED_POINT_SIZE_RANGE)[1] || 64;
    gl.clearColor(0, 0, 0, 0);  // transparent: the page's theme shows through
    gl.enable(gl.DEPTH_TEST);
    gl.depthFunc(gl.LEQUAL);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);  // premultiplied colours everywhere

    // HTML labels: each axis's name (centred past its far end) and range; the scene's texts start
    // just right of their point, as in the still image
    // kind: "range" (an axis's numbers), "axis" (its name), "shown" (the point a link asked for) or none
    var marks = [];
    function mark(xyz, text, kind, shift) {
      var e = el("div", "scene3d-text" + (kind ? " scene3d-" + kind : ""), text);
      overlay.appendChild(e);
      marks.push({xyz: xyz, el: e, shift: shift || " translate(-50%,-50%)"});
    }
    function num(v) { return String(+v.toPrecision(3)); }
    var names = axes.labels || ["x", "y", "z"];
    mark(lo, lo.map(num).join(", "), "range");
    for (ax = 0; ax < 3; ax++) {
      var beyond = lo.slice(), tmax = lo.slice();
      beyond[ax] = hi[ax] + 0.08 * Math.max(span[0], span[1], span[2]);
      tmax[ax] = hi[ax];
      mark(beyond, names[ax] == null ? "" : names[ax], "axis");
      mark(tmax, num(hi[ax]), "range");
    }
    (scene.texts || []).forEach(function (t) { mark(t.xyz || [0, 0, 0], t.text == null ? "" : t.text, null, " translate(4px,-50%)"); });
    if (figure.dataset.highlight) {
      var h = +figure.dataset.highlight, said = String(labels[h] == null ? "" : labels[h]);
      mark(vec(pts.xyz, h), said.length > 60 ? said.slice(0, 59) + "…" : said, "shown", " translate(10px,-50%)");
      figure.scrollIntoView({block: "center"});
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

      marks.forEach(function (m) {
        var s = toScreen(m.xyz), on = s && s[0] > -40 && s[0] < cssW + 40 && s[1] > -20 && s[1] < cssH + 20;
        m.el.hidden = !on;
        if (on) m.el.style.transform = "translate(" + s[0].toFixed(1) + "px," + s[1].toFixed(1) + "px)" + m.shift;
      });
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
