// Interactive 3D scenes (decision space, attention flow) drawn with plain WebGL 1, no library.
// Every <figure class="scene3d"> holds a <canvas>, its scene as <script type="application/json"
// class="scene-data"> and a pre-rendered <img class="scene-fallback">; without WebGL the image
// stays. Scene text (labels, texts, notes, axis names) is untrusted: set with textContent only.
// Units follow attnreport.scenes: point sizes and line widths are diameters in scene units,
// colours 0-255, fov the vertical view angle. Points are flat discs of their exact colour; an
// outlined point gets a ring (1.5x its diameter) in the text colour, the highlighted one a 2.2x
// ring. Lines are screen-facing quads as wide as a tube of that diameter would look.
// The figure reports data-state ("drawn" | "fallback") and data-frames for tests.
(function () {
  "use strict";

  var OUTLINE_RING = 1.5, HIGHLIGHT_RING = 2.2, PICK_PX = 8;

  // ---- vectors and column-major 4x4 matrices ----
  function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }
  function add(a, b) { return [a[0] + b[0], a[1] + b[1], a[2] + b[2]]; }
  function mulv(a, s) { return [a[0] * s, a[1] * s, a[2] * s]; }
  function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
  function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
  function len(a) { return Math.sqrt(dot(a, a)); }
  function unit(a) { var l = len(a); return l > 0 ? mulv(a, 1 / l) : [0, 0, 0]; }
  function clamp(v, lo, hi) { return v < lo ? lo : v > hi ? hi : v; }
  function rotate(v, k, angle) {  // Rodrigues: v about unit axis k
    var c = Math.cos(angle), s = Math.sin(angle), kx = cross(k, v), d = dot(k, v) * (1 - c);
    return [v[0] * c + kx[0] * s + k[0] * d, v[1] * c + kx[1] * s + k[1] * d, v[2] * c + kx[2] * s + k[2] * d];
  }
  function basis(eye, target, up) {  // right, true up, forward
    var f = unit(sub(target, eye)), r = cross(f, up);
    if (len(r) < 1e-9) r = cross(f, Math.abs(f[1]) < 0.9 ? [0, 1, 0] : [1, 0, 0]);
    r = unit(r);
    return [r, cross(r, f), f];
  }
  function lookAt(eye, b) {
    var s = b[0], u = b[1], f = b[2];
    return [s[0], u[0], -f[0], 0, s[1], u[1], -f[1], 0, s[2], u[2], -f[2], 0,
      -dot(s, eye), -dot(u, eye), dot(f, eye), 1];
  }
  function perspective(fovy, aspect, near, far) {
    var f = 1 / Math.tan(fovy / 2), nf = 1 / (near - far);
    return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0];
  }
  function mul(a, b) {
    var o = new Array(16);
    for (var c = 0; c < 4; c++) {
      for (var r = 0; r < 4; r++) {
        o[c * 4 + r] = a[r] * b[c * 4] + a[4 + r] * b[c * 4 + 1] + a[8 + r] * b[c * 4 + 2] + a[12 + r] * b[c * 4 + 3];
      }
    }
    return o;
  }
  function rgb(c) {  // [r, g, b] 0-255 -> 0-1
    c = c || [128, 128, 128];
    return [(+c[0] || 0) / 255, (+c[1] || 0) / 255, (+c[2] || 0) / 255];
  }
  function cssColor(s) {  // "rgb(1, 2, 3)" or "color(srgb .1 .2 .3)" -> 0-1
    var m = String(s).match(/[\d.]+/g) || [0, 0, 0];
    var k = /^color\(/.test(s) ? 1 : 255;
    return [m[0] / k, m[1] / k, m[2] / k];
  }
  function el(tag, cls, css) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (css) e.style.cssText = css;
    return e;
  }

  // ---- shaders ----
  var POINT_VS = [
    "attribute vec3 a_pos; attribute vec3 a_col; attribute vec2 a_size;",
    "uniform mat4 u_mvp; uniform float u_px; uniform float u_max;",
    "varying vec3 v_col; varying float v_inner;",
    "void main() {",
    "  vec4 p = u_mvp * vec4(a_pos, 1.0);",
    "  gl_Position = p;",
    "  float d = max(a_size.x * u_px / max(p.w, 1e-6), 1.5);",  // disc diameter in pixels
    "  float s = a_size.y > 1.0 ? max(d * a_size.y, d + 3.0) : d;",
    "  s = min(s, u_max);",
    "  gl_PointSize = s;",
    "  v_col = a_col;",
    "  v_inner = a_size.y > 1.0 ? min(d / s, 1.0 - 2.0 / s) : 2.0;",
    "}"].join("\n");
  var POINT_FS = [
    "precision mediump float;",
    "varying vec3 v_col; varying float v_inner; uniform vec3 u_ink;",
    "void main() {",
    "  float r = length(gl_PointCoord * 2.0 - 1.0);",
    "  if (r > 1.0) discard;",
    "  gl_FragColor = vec4(r > v_inner ? u_ink : v_col, 1.0);",
    "}"].join("\n");
  // a segment's quad: each vertex knows its own end, the other end, its side (+-1), the diameter
  // and the opacity; ends behind the near plane are moved onto it
  var LINE_VS = [
    "attribute vec3 a_a; attribute vec3 a_b; attribute vec3 a_swo; attribute vec3 a_col;",
    "uniform mat4 u_view; uniform mat4 u_proj; uniform vec2 u_half; uniform float u_near;",
    "uniform float u_px; uniform vec4 u_tint;",
    "varying vec4 v_col;",
    "void main() {",
    "  vec4 a = u_view * vec4(a_a, 1.0); vec4 b = u_view * vec4(a_b, 1.0);",
    "  if (a.z > -u_near && b.z > -u_near) { gl_Position = vec4(2.0, 2.0, 2.0, 1.0); v_col = vec4(0.0); return; }",
    "  if (a.z > -u_near) a = mix(a, b, (-u_near - a.z) / (b.z - a.z));",
    "  if (b.z > -u_near) b = mix(b, a, (-u_near - b.z) / (a.z - b.z));",
    "  vec4 ca = u_proj * a; vec4 cb = u_proj * b;",
    "  vec2 d = (cb.xy / cb.w - ca.xy / ca.w) * u_half;",
    "  d = length(d) > 1e-5 ? normalize(d) : vec2(1.0, 0.0);",
    "  float w = a_swo.y < 0.0 ? -a_swo.y : a_swo.y * u_px / ca.w;",  // negative width: pixels
    "  float alpha = a_swo.z * min(w, 1.0);",
    "  w = max(w, 1.0);",
    "  ca.xy += vec2(-d.y, d.x) * a_swo.x * 0.5 * w / u_half * ca.w;",
    "  gl_Position = ca;",
    "  vec3 c = mix(a_col, u_tint.rgb, u_tint.a);",
    "  v_col = vec4(c * alpha, alpha);",
    "}"].join("\n");
  var LINE_FS = "precision mediump float; varying vec4 v_col; void main() { gl_FragColor = v_col; }";
  var MESH_VS = [
    "attribute vec3 a_pos; attribute vec3 a_nrm;",
    "uniform mat4 u_mvp; uniform vec3 u_light;",
    "varying float v_light;",
    "void main() {",
    "  gl_Position = u_mvp * vec4(a_pos, 1.0);",
    "  v_light = 0.3 + 0.7 * abs(dot(normalize(a_nrm), u_light));",  // two-sided Lambert + ambient
    "}"].join("\n");
  var MESH_FS = [
    "precision mediump float;",
    "varying float v_light; uniform vec4 u_col;",
    "void main() { gl_FragColor = vec4(u_col.rgb * min(v_light, 1.0) * u_col.a, u_col.a); }"].join("\n");

  function compile(gl, vs, fs, attribs, uniforms) {
    var p = gl.createProgram();
    [[gl.VERTEX_SHADER, vs], [gl.FRAGMENT_SHADER, fs]].forEach(function (pair) {
      var s = gl.createShader(pair[0]);
      gl.shaderSource(s, pair[1]);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error("shader: " + gl.getShaderInfoLog(s));
      gl.attachShader(p, s);
    });
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error("program: " + gl.getProgramInfoLog(p));
    var prog = {p: p, a: [], u: {}};
    attribs.forEach(function (a) { prog.a.push([gl.getAttribLocation(p, a[0]), a[1]]); });
    uniforms.forEach(function (u) { prog.u[u] = gl.getUniformLocation(p, u); });
    return prog;
  }

  function use(gl, prog, buffer) {
    for (var i = 0; i < 8; i++) gl.disableVertexAttribArray(i);
    gl.useProgram(prog.p);
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    var stride = 0, off = 0;
    prog.a.forEach(function (a) { stride += a[1] * 4; });
    prog.a.forEach(function (a) {
      if (a[0] >= 0) {
        gl.enableVertexAttribArray(a[0]);
        gl.vertexAttribPointer(a[0], a[1], gl.FLOAT, false, stride, off);
      }
      off += a[1] * 4;
    });
  }

  function upload(gl, array) {
    var b = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, b);
    gl.bufferData(gl.ARRAY_BUFFER, array, gl.STATIC_DRAW);
    return b;
  }

  // ---- geometry from the scene JSON ----
  function pointData(pts) {
    var xyz = pts.xyz || [], n = Math.floor(xyz.length / 3), col = pts.color || [], size = pts.size || [];
    var out = new Float32Array(n * 8), outline = pts.outline || [], hi = pts.highlight;
    for (var i = 0; i < n; i++) {
      var o = i * 8;
      out[o] = +xyz[3 * i]; out[o + 1] = +xyz[3 * i + 1]; out[o + 2] = +xyz[3 * i + 2];
      out[o + 3] = (col.length >= 3 * n ? col[3 * i] : 128) / 255;
      out[o + 4] = (col.length >= 3 * n ? col[3 * i + 1] : 128) / 255;
      out[o + 5] = (col.length >= 3 * n ? col[3 * i + 2] : 128) / 255;
      out[o + 6] = +size[i] > 0 ? +size[i] : 0.01;
      out[o + 7] = i === hi ? HIGHLIGHT_RING : outline[i] ? OUTLINE_RING : 1;
    }
    return {n: n, data: out};
  }

  // non-indexed triangles (so any vertex count works in WebGL 1) with area-weighted vertex normals
  function meshData(m) {
    var v = m.vertices || [], t = m.triangles || [], nv = Math.floor(v.length / 3), i, j, k;
    var nrm = new Float64Array(nv * 3), tris = [];
    for (i = 0; i + 2 < t.length; i += 3) {
      var a = t[i], b = t[i + 1], c = t[i + 2];
      if (!(a >= 0 && b >= 0 && c >= 0 && a < nv && b < nv && c < nv)) continue;
      var pa = [v[3 * a], v[3 * a + 1], v[3 * a + 2]];
      var fn = cross(sub([v[3 * b], v[3 * b + 1], v[3 * b + 2]], pa), sub([v[3 * c], v[3 * c + 1], v[3 * c + 2]], pa));
      for (j = 0; j < 3; j++) for (k = 0; k < 3; k++) nrm[3 * t[i + j] + k] += fn[k];
      tris.push(a, b, c, fn);
    }
    var out = new Float32Array(tris.length / 4 * 18), o = 0, sum = [0, 0, 0];
    for (i = 0; i < tris.length; i += 4) {
      for (j = 0; j < 3; j++) {
        var q = tris[i + j], p = [v[3 * q], v[3 * q + 1], v[3 * q + 2]];
        var nn = [nrm[3 * q], nrm[3 * q + 1], nrm[3 * q + 2]];
        if (len(nn) < 1e-12) nn = tris[i + 3];
        nn = unit(nn);
        if (len(nn) === 0) nn = [0, 0, 1];
        out.set([p[0], p[1], p[2], nn[0], nn[1], nn[2]], o);
        o += 6;
        sum = add(sum, p);
      }
    }
    var count = out.length / 6;
    return {count: count, data: out, centre: count ? mulv(sum, 1 / count) : [0, 0, 0],
      color: rgb(m.color), opacity: m.opacity == null ? 1 : clamp(+m.opacity, 0, 1)};
  }

  // segments -> 6 vertices each: a(3) b(3) side,width,opacity(3) colour(3)
  function lineData(sets) {
    var total = 0;
    sets.forEach(function (s) { total += Math.floor(s.segments.length / 6); });
    var out = new Float32Array(total * 72), o = 0;
    sets.forEach(function (s) {
      var seg = s.segments, c = s.color, w = s.width || [], op = s.opacity || [];
      for (var i = 0; i < Math.floor(seg.length / 6); i++) {
        var a = seg.slice(6 * i, 6 * i + 3), b = seg.slice(6 * i + 3, 6 * i + 6);
        var wi = w[i] == null ? s.defaultWidth : +w[i], oi = op[i] == null ? 1 : +op[i];
        // corners: A+n, A-n, B+n, then A-n, B-n, B+n (B's sides flip: its direction is reversed)
        [[a, b, 1], [a, b, -1], [b, a, -1], [a, b, -1], [b, a, 1], [b, a, -1]].forEach(function (v) {
          out.set([v[0][0], v[0][1], v[0][2], v[1][0], v[1][1], v[1][2], v[2], wi, oi, c[0], c[1], c[2]], o);
          o += 12;
        });
      }
    });
    return {count: total * 6, data: out};
  }

  // ---- one figure ----
  function setup(figure) {
    var canvas = figure.querySelector("canvas");
    var img = figure.querySelector("img.scene-fallback");
    var holder = figure.querySelector("script.scene-data");
    var notes = el("div", "scene3d-notes", "font-size:.85em;opacity:.8;margin-top:.3rem");

    function fallback(message) {
      if (canvas) canvas.hidden = true;
      if (stage) stage.hidden = true;
      if (bar) bar.hidden = true;
      if (img) { img.hidden = false; img.style.display = ""; }
      var p = el("p", "scene3d-fallback-note", "font-size:.85em;opacity:.8;margin:.3rem 0");
      p.textContent = message;
      figure.appendChild(p);
      figure.dataset.state = "fallback";
    }

    var stage = null, bar = null, scene, gl = null;
    try {
      scene = JSON.parse(holder.textContent);
    } catch (e) {
      return fallback("The 3D data could not be read; this is a still image of the scene.");
    }
    if (!canvas) return fallback("The interactive 3D view is missing; this is a still image of the scene.");
    var attrs = {alpha: true, antialias: true, premultipliedAlpha: true, preserveDrawingBuffer: true};
    try {
      gl = canvas.getContext("webgl", attrs) || canvas.getContext("experimental-webgl", attrs);
    } catch (e) { gl = null; }
    if (!gl) return fallback("This browser has WebGL turned off, so this is a still image; the interactive view needs WebGL.");

    // layout: a stage (canvas + label overlay + tooltip), a bar with the reset button, the notes
    // the shape of the pre-rendered image (or the canvas's own width/height), else 4:3
    var src = [canvas, img].filter(function (e) { return e && +e.getAttribute("width") > 0 && +e.getAttribute("height") > 0; })[0];
    var aw = src ? +src.getAttribute("width") : 4, ah = src ? +src.getAttribute("height") : 3;
    stage = el("div", "scene3d-stage", "position:relative;width:100%;aspect-ratio:" + aw + " / " + ah);
    canvas.parentNode.insertBefore(stage, canvas);
    stage.appendChild(canvas);
    canvas.hidden = false;
    canvas.style.cssText = "display:block;width:100%;height:100%;touch-action:none;cursor:grab";
    canvas.tabIndex = 0;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", (scene.title || "3D scene") +
      ": drag or arrow keys to turn, wheel or +/- to zoom");
    var overlay = el("div", "scene3d-labels",
      "position:absolute;left:0;top:0;right:0;bottom:0;overflow:hidden;pointer-events:none;font-size:.8em");
    var tip = el("div", "scene3d-tip", "position:absolute;left:0;top:0;pointer-events:none;max-width:22em;" +
      "padding:.2em .45em;border-radius:4px;font-size:.85em;white-space:pre-wrap;overflow-wrap:anywhere;" +
      "background:var(--panel,#fff);color:var(--fg,#222);border:1px solid var(--line,#999);z-index:2");
    tip.hidden = true;
    stage.appendChild(overlay);
    stage.appendChild(tip);
    bar = el("div", "scene3d-bar", "display:flex;gap:.75rem;align-items:center;margin-top:.3rem;font-size:.85em");
    var reset = el("button", "scene3d-reset");
    reset.type = "button";
    reset.textContent = "reset view";
    var hint = el("span", "scene3d-hint", "opacity:.7");
    hint.textContent = "drag to turn · wheel or pinch to zoom · hover a point for its label";
    bar.appendChild(reset);
    bar.appendChild(hint);
    stage.parentNode.insertBefore(bar, stage.nextSibling);
    (scene.notes || []).forEach(function (text) {
      var p = el("div", "scene3d-note");
      p.textContent = String(text);
      notes.appendChild(p);
    });
    bar.parentNode.insertBefore(notes, bar.nextSibling);
    if (img) { img.hidden = true; img.style.display = "none"; }

    // data
    var axes = scene.axes || {}, bounds = axes.bounds || [-1, 1, -1, 1, -1, 1];
    var pts = scene.points || {}, P = pointData(pts), labels = pts.label || [], links = pts.link || [];
    var meshes = (scene.meshes || []).map(meshData).filter(function (m) { return m.count > 0; });
    var lineSets = (scene.lines || []).map(function (s) {
      return {segments: s.segments || [], width: s.width, opacity: s.opacity, color: rgb(s.color), defaultWidth: 0.02};
    });
    var L = lineData(lineSets);
    var lo = [bounds[0], bounds[2], bounds[4]], hi = [bounds[1], bounds[3], bounds[5]];
    var span = sub(hi, lo), axisSegs = [];
    for (var ax = 0; ax < 3; ax++) {
      var end = lo.slice();
      end[ax] = hi[ax];
      axisSegs.push.apply(axisSegs, lo.concat(end));
    }
    var A = lineData([{segments: axisSegs, width: [-1.5, -1.5, -1.5], opacity: [0.7, 0.7, 0.7],
      color: [0, 0, 0]}]);
    var centre = mulv(add(lo, hi), 0.5), radius = Math.max(len(span) / 2, 1e-6);
    for (var i = 0; i < P.n; i++) {
      var d = len(sub([P.data[8 * i], P.data[8 * i + 1], P.data[8 * i + 2]], centre)) + P.data[8 * i + 6];
      if (d > radius && isFinite(d)) radius = d;
    }

    var pointProg = compile(gl, POINT_VS, POINT_FS, [["a_pos", 3], ["a_col", 3], ["a_size", 2]],
      ["u_mvp", "u_px", "u_max", "u_ink"]);
    var lineProg = compile(gl, LINE_VS, LINE_FS, [["a_a", 3], ["a_b", 3], ["a_swo", 3], ["a_col", 3]],
      ["u_view", "u_proj", "u_half", "u_near", "u_px", "u_tint"]);
    var meshProg = compile(gl, MESH_VS, MESH_FS, [["a_pos", 3], ["a_nrm", 3]], ["u_mvp", "u_light", "u_col"]);
    var pointBuf = P.n ? upload(gl, P.data) : null;
    var lineBuf = L.count ? upload(gl, L.data) : null;
    var axisBuf = upload(gl, A.data);
    meshes.forEach(function (m) { m.buffer = upload(gl, m.data); m.data = null; });
    var maxPoint = gl.getParameter(gl.ALIASED_POINT_SIZE_RANGE)[1] || 64;

    // HTML labels: scene texts and the axes (name at the far end, values at both ends)
    var marks = [];
    function mark(xyz, text, css) {
      var e = el("div", "scene3d-text", "position:absolute;left:0;top:0;white-space:pre;line-height:1.2;" + (css || ""));
      e.textContent = String(text);
      overlay.appendChild(e);
      marks.push({xyz: xyz, el: e});
    }
    function num(v) { return String(+(+v).toPrecision(3)); }
    var names = axes.labels || ["x", "y", "z"];
    for (ax = 0; ax < 3; ax++) {
      var beyond = lo.slice();
      beyond[ax] = hi[ax] + 0.08 * Math.max(span[0], span[1], span[2]);
      mark(beyond, names[ax] == null ? "" : names[ax], "font-weight:600");
      var tmax = lo.slice();
      tmax[ax] = hi[ax];
      if (ax === 0) mark(lo, num(lo[0]) + ", " + num(lo[1]) + ", " + num(lo[2]), "opacity:.65;font-size:.85em");
      mark(tmax, num(hi[ax]), "opacity:.65;font-size:.85em");
    }
    (scene.texts || []).forEach(function (t) { mark(t.xyz || [0, 0, 0], t.text == null ? "" : t.text); });

    // camera: turntable around the initial up
    var cam0 = scene.camera || {};
    var home = {
      pos: (cam0.position || add(centre, [0, -3 * radius, radius])).slice(),
      target: (cam0.target || centre).slice(),
      up: cam0.up && len(cam0.up) > 0 ? unit(cam0.up) : [0, 0, 1],
      fov: clamp(+cam0.fov || 30, 1, 170) * Math.PI / 180
    };
    var cam = {pos: home.pos.slice(), target: home.target.slice()};

    function orbit(dAz, dEl) {
      var up = home.up, off = rotate(sub(cam.pos, cam.target), up, dAz), r = len(off);
      if (r === 0) return;
      var theta = Math.acos(clamp(dot(off, up) / r, -1, 1));
      var nt = clamp(theta - dEl, 0.02, Math.PI - 0.02), right = cross(up, off);
      if (len(right) < 1e-9) right = basis(cam.pos, cam.target, up)[0];
      off = rotate(off, unit(right), nt - theta);
      cam.pos = add(cam.target, off);
      redraw();
    }
    function zoom(f) {
      var off = sub(cam.pos, cam.target), r = len(off);
      cam.pos = add(cam.target, mulv(off, clamp(r * f, radius * 0.02, radius * 60) / r));
      redraw();
    }
    reset.addEventListener("click", function () {
      cam.pos = home.pos.slice();
      cam.target = home.target.slice();
      redraw();
    });

    // drawing
    var frames = 0, pending = false, view, proj, mvp, near, cssW = 0, cssH = 0, pxScale = 1;
    var projected = null;  // per point: screen x, y (CSS px), pick radius; recomputed lazily
    function redraw() {
      projected = null;
      if (!pending) { pending = true; window.requestAnimationFrame(draw); }
    }
    function draw() {
      pending = false;
      cssW = canvas.clientWidth; cssH = canvas.clientHeight;
      if (!cssW || !cssH || gl.isContextLost()) return;
      var dpr = window.devicePixelRatio || 1;
      var bw = Math.max(1, Math.round(cssW * dpr)), bh = Math.max(1, Math.round(cssH * dpr));
      if (canvas.width !== bw || canvas.height !== bh) { canvas.width = bw; canvas.height = bh; }
      var b = basis(cam.pos, cam.target, home.up), dist = dot(sub(centre, cam.pos), b[2]);
      near = Math.max(dist - radius * 1.05, (dist + radius) * 0.002);
      var far = (dist + radius) * 1.5 + near;
      view = lookAt(cam.pos, b);
      proj = perspective(home.fov, bw / bh, near, far);
      mvp = mul(proj, view);
      var px = proj[5] * bh / 2;  // pixels per scene unit at depth 1
      pxScale = proj[5] * cssH / 2;
      var ink = cssColor(getComputedStyle(figure).color);

      gl.viewport(0, 0, bw, bh);
      gl.clearColor(0, 0, 0, 0);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.enable(gl.DEPTH_TEST);
      gl.depthFunc(gl.LEQUAL);
      gl.enable(gl.BLEND);
      gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);  // premultiplied
      gl.depthMask(true);
      var light = unit(add(add(mulv(b[0], 0.3), mulv(b[1], 0.5)), mulv(b[2], -1)));
      function drawMesh(m) {
        use(gl, meshProg, m.buffer);
        gl.uniformMatrix4fv(meshProg.u.u_mvp, false, mvp);
        gl.uniform3fv(meshProg.u.u_light, light);
        gl.uniform4f(meshProg.u.u_col, m.color[0], m.color[1], m.color[2], m.opacity);
        gl.drawArrays(gl.TRIANGLES, 0, m.count);
      }
      var glass = [];
      meshes.forEach(function (m) { if (m.opacity >= 0.999) drawMesh(m); else glass.push(m); });
      if (pointBuf) {
        use(gl, pointProg, pointBuf);
        gl.uniformMatrix4fv(pointProg.u.u_mvp, false, mvp);
        gl.uniform1f(pointProg.u.u_px, px);
        gl.uniform1f(pointProg.u.u_max, maxPoint);
        gl.uniform3fv(pointProg.u.u_ink, ink);
        gl.drawArrays(gl.POINTS, 0, P.n);
      }
      gl.depthMask(false);
      function lines(buf, count, tint) {
        use(gl, lineProg, buf);
        gl.uniformMatrix4fv(lineProg.u.u_view, false, view);
        gl.uniformMatrix4fv(lineProg.u.u_proj, false, proj);
        gl.uniform2f(lineProg.u.u_half, bw / 2, bh / 2);
        gl.uniform1f(lineProg.u.u_near, near);
        gl.uniform1f(lineProg.u.u_px, px);
        gl.uniform4f(lineProg.u.u_tint, tint[0], tint[1], tint[2], tint[3]);
        gl.drawArrays(gl.TRIANGLES, 0, count);
      }
      lines(axisBuf, A.count, [ink[0], ink[1], ink[2], 1]);
      if (lineBuf) lines(lineBuf, L.count, [0, 0, 0, 0]);
      // translucent meshes last, far to near, back faces before front faces
      glass.sort(function (m, n) { return dot(sub(n.centre, m.centre), b[2]); });
      gl.enable(gl.CULL_FACE);
      glass.forEach(function (m) {
        gl.cullFace(gl.FRONT); drawMesh(m);
        gl.cullFace(gl.BACK); drawMesh(m);
      });
      gl.disable(gl.CULL_FACE);
      gl.depthMask(true);

      marks.forEach(function (m) {
        var s = toScreen(m.xyz);
        var show = s && s[0] > -40 && s[0] < cssW + 40 && s[1] > -20 && s[1] < cssH + 20;
        m.el.hidden = !show;
        if (show) m.el.style.transform = "translate(" + s[0].toFixed(1) + "px," + s[1].toFixed(1) + "px) translate(-50%,-50%)";
      });
      frames += 1;
      figure.dataset.frames = String(frames);
      figure.dataset.state = "drawn";
    }
    function toScreen(p) {
      var m = mvp, w = m[3] * p[0] + m[7] * p[1] + m[11] * p[2] + m[15];
      if (!(w > near)) return null;
      var x = (m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12]) / w;
      var y = (m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13]) / w;
      return [(x + 1) / 2 * cssW, (1 - y) / 2 * cssH];
    }

    // picking: project every point once per view, then a linear scan per pointer move
    function project() {
      var n = P.n, D = P.data, m = mvp, out = new Float32Array(n * 3);
      for (var i = 0; i < n; i++) {
        var o = 8 * i, x = D[o], y = D[o + 1], z = D[o + 2];
        var w = m[3] * x + m[7] * y + m[11] * z + m[15];
        if (!(w > near)) { out[3 * i + 2] = -1; continue; }
        out[3 * i] = ((m[0] * x + m[4] * y + m[8] * z + m[12]) / w + 1) / 2 * cssW;
        out[3 * i + 1] = (1 - (m[1] * x + m[5] * y + m[9] * z + m[13]) / w) / 2 * cssH;
        out[3 * i + 2] = Math.max(D[o + 6] * D[o + 7] * pxScale / w, 1.5) / 2;
      }
      return out;
    }
    function pick(x, y) {
      if (!mvp || !P.n) return -1;
      if (!projected) projected = project();
      var best = -1, bestD = PICK_PX, q = projected;
      for (var i = 0; i < P.n; i++) {
        var r = q[3 * i + 2];
        if (r < 0) continue;
        var dx = q[3 * i] - x, dy = q[3 * i + 1] - y;
        if (Math.abs(dx) > r + bestD || Math.abs(dy) > r + bestD) continue;
        var d = Math.sqrt(dx * dx + dy * dy) - r;
        if (d < bestD) { bestD = d; best = i; }
      }
      return best;
    }
    function safeLink(i) {
      var link = links[i];
      if (typeof link !== "string" || !link || /[\u0000-\u0020\u007f\\]/.test(link)) return null;
      if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.charAt(0) === "/") return null;  // relative only
      try {
        var url = new URL(link, document.baseURI);
        return url.protocol === window.location.protocol ? url.href : null;
      } catch (e) { return null; }
    }
    function hover(x, y) {
      var i = pick(x, y), label = i >= 0 && labels[i] != null ? String(labels[i]) : "";
      canvas.style.cursor = dragging ? "grabbing" : i >= 0 && safeLink(i) ? "pointer" : "grab";
      if (!label) { tip.hidden = true; return; }
      tip.textContent = label;
      tip.hidden = false;
      var left = Math.min(x + 12, Math.max(0, cssW - tip.offsetWidth));
      var top = y + 14 + tip.offsetHeight > cssH ? y - 10 - tip.offsetHeight : y + 14;
      tip.style.transform = "translate(" + left + "px," + top + "px)";
      tip.dataset.index = String(i);
    }

    // pointer: drag (one pointer) orbits, two pointers pinch-zoom, a click without motion follows a link
    var pointers = {}, dragging = false, downAt = null, moved = 0, pinch = 0;
    function local(e) {
      var r = canvas.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    }
    function spread() {
      var k = Object.keys(pointers);
      if (k.length < 2) return 0;
      var a = pointers[k[0]], b = pointers[k[1]];
      return Math.sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]));
    }
    canvas.addEventListener("pointerdown", function (e) {
      if (e.button > 0) return;
      pointers[e.pointerId] = local(e);
      try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* not capturable */ }
      dragging = true;
      downAt = local(e);
      moved = 0;
      pinch = spread();
    });
    canvas.addEventListener("pointermove", function (e) {
      var p = local(e), prev = pointers[e.pointerId];
      if (!prev) { if (e.pointerType === "mouse") hover(p[0], p[1]); return; }
      pointers[e.pointerId] = p;
      moved = Math.max(moved, Math.abs(p[0] - downAt[0]) + Math.abs(p[1] - downAt[1]));
      if (Object.keys(pointers).length >= 2) {
        var s = spread();
        if (pinch > 0 && s > 0) zoom(pinch / s);
        pinch = s;
        moved = 99;
      } else {
        var k = Math.PI / Math.max(cssH, 200);
        tip.hidden = true;
        if (p[0] !== prev[0] || p[1] !== prev[1]) orbit(-(p[0] - prev[0]) * k, (p[1] - prev[1]) * k);
      }
    });
    function release(e) {
      if (!pointers[e.pointerId]) return;
      delete pointers[e.pointerId];
      pinch = spread();
      if (Object.keys(pointers).length) return;
      dragging = false;
      var p = local(e);
      if (e.type === "pointerup" && moved < 5) {
        var i = pick(p[0], p[1]), href = i >= 0 ? safeLink(i) : null;
        if (href) { window.location.assign(href); return; }
        hover(p[0], p[1]);
      }
    }
    canvas.addEventListener("pointerup", release);
    canvas.addEventListener("pointercancel", release);
    canvas.addEventListener("pointerleave", function () { if (!dragging) tip.hidden = true; });
    canvas.addEventListener("wheel", function (e) {
      e.preventDefault();
      var dy = e.deltaY * (e.deltaMode === 1 ? 33 : e.deltaMode === 2 ? 400 : 1);
      zoom(Math.exp(clamp(dy, -300, 300) * 0.0015));
    }, {passive: false});
    canvas.addEventListener("keydown", function (e) {
      var step = Math.PI / 36, k = e.key;
      if (k === "ArrowLeft") orbit(step, 0);
      else if (k === "ArrowRight") orbit(-step, 0);
      else if (k === "ArrowUp") orbit(0, step);
      else if (k === "ArrowDown") orbit(0, -step);
      else if (k === "+" || k === "=") zoom(1 / 1.15);
      else if (k === "-" || k === "_") zoom(1.15);
      else if (k === "0" || k === "Home") reset.click();
      else return;
      e.preventDefault();
      tip.hidden = true;
    });
    canvas.addEventListener("webglcontextlost", function (e) {
      e.preventDefault();
      stage.hidden = true;
      bar.hidden = true;
      if (img) { img.hidden = false; img.style.display = ""; }
      figure.dataset.state = "fallback";
    });

    if (window.ResizeObserver) new ResizeObserver(redraw).observe(stage);
    window.addEventListener("resize", redraw);
    // theme switches (light/dark) change the text colour the axes and rings use
    if (window.matchMedia) {
      var mq = window.matchMedia("(prefers-color-scheme: dark)");
      if (mq.addEventListener) mq.addEventListener("change", redraw);
    }
    redraw();
  }

  function start() {
    var figures = document.querySelectorAll("figure.scene3d");
    for (var i = 0; i < figures.length; i++) {
      try {
        setup(figures[i]);
      } catch (e) {
        if (window.console) console.warn("scene3d:", e);
        var img = figures[i].querySelector("img.scene-fallback");
        if (img) { img.hidden = false; img.style.display = ""; }
        figures[i].dataset.state = "fallback";
      }
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
