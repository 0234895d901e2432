// Generation page: pick an answer token; the input and the answer before it are shaded by the
// attention of the position that wrote it, and its scores, alternatives and logit lens are shown.
// Data arrives only through <script type="application/json">; every token is set as text, never markup.
(function () {
  "use strict";
  var ns = window.attnreport, fig = ns.figure, save = ns.save, svgNode = save.svgNode;
  var source = document.getElementById("generation-data");
  if (!source) return;
  var data = JSON.parse(source.textContent);
  var n = data.n, T = data.steps, L = data.layers, H = data.heads, K = n + T - 1;
  var attention = null, rollout = null, step = 0;

  function control(id) { return document.getElementById(id) || document.createElement("select"); }
  var layerSelect = control("g-layer"), headSelect = control("g-head");
  if (data.rollout) fig.option(layerSelect, "rollout", "rollout (all layers)");
  fig.option(layerSelect, "mean", "mean of layers");
  for (var l = L - 1; l >= 0; l--) fig.option(layerSelect, l, "layer " + l);
  fig.option(headSelect, "mean", "mean of heads");
  for (var h = 0; h < H; h++) fig.option(headSelect, h, "head " + h);

  // step t's weights over the K keys, for the chosen layer (or rollout, or the mean of layers) and head
  function row(t) {
    var out = new Float64Array(K), layer = layerSelect.value, head = headSelect.value, k;
    if (layer === "rollout") {
      for (k = 0; k < K; k++) out[k] = rollout[t * K + k];
      return out;
    }
    var layers = layer === "mean" ? range(L) : [+layer];
    var heads = head === "mean" ? range(H) : [+head];
    layers.forEach(function (ly) {
      heads.forEach(function (hd) {
        var base = ((ly * H + hd) * T + t) * K;
        for (k = 0; k < K; k++) out[k] += attention[base + k];
      });
    });
    var count = layers.length * heads.length;
    for (k = 0; k < K; k++) out[k] /= count;
    return out;
  }

  // line breaks and tabs drawn as signs, so a token that is only white space is still seen
  function visible(text) {
    return String(text).replace(/\n/g, "⏎").replace(/\t/g, "⇥");
  }

  function range(m) { var r = []; for (var i = 0; i < m; i++) r.push(i); return r; }

  // -- the answer's rows as a T x K matrix: the heatmap, head view and model view draw it ------------
  // rows: the positions that wrote each answer token, labelled by the token written; columns: every
  // token they could read (the input, then the answer but its last token)
  var views = {
    layers: L, heads: H,
    queries: data.answer.map(visible),
    keys: data.prompt.concat(data.answer.slice(0, T - 1)).map(visible),
    query_special: data.answer.map(function () { return false; }),
    key_special: data.special.concat(data.answer.slice(0, T - 1).map(function () { return false; }))
  };
  function matrix() {
    var z = [];
    for (var t = 0; t < T; t++) z.push(Array.prototype.slice.call(row(t)));
    return z;
  }
  var heatmapBox = document.getElementById("heatmap");
  var heatmap = ns.heatmap ? ns.heatmap.create(heatmapBox, views) : {draw: function () {}};
  var headView = ns.headview ? ns.headview.create(document.getElementById("head-view"), views)
    : {draw: function () {}, highlight: function () {}};
  var modelView = ns.modelview ? ns.modelview.create(document.getElementById("model-view"), views, function (layer, head) {
    layerSelect.value = layer;
    headSelect.value = head;
    shade();
    drawRows();
    if (heatmapBox) heatmapBox.scrollIntoView({behavior: "smooth", block: "center"});
  }) : {draw: function () {}};
  var shown = null;  // the matrix drawn, kept until the layer or head changes
  function drawRows() {
    if (!attention) return;
    var layer = layerSelect.value === "rollout" || layerSelect.value === "mean" ? layerSelect.value : +layerSelect.value;
    var head = headSelect.value === "mean" ? "mean" : +headSelect.value;
    headSelect.disabled = layer === "rollout";
    if (!shown || shown.layer !== layer || shown.head !== head) {
      var z = matrix(), peak = 0;
      z.forEach(function (r) { r.forEach(function (v) { if (v > peak) peak = v; }); });
      shown = {z: z, layer: layer, head: head, peak: peak > 0 ? peak : 1};
      headView.draw(shown);
    }
    heatmap.draw({z: shown.z, layer: layer, head: head, peak: shown.peak, row: step});
    headView.highlight("q", step);
  }

  // -- the token strip: the input, then the answer; answer tokens pick the step ----------------------
  var strip = document.getElementById("g-tokens");
  var cells = [];
  function addToken(text, kind, index) {
    var node = document.createElement(kind === "answer" ? "button" : "span");
    node.className = "token " + kind;
    node.textContent = visible(text);
    if (kind === "answer") {
      node.type = "button";
      node.dataset.step = String(index);
      node.addEventListener("click", function () { choose(index, true); });
    }
    strip.appendChild(node);
    cells.push(node);
  }
  data.prompt.forEach(function (text, i) {
    addToken(text, data.special[i] ? "special" : data.from_template[i] ? "template" : "prompt", i);
  });
  data.answer.forEach(function (text, t) { addToken(text, "answer", t); });
  strip.addEventListener("keydown", function (event) {
    var move = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1}[event.key];
    if (move === undefined) return;
    event.preventDefault();
    choose(Math.max(0, Math.min(T - 1, step + move)), true);
  });

  // -- attribution: each prompt unit's share of the chosen token's value (or its contrast, or the
  // whole answer's), signed; the colour saturates at a fixed scale, so a weak effect looks weak
  var attribution = data.attribution;
  var shadeSelect = control("g-shade"), explainSelect = control("g-explain");
  var unitOf = {};
  if (attribution) attribution.members.forEach(function (positions, u) {
    positions.forEach(function (position) { unitOf[position] = u; });
  });

  // the values shown for one method and what is explained: [units], and their standard errors
  // the contrasts a row asked for ("why this token rather than that one") join the choices
  if (attribution) attribution.asked.forEach(function (c, i) {
    fig.option(explainSelect, "asked:" + i, "token " + c.step + " «" + data.answer[c.step] + "» rather than «" + c.foil + "» (asked)");
  });

  function unitValues(method, kind, t) {
    var m = attribution.methods[method];
    if (kind.indexOf("asked:") === 0) return {values: m.asked[+kind.slice(6)], stderr: null};
    if (kind === "answer") return {values: m.answer, stderr: m.answer_stderr};
    if (kind === "contrast") return {values: m.contrasts[t], stderr: null};
    return {values: m.values[t], stderr: m.stderr ? m.stderr[t] : null};
  }

  function what(kind, t) {
    var unit = attribution.output === "log_probability" ? "log-probability" : "probability";
    if (kind === "answer") return "the whole answer's " + (unit === "probability" ? "probability" : "log-probability (sum over its tokens)");
    if (kind.indexOf("asked:") === 0) {
      var c = attribution.asked[+kind.slice(6)];
      return "log p(«" + data.answer[c.step] + "») − log p(«" + c.foil + "») at token " + c.step + ": the contrast asked for";
    }
    if (kind === "contrast") {
      return attribution.foils[t] === null ? "no runner-up at this step"
        : "log p(«" + data.answer[t] + "») − log p(«" + attribution.foils[t] + "»): why this token rather than the runner-up";
    }
    return "the " + unit + " of «" + data.answer[t] + "»";
  }

  function shadeAttribution() {
    if (explainSelect.value.indexOf("asked:") === 0 && attribution.asked[+explainSelect.value.slice(6)].step !== step) {
      explainSelect.value = "token";  // an asked-for contrast is of its own token only
    }
    var method = shadeSelect.value, kind = explainSelect.value;
    var got = unitValues(method, kind, step), scale = attribution.scale, unsure = 0;
    cells.forEach(function (node, position) {
      var u = unitOf[position], seen = kind === "answer" || position <= n - 1 + step;
      node.classList.remove("pos", "neg", "unsure");
      node.classList.toggle("later", !seen);
      node.classList.toggle("chosen", kind !== "answer" && position === n + step);
      if (node.dataset.step !== undefined) node.setAttribute("aria-pressed", String(+node.dataset.step === step));
      // the answer from the chosen token on was not yet written: it has no share in that token
      if (u === undefined || got.values[u] === null || (kind !== "answer" && position >= n + step)) {
        node.style.setProperty("--w", "0");
        node.title = position < n ? "not a unit (the template's, or a special token)" : "";
        return;
      }
      var v = got.values[u], err = got.stderr ? got.stderr[u] : null;
      node.classList.add(v < 0 ? "neg" : "pos");
      if (err !== null && Math.abs(v) < 1.96 * err) { node.classList.add("unsure"); unsure++; }
      node.style.setProperty("--w", Math.min(1, Math.abs(v) / scale).toFixed(3));
      node.title = "«" + attribution.units[u] + "»: " + (v >= 0 ? "+" : "") + v.toFixed(3)
        + (err !== null ? " ± " + err.toFixed(3) : "");
    });
    var m = attribution.methods[method];
    note.textContent = method + " over " + attribution.members.length + " " + attribution.unit + "s, of " + what(kind, step)
      + (m.exact ? " (exact)" : " (sampled: " + m.estimator + ")")
      + (unsure ? "; dotted outline: " + unsure + " within 1.96 standard errors of 0 (sign not established)" : "") + ".";
    legend.textContent = "orange, solid outline: raised it · blue, dashed outline: lowered it · full colour at ±" + scale
      + (attribution.output === "log_probability" ? " nats" : "");
  }

  // which view to trust for the chosen token: how much its value drops without each view's top units
  function drawFaith() {
    var box = document.getElementById("g-faith");
    if (!box || !attribution || !attribution.token_faithfulness) return;
    var per = attribution.token_faithfulness, names = Object.keys(per).filter(function (k) { return k !== "random"; });
    var parts = names.map(function (name) {
      var c = per[name][step].comprehensiveness;
      return name + " " + (c === null ? "–" : (c >= 0 ? "+" : "") + c.toFixed(2));
    });
    var bar = per.random[step].comprehensiveness;
    box.textContent = "For «" + data.answer[step] + "»: taking away each view's top " + attribution.unit
      + "s lowers its " + (attribution.output === "log_probability" ? "log-probability" : "probability")
      + " by (comprehensiveness, ERASER; higher is more faithful) " + parts.join(" · ")
      + "; random " + attribution.unit + "s: " + (bar === null ? "–" : (bar >= 0 ? "+" : "") + bar.toFixed(2)) + ".";
  }

  function shade() {
    if (!attention) return;
    var byAttribution = attribution && shadeSelect.value !== "attention";
    explainSelect.disabled = !byAttribution;
    drawFaith();
    if (byAttribution) { shadeAttribution(); return; }
    cells.forEach(function (node) { node.classList.remove("pos", "neg", "unsure"); });
    var weights = row(step), peak = 0, k;
    for (k = 0; k <= n - 1 + step; k++) if (weights[k] > peak) peak = weights[k];
    peak = peak > 0 ? peak : 1;
    cells.forEach(function (node, position) {
      var seen = position <= n - 1 + step;
      node.classList.toggle("later", !seen);
      node.classList.toggle("chosen", position === n + step);
      node.style.setProperty("--w", seen && position < K ? (weights[position] / peak).toFixed(3) : "0");
      node.title = seen && position < K ? "attention " + weights[position].toFixed(3) : "";
      if (node.dataset.step !== undefined) node.setAttribute("aria-pressed", String(+node.dataset.step === step));
    });
    var what = layerSelect.value === "rollout" ? "attention rollout through every layer"
      : (layerSelect.value === "mean" ? "attention, mean of layers" : "attention in layer " + layerSelect.value)
        + (headSelect.value === "mean" ? ", mean of heads" : ", head " + headSelect.value);
    note.textContent = "Token " + step + " «" + data.answer[step] + "» (probability "
      + pct(data.probability[step]) + "): " + what + "; the strongest key (shaded fully) has "
      + peak.toFixed(3) + ".";
    legend.textContent = "darker: more attention";
  }
  var note = document.getElementById("g-note") || document.createElement("p");
  var legend = document.getElementById("g-legend") || document.createElement("span");

  function pct(x) { return x === null ? "–" : (100 * x).toFixed(1) + "%"; }

  // -- attention by segment, per layer, for the chosen step ---------------------------------------
  function drawSegments() {
    var box = document.getElementById("g-segments");
    if (!box) return;
    var names = data.segments.names, shares = data.segments.shares[step];
    var rows = document.createDocumentFragment();
    for (var ly = L - 1; ly >= 0; ly--) {
      var line = document.createElement("div");
      line.className = "segment-row";
      var label = document.createElement("span");
      label.className = "segment-layer";
      label.textContent = "layer " + ly;
      line.appendChild(label);
      var bar = document.createElement("span");
      bar.className = "segment-bar";
      names.forEach(function (name, s) {
        var part = document.createElement("span");
        part.className = "segment seg-" + name;
        part.style.width = (100 * (shares[ly][s] || 0)).toFixed(1) + "%";
        part.title = name + " " + pct(shares[ly][s]);
        bar.appendChild(part);
      });
      line.appendChild(bar);
      var text = document.createElement("span");
      text.className = "segment-text";
      text.textContent = names.map(function (name, s) { return name + " " + pct(shares[ly][s]); }).join(" · ");
      line.appendChild(text);
      rows.appendChild(line);
    }
    box.replaceChildren(rows);
  }

  // -- step scores: probability bars, entropy dots -------------------------------------------------
  var CELL = 30, CHART = 140, LABELS = 70;
  function stepsSvg() {
    var c = fig.colours(), width = Math.max(320, 48 + T * CELL), height = CHART + LABELS + 30;
    var svg = svgNode("svg", {xmlns: "http://www.w3.org/2000/svg", width: width, height: height,
      viewBox: "0 0 " + width + " " + height, "font-family": c.font, "font-size": 11});
    svg.appendChild(svgNode("rect", {x: 0, y: 0, width: width, height: height, fill: c.bg}));
    var top = 26, maxEntropy = Math.max.apply(null, data.entropy.map(function (e) { return e || 0; }).concat([1e-9]));
    svg.appendChild(svgNode("text", {x: 4, y: 11, fill: c.muted}, "probability (bars, 0–1) · entropy (dots, 0–" + maxEntropy.toFixed(2) + " nats)"));
    svg.appendChild(svgNode("line", {x1: 40, y1: top + CHART, x2: width - 4, y2: top + CHART, stroke: c.muted}));
    for (var t = 0; t < T; t++) {
      var x = 44 + t * CELL, p = data.probability[t] || 0, e = data.entropy[t] || 0;
      var bar = svgNode("rect", {x: x, y: top + CHART * (1 - p), width: CELL - 8, height: CHART * p,
        fill: c.accent, "fill-opacity": 0.75, stroke: t === step ? c.fg : "none", "stroke-width": 2});
      bar.dataset.step = String(t);
      bar.appendChild(svgNode("title", {}, "token " + t + " «" + data.answer[t] + "»: probability " + pct(p) + ", entropy " + e.toFixed(2)));
      svg.appendChild(bar);
      svg.appendChild(svgNode("circle", {cx: x + (CELL - 8) / 2, cy: top + CHART * (1 - e / maxEntropy), r: 3, fill: c.fg}));
      svg.appendChild(svgNode("text", {x: x + (CELL - 8) / 2, y: top + CHART + 12, fill: c.fg, "text-anchor": "end",
        transform: "rotate(-60 " + (x + (CELL - 8) / 2) + " " + (top + CHART + 12) + ")", "xml:space": "preserve"}, short(data.answer[t])));
    }
    [0, 0.5, 1].forEach(function (v) {
      svg.appendChild(svgNode("text", {x: 36, y: top + CHART * (1 - v) + 4, fill: c.muted, "text-anchor": "end"}, String(v)));
    });
    svg.addEventListener("click", function (event) {
      var s = event.target.dataset && event.target.dataset.step;
      if (s !== undefined) choose(+s, true);
    });
    return svg;
  }

  function short(text) {
    text = String(text).replace(/\n/g, "⏎");
    return text.length > 10 ? text.slice(0, 9) + "…" : text;
  }

  function drawTop() {
    var body = document.querySelector("#g-top tbody");
    if (!body) return;
    var title = document.getElementById("g-top-title");
    if (title) title.textContent = "What it nearly wrote at token " + step + " («" + data.answer[step] + "»)";
    var rows = document.createDocumentFragment();
    data.top[step].forEach(function (alt) {
      var tr = document.createElement("tr");
      var th = document.createElement("th");
      th.textContent = alt.token;
      if (alt.token === data.answer[step]) th.className = "chosen-alt";
      var barCell = document.createElement("td"), bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = (100 * alt.probability).toFixed(1) + "%";
      barCell.appendChild(bar);
      var value = document.createElement("td");
      value.textContent = pct(alt.probability);
      tr.append(th, barCell, value);
      rows.appendChild(tr);
    });
    body.replaceChildren(rows);
  }

  // -- logit lens: layers (final at the top) x steps, each cell the layer's top token ------------
  var LENS_W = 64, LENS_H = 22;
  function lensSvg() {
    var lens = data.lens, c = fig.colours(), rows = L + 1;
    var width = 70 + T * LENS_W, height = 40 + rows * LENS_H;
    var svg = svgNode("svg", {xmlns: "http://www.w3.org/2000/svg", width: width, height: height,
      viewBox: "0 0 " + width + " " + height, "font-family": c.font, "font-size": 10});
    svg.appendChild(svgNode("rect", {x: 0, y: 0, width: width, height: height, fill: c.bg}));
    for (var t = 0; t < T; t++) {
      var x = 70 + t * LENS_W;
      svg.appendChild(svgNode("text", {x: x + LENS_W / 2, y: 14, fill: c.fg, "text-anchor": "middle", "font-weight": t === step ? "bold" : "normal", "xml:space": "preserve"}, short(data.answer[t])));
      for (var r = 0; r < rows; r++) {
        var layer = rows - 1 - r, y = 24 + r * LENS_H, p = lens.top_probability[layer][t] || 0;
        var cell = svgNode("rect", {x: x + 1, y: y, width: LENS_W - 2, height: LENS_H - 2, fill: c.accent, "fill-opacity": (0.08 + 0.8 * p).toFixed(3),
          stroke: t === step ? c.fg : "none"});
        cell.dataset.step = String(t);
        cell.appendChild(svgNode("title", {}, (layer === 0 ? "embeddings" : "layer " + layer) + ", token " + t + ": top «" + lens.top_token[layer][t] + "» " + pct(p)
          + "; the written token «" + data.answer[t] + "» has rank " + lens.rank[layer][t] + " (" + pct(lens.probability[layer][t]) + ")"));
        svg.appendChild(cell);
        svg.appendChild(svgNode("text", {x: x + 4, y: y + 14, fill: p > 0.55 ? c.bg : c.fg, "xml:space": "preserve"}, short(lens.top_token[layer][t]).slice(0, 8)));
        svg.appendChild(svgNode("text", {x: x + LENS_W - 4, y: y + 8, fill: p > 0.55 ? c.bg : c.muted, "text-anchor": "end", "font-size": 7}, String(lens.rank[layer][t])));
      }
    }
    for (var rr = 0; rr < rows; rr++) {
      var ly = rows - 1 - rr;
      svg.appendChild(svgNode("text", {x: 64, y: 24 + rr * LENS_H + 14, fill: c.muted, "text-anchor": "end"}, ly === 0 ? "embeddings" : "layer " + ly));
    }
    svg.addEventListener("click", function (event) {
      var s = event.target.dataset && event.target.dataset.step;
      if (s !== undefined) choose(+s, true);
    });
    return svg;
  }

  // -- the attribution matrix: answer tokens (rows) x prompt units (columns), like inseq's ----------
  var matrixMethod = control("g-matrix-method"), matrixKind = control("g-matrix-kind");
  var MX_W = 44, MX_H = 20;
  function matrixSvg() {
    var c = fig.colours(), method = matrixMethod.value, kind = matrixKind.value;
    var units = attribution.units, U = units.length, scale = attribution.scale;
    var left = 110, top = 100, width = Math.max(660, left + U * MX_W + 10), height = top + T * MX_H + 30;
    var svg = svgNode("svg", {xmlns: "http://www.w3.org/2000/svg", width: width, height: height,
      viewBox: "0 0 " + width + " " + height, "font-family": c.font, "font-size": 10});
    svg.appendChild(svgNode("rect", {x: 0, y: 0, width: width, height: height, fill: c.bg}));
    var style = getComputedStyle(document.body);
    var pos = fig.cssVar(style, "--pos", "#0072b2"), neg = fig.cssVar(style, "--neg", "#d55e00");
    units.forEach(function (text, u) {
      var x = left + u * MX_W + MX_W / 2;
      svg.appendChild(svgNode("text", {x: x, y: top - 6, fill: c.fg, transform: "rotate(-50 " + x + " " + (top - 6) + ")",
        "xml:space": "preserve"}, short(text)));
    });
    for (var t = 0; t < T; t++) {
      var y = top + t * MX_H, got = unitValues(method, kind, t);
      var label = svgNode("text", {x: left - 6, y: y + 14, fill: c.fg, "text-anchor": "end", "font-weight": t === step ? "bold" : "normal",
        "xml:space": "preserve"}, t + " " + short(data.answer[t]));
      svg.appendChild(label);
      for (var u = 0; u < U; u++) {
        var v = got.values[u];
        var cell = svgNode("rect", {x: left + u * MX_W + 1, y: y + 1, width: MX_W - 2, height: MX_H - 2,
          fill: v === null ? c.bg : v < 0 ? neg : pos, "fill-opacity": v === null ? 0 : Math.min(1, Math.abs(v) / scale).toFixed(3),
          stroke: t === step ? c.fg : "none"});
        cell.dataset.step = String(t);
        cell.dataset.unit = String(u);
        cell.dataset.value = v === null ? "" : String(v);
        cell.appendChild(svgNode("title", {}, "token " + t + " «" + data.answer[t] + "», «" + units[u] + "»: "
          + (v === null ? "–" : (v >= 0 ? "+" : "") + v.toFixed(3))));
        svg.appendChild(cell);
      }
    }
    svg.appendChild(svgNode("text", {x: 4, y: 12, fill: c.muted}, method + ": " + (kind === "contrast"
      ? "log p(token) − log p(runner-up)" : (attribution.output === "log_probability" ? "log-probability" : "probability"))
      + " of each answer token (rows), by prompt " + attribution.unit + " (columns)"));
    svg.appendChild(svgNode("text", {x: 4, y: 26, fill: c.muted}, "orange: raised it · blue: lowered it · full colour at ±"
      + scale + (attribution.output === "log_probability" ? " nats" : "")));
    svg.addEventListener("click", function (event) {
      var st = event.target.dataset && event.target.dataset.step;
      if (st !== undefined) choose(+st, true);
    });
    return svg;
  }
  function drawMatrix() {
    if (!attribution) return;
    draw("g-matrix", matrixSvg);
    var m = attribution.methods[matrixMethod.value], box = document.getElementById("g-matrix-note");
    if (box) box.textContent = (m.exact ? "Exact Shapley values" : matrixMethod.value === "occlusion"
      ? "Occlusion (each " + attribution.unit + " left out alone)" : "Sampled (" + m.estimator + "), with standard errors in report.json")
      + "; the chosen token's row is outlined; click a row to choose it.";
  }

  // -- the token strip as a standalone SVG (tokens as text, shades as drawn) -------------------------
  function tokensSvg() {
    var c = fig.colours(), width = 900, x = 8, y = 28, lineHeight = 26;
    var measure = document.createElement("canvas").getContext("2d");
    measure.font = "13px " + c.font;
    var items = [];
    cells.forEach(function (node) {
      var w = measure.measureText(node.textContent).width + 10;
      if (x + w > width - 8) { x = 8; y += lineHeight; }
      items.push({node: node, x: x, y: y, w: w});
      x += w + 4;
    });
    var height = y + 40;
    var svg = svgNode("svg", {xmlns: "http://www.w3.org/2000/svg", width: width, height: height,
      viewBox: "0 0 " + width + " " + height, "font-family": c.font, "font-size": 13});
    svg.appendChild(svgNode("rect", {x: 0, y: 0, width: width, height: height, fill: c.bg}));
    svg.appendChild(svgNode("text", {x: 8, y: 14, fill: c.muted, "font-size": 11}, note.textContent));
    items.forEach(function (it) {
      var w = +(it.node.style.getPropertyValue("--w") || 0), later = it.node.classList.contains("later");
      svg.appendChild(svgNode("rect", {x: it.x, y: it.y - 14, width: it.w, height: 20, rx: 4, fill: c.accent, "fill-opacity": (0.9 * w).toFixed(3),
        stroke: it.node.classList.contains("chosen") ? c.fg : (it.node.classList.contains("template") ? c.muted : "none"), "stroke-dasharray": it.node.classList.contains("template") ? "3 2" : "none"}));
      svg.appendChild(svgNode("text", {x: it.x + 5, y: it.y, fill: later ? c.muted : c.fg, "xml:space": "preserve"}, it.node.textContent));
    });
    return svg;
  }

  function draw(id, build) {
    var box = document.getElementById(id);
    if (box) box.replaceChildren(build());
  }

  function choose(t, fromUser) {
    step = t;
    shade();
    drawSegments();
    draw("g-steps", stepsSvg);
    drawTop();
    if (data.lens) draw("g-lens", lensSvg);
    drawRows();
    drawMatrix();
    if (fromUser) {
      history.replaceState(null, "", "#step=" + t);
      var chosen = strip.querySelector('button[data-step="' + t + '"]');
      if (chosen && document.activeElement && strip.contains(document.activeElement)) chosen.focus();
    }
  }

  function saveButton(id, build, name, png) {
    fig.on(id, "click", function () {
      var svg = build();
      if (png) save.saveSvgAsPng(svg, save.figureName(name, "step" + step) + ".png");
      else save.saveSvg(svg, save.figureName(name, "step" + step) + ".svg");
    });
  }
  saveButton("g-tok-png", tokensSvg, "generation-attention", true);
  saveButton("g-tok-svg", tokensSvg, "generation-attention", false);
  saveButton("g-steps-png", stepsSvg, "generation-steps", true);
  saveButton("g-steps-svg", stepsSvg, "generation-steps", false);
  saveButton("g-lens-png", lensSvg, "logit-lens", true);
  saveButton("g-lens-svg", lensSvg, "logit-lens", false);
  if (!data.lens) {
    var none = document.getElementById("g-lens-none");
    if (none) none.hidden = false;
    ["g-lens-png", "g-lens-svg"].forEach(function (id) { var b = document.getElementById(id); if (b) b.disabled = true; });
  }
  [layerSelect, headSelect].forEach(function (select) {
    select.addEventListener("change", function () { shade(); drawRows(); });
  });
  shadeSelect.addEventListener("change", shade);
  explainSelect.addEventListener("change", function () {
    // an asked-for contrast belongs to its step: choosing it chooses that token
    if (explainSelect.value.indexOf("asked:") === 0) choose(attribution.asked[+explainSelect.value.slice(6)].step, true);
    else shade();
  });
  [matrixMethod, matrixKind].forEach(function (select) { select.addEventListener("change", drawMatrix); });
  if (attribution) {
    saveButton("g-matrix-png", matrixSvg, "answer-attribution", true);
    saveButton("g-matrix-svg", matrixSvg, "answer-attribution", false);
  }

  var asked = /(?:^|[#&])step=(\d+)/.exec(location.hash);
  step = asked ? Math.min(T - 1, +asked[1]) : 0;
  Promise.all([fig.inflate(data.attention), data.rollout ? fig.inflate(data.rollout) : null]).then(function (blocks) {
    attention = blocks[0];
    rollout = blocks[1];
    choose(step, false);
    modelView.draw(attention);
    document.body.dataset.generationReady = "1";
  });
})();
