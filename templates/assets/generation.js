// Generation page: pick an answer token; the input and the answer before it are shaded by the
// attention of the position that wrote it, and its scores, alternatives and logit lens are shown
// (the SVG figures are generationfigures.js's; this file owns the controls and the chosen token).
// Data arrives only through <script type="application/json">; every token is set as text, never markup.
(function () {
  "use strict";
  var ns = window.attnreport, fig = ns.figure, save = ns.save, svgNode = save.svgNode;
  var figures = ns.generationFigures, pct = figures.pct;
  var source = document.getElementById("generation-data");
  if (!source) return;
  var data = JSON.parse(source.textContent);
  var n = data.n, T = data.steps, L = data.layers, H = data.heads, K = n + T - 1;
  var attention = null, rollout = null, step = 0;
  var blocks = {};  // each view's inflated rows and rollout, by view name

  function control(id) { return document.getElementById(id) || document.createElement("select"); }
  var layerSelect = control("g-layer"), headSelect = control("g-head"), viewSelect = control("g-view");
  var views = data.views || {attention: {label: "raw attention", folds_sinks: false}};
  Object.keys(views).forEach(function (name) { fig.option(viewSelect, name, views[name].label); });
  viewSelect.value = data.default_view || "attention";
  if (data.rollout) fig.option(layerSelect, "rollout", "rollout (all layers)");
  fig.option(layerSelect, "mean", "mean of layers");
  for (var l = L - 1; l >= 0; l--) fig.option(layerSelect, l, "layer " + l);
  fig.option(headSelect, "mean", "mean of heads");
  for (var h = 0; h < H; h++) fig.option(headSelect, h, "head " + h);
  layerSelect.value = {rollout: data.rollout ? "rollout" : "mean", mean_attention: "mean", attention: String(L - 1)}[data.default_aggregate] || layerSelect.value;

  // the attention sinks (analysis.sinks): positions set apart per layer, and their share per step
  var sinks = data.sinks || {layers: [], share: []};
  var sinkPositions = {};
  sinks.layers.forEach(function (positions) { positions.forEach(function (p) { sinkPositions[p] = true; }); });
  // the chosen step's attention on sinks: the chosen layer's, or the mean of layers
  function sinkShare(t) {
    if (!sinks.share.length) return 0;
    var layer = layerSelect.value;
    if (layer !== "mean" && layer !== "rollout") return sinks.share[+layer][t];
    var total = 0;
    sinks.share.forEach(function (byStep) { total += byStep[t]; });
    return total / sinks.share.length;
  }
  function sinkNote(t) {
    var names = Object.keys(sinkPositions).map(Number).sort(function (a, b) { return a - b; });
    if (!names.length) return "";
    var where = names.map(function (p) { return "position " + p + " («" + visible(keyTokens[p]) + "»)"; }).join(", ");
    var folded = views[viewSelect.value] && views[viewSelect.value].folds_sinks;
    return " Attention sink" + (names.length > 1 ? "s " : " ") + where + " take" + (names.length > 1 ? "" : "s") + " "
      + pct(sinkShare(t)) + " of this step's raw attention" + (layerSelect.value === "mean" || layerSelect.value === "rollout" ? " (mean of layers and heads)" : " (this layer, mean of heads)")
      + (folded ? "; set apart here, the rest renormalised." : "; choose a view beyond the sink to set " + (names.length > 1 ? "them" : "it") + " apart.");
  }

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
  var keyTokens = data.prompt.concat(data.answer.slice(0, T - 1));
  var matrixViews = {
    layers: L, heads: H,
    queries: data.answer.map(visible),
    keys: keyTokens.map(visible),
    query_special: data.answer.map(function () { return false; }),
    key_special: data.special.concat(data.answer.slice(0, T - 1).map(function () { return false; }))
  };
  function matrix() {
    var z = [];
    for (var t = 0; t < T; t++) z.push(Array.prototype.slice.call(row(t)));
    return z;
  }
  var heatmapBox = document.getElementById("heatmap");
  var heatmap = ns.heatmap ? ns.heatmap.create(heatmapBox, matrixViews) : {draw: function () {}};
  var headView = ns.headview ? ns.headview.create(document.getElementById("head-view"), matrixViews)
    : {draw: function () {}, highlight: function () {}};
  var modelView = ns.modelview ? ns.modelview.create(document.getElementById("model-view"), matrixViews, function (layer, head) {
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
    var rowsNote = document.getElementById("rows-note");
    if (rowsNote) rowsNote.textContent = "View: " + views[viewSelect.value].label + " (" + views[viewSelect.value].description + ")."
      + (views[viewSelect.value].folds_sinks && Object.keys(sinkPositions).length ? " The sink columns are empty: set apart." : "");
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
  Object.keys(sinkPositions).forEach(function (p) { if (cells[+p]) cells[+p].classList.add("sink"); });
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
    var got = figures.unitValues(attribution, method, kind, step), scale = attribution.scale, unsure = 0;
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
    // the attribution methods, and the chosen view's own rankings (the full table is below)
    var per = attribution.token_faithfulness, view = viewSelect.value;
    var own = {attention: "last layer", mean_attention: "mean of layers", rollout: "rollout"};
    var parts = [];
    Object.keys(attribution.methods).forEach(function (name) { if (per[name]) parts.push([name, per[name]]); });
    Object.keys(own).forEach(function (aggregate) {
      var name = view === "attention" ? aggregate : view + "_" + aggregate;
      if (per[name]) parts.push([views[view].label + ", " + own[aggregate], per[name]]);
    });
    parts = parts.map(function (pair) {
      var c = pair[1][step].comprehensiveness;
      return pair[0] + " " + (c === null ? "–" : (c >= 0 ? "+" : "") + c.toFixed(2));
    });
    var bar = per.random[step].comprehensiveness;
    box.textContent = "For «" + data.answer[step] + "»: taking away each view's top " + attribution.unit
      + "s lowers its " + (attribution.output === "log_probability" ? "log-probability" : "probability")
      + " by" + (attribution.output === "log_probability" ? " (nats; " : " (") + "comprehensiveness, ERASER; higher is more faithful) " + parts.join(" · ")
      + "; random " + attribution.unit + "s: " + (bar === null ? "–" : (bar >= 0 ? "+" : "") + bar.toFixed(2)) + ".";
  }

  function shade() {
    if (!attention) return;
    var byAttribution = attribution && shadeSelect.value !== "attention";
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
      node.title = seen && position < K ? (sinkPositions[position] ? "attention sink; " : "") + "attention " + weights[position].toFixed(3) : "";
      if (node.dataset.step !== undefined) node.setAttribute("aria-pressed", String(+node.dataset.step === step));
    });
    var what = views[viewSelect.value].label + ": " + (layerSelect.value === "rollout" ? "rollout through every layer"
      : (layerSelect.value === "mean" ? "attention, mean of layers" : "attention in layer " + layerSelect.value)
        + (headSelect.value === "mean" ? ", mean of heads" : ", head " + headSelect.value));
    note.textContent = "Token " + step + " «" + data.answer[step] + "» (probability "
      + pct(data.probability[step]) + "): " + what + "; the strongest key (shaded fully) has "
      + peak.toFixed(3) + "." + sinkNote(step);
    legend.textContent = "darker: more attention";
  }
  var note = document.getElementById("g-note") || document.createElement("p");
  var legend = document.getElementById("g-legend") || document.createElement("span");


  // -- the figures of generationfigures.js; the attribution matrix's method and kind are chosen here
  var matrixMethod = control("g-matrix-method"), matrixKind = control("g-matrix-kind");
  // each drawn for the chosen step; a click on a token's bar, cell or row chooses it
  function pick(t) { choose(t, true); }
  function stepsSvg() { return figures.steps(data, step, pick); }
  function lensSvg() { return figures.lens(data, step, pick); }
  function matrixSvg() { return figures.matrix(data, step, matrixMethod.value, matrixKind.value, pick); }
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

  // the chosen step's attention by segment (template, prompt, answer so far), layer by layer, in the
  // chosen view (mean of heads): what the segments figure draws
  var segmentOf = [];
  for (var key = 0; key < K; key++) segmentOf.push(key >= n ? 2 : data.from_template[key] ? 0 : 1);
  function segmentData(t) {
    var shares = [];
    for (var ly = 0; ly < L; ly++) {
      var share = [0, 0, 0];
      for (var hd = 0; hd < H; hd++) {
        var base = ((ly * H + hd) * T + t) * K;
        for (var k = 0; k < K; k++) share[segmentOf[k]] += attention[base + k] / H;
      }
      shares.push(share);
    }
    var perStep = [];
    perStep[t] = shares;
    return {layers: L, segments: {names: data.segments.names, shares: perStep}};
  }

  function draw(id, build) {
    var box = document.getElementById(id);
    if (box) box.replaceChildren(build());
  }

  function choose(t, fromUser) {
    step = t;
    shade();
    figures.segments(document.getElementById("g-segments"), segmentData(step), step);
    draw("g-steps", stepsSvg);
    figures.alternatives(document.querySelector("#g-top tbody"), document.getElementById("g-top-title"), data, step);
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
  // another view: its rows and rollout replace the drawn ones in every figure
  function useView(name) {
    var got = blocks[name] || blocks.attention;
    attention = got.attention;
    rollout = got.rollout;
    shown = null;
    modelView.draw(attention);
  }
  viewSelect.addEventListener("change", function () {
    useView(viewSelect.value);
    choose(step, false);
  });
  shadeSelect.addEventListener("change", shade);
  explainSelect.addEventListener("change", function () {
    // explaining a contrast or the whole answer is an attribution: shade by one without a second control
    if (attribution && shadeSelect.value === "attention" && explainSelect.value !== "token") {
      shadeSelect.value = Object.keys(attribution.methods)[0];
    }
    // an asked-for contrast belongs to its step: choosing it chooses that token
    if (explainSelect.value.indexOf("asked:") === 0) choose(attribution.asked[+explainSelect.value.slice(6)].step, true);
    else shade();
  });
  [matrixMethod, matrixKind].forEach(function (select) { select.addEventListener("change", drawMatrix); });
  if (attribution) {
    saveButton("g-matrix-png", matrixSvg, "answer-attribution", true);
    saveButton("g-matrix-svg", matrixSvg, "answer-attribution", false);
  }

  // the step in the address (#step=N), else the one the page opens on: the first asked contrast's,
  // or the least confident (data.open_step)
  function stepFromAddress() {
    var asked = /(?:^|[#&])step=(\d+)/.exec(location.hash);
    return asked ? Math.min(T - 1, +asked[1]) : null;
  }
  window.addEventListener("hashchange", function () {
    var t = stepFromAddress();
    if (t !== null && t !== step && attention) choose(t, false);
  });
  var fromAddress = stepFromAddress();
  step = fromAddress !== null ? fromAddress : Math.max(0, Math.min(T - 1, data.open_step || 0));
  var names = Object.keys(views), pending = [];
  names.forEach(function (name) {
    var v = views[name], rowsBlock = name === "attention" ? data.attention : v.attention;
    var rollBlock = name === "attention" ? data.rollout : v.rollout;
    pending.push(fig.inflate(rowsBlock), rollBlock ? fig.inflate(rollBlock) : null);
  });
  Promise.all(pending).then(function (got) {
    names.forEach(function (name, i) { blocks[name] = {attention: got[2 * i], rollout: got[2 * i + 1]}; });
    attention = true;  // checked by shade(); useView sets the rows
    useView(viewSelect.value);
    choose(step, false);
    document.body.dataset.generationReady = "1";
  });
})();
