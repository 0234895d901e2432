// Notebook glue (attnreport.notebook): the site's head, model and neuron views (headview.js,
// modelview.js, neuronview.js) on one notebook output's data, with BertViz's menus: layer, head
// and "Attention" (sentence A -> B, encoder, decoder, cross). The output is a document of its own
// (an iframe), so the site's element ids are used as they are; the frame grows to fit its content.
// Data arrives only through <script type="application/json">; tokens are set as text, never as markup.
(function () {
  "use strict";
  var ns = window.attnreport, fig = ns.figure, option = fig.option;
  var data = JSON.parse(document.getElementById("notebook-data").textContent);
  var L = data.layers.length, H = data.heads.length;
  var arrays = null;  // each block's attention, inflated: Float32Array [L, H, rows, cols]

  function byId(id) { return document.getElementById(id); }
  function control(id) { return byId(id) || document.createElement("select"); }
  function range(count) { var out = []; for (var i = 0; i < count; i++) out.push(i); return out; }

  // an element as new, without the listeners or children a figure gave it: a figure is made
  // anew for each part of the "Attention" menu (its own tokens), and finds fresh controls
  function renew(id) {
    var old = byId(id);
    if (!old) return;
    old.parentNode.replaceChild(old.cloneNode(old.tagName === "BUTTON"), old);
  }

  // one layer's rows x cols of a part, averaged over the heads `heads` (indices)
  function matrix(part, layer, heads) {
    var block = data.blocks[part.block], R = block.queries.length, C = block.keys.length;
    var a = arrays[part.block], z = [];
    for (var r = part.rows[0]; r < part.rows[1]; r++) {
      var row = [];
      for (var c = part.cols[0]; c < part.cols[1]; c++) {
        var v = 0;
        for (var j = 0; j < heads.length; j++) v += a[((layer * H + heads[j]) * R + r) * C + c];
        row.push(v / heads.length);
      }
      z.push(row);
    }
    return z;
  }

  function peak(z) {
    var m = 0;
    z.forEach(function (row) { row.forEach(function (v) { if (v > m) m = v; }); });
    return m > 0 ? m : 1;
  }

  // a part's tokens as the figures read them (queries down the left, keys on the right)
  function partData(part) {
    var b = data.blocks[part.block], r0 = part.rows[0], r1 = part.rows[1], c0 = part.cols[0], c1 = part.cols[1];
    var queries = b.queries.slice(r0, r1), keys = b.keys.slice(c0, c1);
    return {
      tokens: queries, queries: queries, keys: keys, n: queries.length,
      special: b.query_special.slice(r0, r1), query_special: b.query_special.slice(r0, r1),
      key_special: b.key_special.slice(c0, c1), layers: L, heads: H,
      layer_ids: data.layers, head_ids: data.heads
    };
  }

  // every layer and head of a part, [L, H, rows, cols], as the model view draws them
  function partArray(part) {
    var block = data.blocks[part.block], R = block.queries.length, C = block.keys.length;
    var rows = part.rows[1] - part.rows[0], cols = part.cols[1] - part.cols[0], a = arrays[part.block];
    if (rows === R && cols === C) return a;
    var out = new Float32Array(L * H * rows * cols), at = 0;
    for (var lh = 0; lh < L * H; lh++) {
      for (var r = part.rows[0]; r < part.rows[1]; r++) {
        var base = (lh * R + r) * C;
        for (var c = part.cols[0]; c < part.cols[1]; c++) out[at++] = a[base + c];
      }
    }
    return out;
  }

  var partSelect = control("part");
  data.parts.forEach(function (p, i) { option(partSelect, i, p.name); });
  if (data.parts.length > 1 && byId("part-label")) byId("part-label").hidden = false;
  function currentPart() { return data.parts[parseInt(partSelect.value || "0", 10)]; }

  // the head view, made for one part (its tokens); `made` is the part it was made for
  var headView = null, made = null;
  function headViewFor(part) {
    if (made === part) return headView;
    ["head-view", "hv-threshold", "hv-range", "hv-png", "hv-svg"].forEach(renew);
    var label = byId("hv-range-label");
    if (label) label.hidden = true;
    headView = ns.headview.create(byId("head-view"), partData(part));
    made = part;
    return headView;
  }

  // draw one layer's heads (indices) of the current part in the head view; `name` labels them
  function drawHead(layer, heads, name) {
    var part = currentPart(), z = matrix(part, layer, heads);
    headViewFor(part).draw({z: z, layer: data.layers[layer], head: name, peak: peak(z)});
  }

  function headView_() {
    var layerSelect = control("layer"), headSelect = control("head"), chosen = data.selected;
    data.layers.forEach(function (l, i) { option(layerSelect, i, "layer " + l); });
    data.heads.forEach(function (h, i) { option(headSelect, i, "head " + h); });
    option(headSelect, "mean", "mean of heads");
    if (chosen && chosen.length > 1) {
      option(headSelect, "chosen", "mean of heads " + chosen.map(function (h) { return data.heads[h]; }).join(", "));
    }
    layerSelect.value = String(data.layer || 0);
    // BertViz shows every head at once by default: here their mean
    headSelect.value = !chosen ? "mean" : chosen.length === 1 ? String(chosen[0]) : "chosen";
    function draw() {
      var value = headSelect.value;
      var heads = value === "mean" ? range(H) : value === "chosen" ? chosen : [parseInt(value, 10)];
      var name = value === "mean" ? "mean"
        : heads.map(function (h) { return data.heads[h]; }).join("+");
      drawHead(parseInt(layerSelect.value, 10), heads, name);
    }
    [layerSelect, headSelect, partSelect].forEach(function (s) { s.addEventListener("change", draw); });
    draw();
  }

  function modelView_() {
    var section = byId("head-section"), title = byId("head-title");
    function open(layer, head) {
      if (section) section.hidden = false;
      if (title) title.textContent = "Head view: layer " + data.layers[layer] + ", head " + data.heads[head];
      drawHead(layer, [head], data.heads[head]);
    }
    function draw() {
      ["model-view", "mv-png", "mv-svg"].forEach(renew);
      var box = byId("model-view");
      box.style.setProperty("--heads", String(H));
      var part = currentPart();
      ns.modelview.create(box, partData(part), function (layer, head) {
        open(parseInt(layer, 10), parseInt(head, 10));
      }).draw(partArray(part));
      if (section) section.hidden = true;
    }
    partSelect.addEventListener("change", draw);
    draw();
  }

  function neuronView_() {
    var layerSelect = control("layer"), headSelect = control("head"), part = data.parts[0];
    data.layers.forEach(function (l, i) { option(layerSelect, i, "layer " + l); });
    data.heads.forEach(function (h, i) { option(headSelect, i, "head " + h); });
    layerSelect.value = String(data.layer || 0);
    headSelect.value = String(data.head || 0);
    var own = partData(part);
    own.neuron = data.neuron;
    own.heads = H;
    own.read_position = data.read_position;
    var view = ns.neuronview.create(byId("neuron-view"), own);
    function draw() {
      var layer = parseInt(layerSelect.value, 10), head = parseInt(headSelect.value, 10);
      var z = matrix(part, layer, [head]);
      view.draw({z: z, layer: layer, head: head, peak: peak(z)});
    }
    [layerSelect, headSelect].forEach(function (s) { s.addEventListener("change", draw); });
    draw();
  }

  // the frame follows its content's height (the iframe's own document, same origin as the notebook)
  function fit() {
    var frame = window.frameElement;
    if (!frame) return;
    var height = Math.ceil(document.body.getBoundingClientRect().height) + 4;
    if (Math.abs(frame.getBoundingClientRect().height - height) > 2) frame.style.height = height + "px";
  }
  try {
    if (window.ResizeObserver) new ResizeObserver(fit).observe(document.body);
  } catch (e) { /* a frame the notebook will not let us size keeps its first height */ }

  var views = {head: headView_, model: modelView_, neuron: neuronView_};
  Promise.all(data.blocks.map(function (b) { return fig.inflate(b.attention); })).then(function (a) {
    arrays = a;
    views[data.view]();
    document.body.dataset.ready = "true";
    try { fit(); } catch (e) { /* as above */ }
  });
})();
