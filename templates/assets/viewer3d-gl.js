// The 3D viewer's drawing side, apart from the page: vectors and column-major 4x4 matrices, the
// WebGL 1 shader programs, and the scene JSON (format: attnreport.scenes) as vertex buffers. No DOM.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};
  var OUTLINE_RING = 1.5, HIGHLIGHT_RING = 2.2;

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

  // the three programs, with their attributes in buffer order
  function programs(gl) {
    return {
      point: compile(gl, POINT_VS, POINT_FS, [["a_pos", 3], ["a_col", 3], ["a_size", 2]]),
      line: compile(gl, LINE_VS, LINE_FS, [["a_a", 3], ["a_b", 3], ["a_swo", 3], ["a_col", 3]]),
      mesh: compile(gl, MESH_VS, MESH_FS, [["a_pos", 3], ["a_nrm", 3]])
    };
  }

  ns.gl = {
    sub: sub, add: add, mulv: mulv, dot: dot, cross: cross, len: len, unit: unit, clamp: clamp, vec: vec,
    rotate: rotate, basis: basis, lookAt: lookAt, perspective: perspective, mul: mul, rgb: rgb,
    cssColor: cssColor, programs: programs, use: use, upload: upload,
    pointData: pointData, meshData: meshData, lineData: lineData
  };
})();
