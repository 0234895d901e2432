// Example page glue: decode the page's JSON data, own the layer, head and view controls and the
// address (#layer=L&head=H), and draw the figures (heatmap.js, headview.js, tokenview.js, modelview.js,
// neuronview.js).
// Data arrives only through <script type="application/json">; tokens are set as text, never as markup.
(function () {
  "use strict";
  var ns = window.attnreport, fig = ns.figure, option = fig.option;
  var data = JSON.parse(document.getElementById("example-data").textContent);

  var n = data.n, L = data.layers, H = data.heads;
  var attention = null, rolloutMatrix = null;

  function matrix(layer, head) {
    var z = [], r, c, h, v;
    for (r = 0; r < n; r++) {
      var row = new Array(n);
      for (c = 0; c < n; c++) {
        if (layer === "rollout") {
          v = rolloutMatrix[r * n + c];
        } else if (head === "mean") {
          v = 0;
          for (h = 0; h < H; h++) v += attention[((layer * H + h) * n + r) * n + c];
          v /= H;
        } else {
          v = attention[((layer * H + head) * n + r) * n + c];
        }
        row[c] = v;
      }
      z.push(row);
    }
    return z;
  }

  // the largest weight shown: the heatmap's colour scale and the head view's opacity run to it
  function peak(z) {
    var m = 0;
    z.forEach(function (row) { row.forEach(function (v) { if (v > m) m = v; }); });
    return m > 0 ? m : 1;
  }

  // the controls; a user's own template may leave any out (a detached one stands in)
  function control(id) { return document.getElementById(id) || document.createElement("select"); }
  var layerSelect = control("layer"), headSelect = control("head"), viewSelect = control("view");
  for (var l = 0; l < L; l++) option(layerSelect, l, "layer " + l);
  option(layerSelect, "rollout", "rollout (all layers)");
  option(headSelect, "mean", "mean of heads");
  for (var h = 0; h < H; h++) option(headSelect, h, "head " + h);
  layerSelect.value = String(L - 1);
  // the predicted class's attributions first, then the other classes' and the contrast (in the
  // page data's order), then the attention views
  var order = ["shapley", "occlusion", "flow", "rollout"];
  function rank(name) { var k = order.indexOf(name); return k < 0 ? 1.5 : k; }
  var names = Object.keys(data.views).sort(function (a, b) { return rank(a) - rank(b); });
  names.forEach(function (name) { option(viewSelect, name, name); });

  // head pages link here with #layer=L&head=H (also #layer=rollout, #head=mean); the address
  // follows the selectors, so it can be copied to share the view
  function readHash() {
    var wanted = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
      var parts = kv.split("=");
      if (parts.length === 2) wanted[parts[0]] = parts[1];
    });
    var layer = wanted.layer || "", head = wanted.head || "";
    if ((/^\d+$/.test(layer) && +layer < L) || layer === "rollout") layerSelect.value = layer;
    if ((/^\d+$/.test(head) && +head < H) || head === "mean") headSelect.value = head;
  }
  readHash();

  // a long text folds after a few lines, with a button to show it whole (and fold it again)
  function fold(element, label) {
    if (!element) return;
    var lines = element.scrollHeight / (parseFloat(getComputedStyle(element).lineHeight) || 20);
    if (lines <= 8) return;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "unfold";
    function set(folded) {
      element.classList.toggle("folded", folded);
      button.textContent = folded ? "show the whole " + label : "fold the " + label;
      button.setAttribute("aria-expanded", String(!folded));
    }
    button.addEventListener("click", function () { set(!element.classList.contains("folded")); });
    element.parentNode.insertBefore(button, element.nextSibling);
    set(true);
  }
  fold(document.getElementById("source-text"), "text (" + data.text.length + " characters)");

  var heatmapBox = document.getElementById("heatmap");
  var heatmap = ns.heatmap.create(heatmapBox, data);
  var headView = ns.headview.create(document.getElementById("head-view"), data);
  var tokenView = ns.tokenview.create(document.getElementById("tokens"), data);
  // pages of --with-qk exports only (the template leaves the script out otherwise)
  var neuronView = ns.neuronview ? ns.neuronview.create(document.getElementById("neuron-view"), data)
    : {draw: function () {}};
  var modelView = ns.modelview.create(document.getElementById("model-view"), data, function (layer, head) {
    layerSelect.value = layer;
    headSelect.value = head;
    choose();
    if (heatmapBox) heatmapBox.scrollIntoView({behavior: "smooth", block: "center"});
  });

  function draw() {
    if (attention === null) return;  // still inflating
    var layer = layerSelect.value === "rollout" ? "rollout" : parseInt(layerSelect.value, 10);
    var head = headSelect.value === "mean" ? "mean" : parseInt(headSelect.value, 10);
    headSelect.disabled = layer === "rollout";
    var z = matrix(layer, head);
    var view = {z: z, layer: layer, head: head, peak: peak(z)};
    headView.draw(view);
    heatmap.draw(view);
    neuronView.draw(view);
  }

  function choose() {
    var hash = "#layer=" + layerSelect.value + "&head=" + headSelect.value;
    if (location.hash !== hash && window.history && history.replaceState) {
      try { history.replaceState(null, "", hash); } catch (e) { /* some file:// browsers refuse */ }
    }
    draw();
  }

  viewSelect.addEventListener("change", function () { tokenView.draw(viewSelect.value); });
  // "why not B?" buttons show their view in the token view
  Array.prototype.forEach.call(document.querySelectorAll("button[data-show-view]"), function (button) {
    var name = button.getAttribute("data-show-view");
    if (!(name in data.views)) { button.hidden = true; return; }
    button.addEventListener("click", function () {
      viewSelect.value = name;
      tokenView.draw(name);
      var box = document.getElementById("tokens");
      if (box) box.scrollIntoView({block: "center"});
    });
  });
  layerSelect.addEventListener("change", choose);
  headSelect.addEventListener("change", choose);
  window.addEventListener("hashchange", function () { readHash(); draw(); });
  // figures take their colours from the theme when drawn: redraw them for paper and back
  if (fig.printing.addEventListener) fig.printing.addEventListener("change", draw);
  tokenView.draw(viewSelect.value);

  Promise.all([fig.inflate(data.attention), fig.inflate(data.rollout_matrix)]).then(function (arrays) {
    attention = arrays[0];
    rolloutMatrix = arrays[1];
    draw();
    modelView.draw(attention);
  });
})();
