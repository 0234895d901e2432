// Neuron view (after BertViz) of the page's layer and head, for one query token: the query vector,
// each key's vector, their elementwise product, q·k·scale and the model's own attention, one row
// per key the query may read. Values are cells coloured by sign (blue +, orange −) with opacity
// by magnitude. Drawn as SVG with colours as attributes, so the saved files look like the page.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};
  var NV = {row: 18, pad: 10, top: 52, font: 12, label: 130, gap: 14, bar: 90, maxChars: 16};
  var POS = "#0072b2", NEG = "#e69f00";  // Okabe–Ito blue and orange, as BertViz's blue and orange

  // a token that is only whitespace shows as ␣, so its row is not left unlabelled
  function shortToken(t) {
    if (!t.trim()) return "␣".repeat(Math.max(1, Math.min(3, t.length)));
    var chars = Array.from(t);
    return chars.length > NV.maxChars ? chars.slice(0, NV.maxChars - 1).join("") + "…" : t;
  }

  // three significant digits, in at most eight characters
  function number(v) {
    var a = Math.abs(v);
    if (a >= 100) return v.toFixed(0);
    return a >= 0.001 || a === 0 ? v.toPrecision(3) : v.toExponential(1);
  }

  // box: the figure's container (absent: nothing is drawn); data: the page's data, whose `neuron`
  // block holds the queries and keys (or why they were skipped). The query token is this view's
  // own control (#nv-query); the layer and head are the page's.
  function create(box, data) {
    if (!box) return {draw: function () {}};
    var fig = ns.figure, save = ns.save, node = save.svgNode, block = data.neuron;
    var note = document.getElementById("nv-note");
    function say(text) {
      box.textContent = "";
      var p = document.createElement("p");
      p.className = "muted";
      p.textContent = text;
      box.appendChild(p);
      box.dataset.state = "message";
    }
    if (!block || block.skipped) {
      say("Not shown for this text: " + (block ? block.skipped : "no queries and keys") + ".");
      var controls = document.getElementById("nv-controls");
      if (controls) controls.hidden = true;
      return {draw: function () {}};
    }
    var n = data.n, H = data.heads, d = block.head_dim, tokens = data.tokens;
    var groups = H / block.kv_heads;
    var querySelect = document.getElementById("nv-query") || document.createElement("select");
    tokens.forEach(function (t, i) { fig.option(querySelect, i, i + " " + shortToken(t)); });
    querySelect.value = String(data.read_position === "last" ? n - 1 : 0);
    var queries = null, keys = null, last = null;
    var cell = Math.max(2, Math.min(10, Math.floor(256 / d)));

    function vector(array, layer, head, i) {
      var at = ((layer * H + head) * n + i) * d;
      return array.subarray(at, at + d);
    }

    function draw(view) {
      if (view) last = view;
      view = last;
      if (!view || queries === null) return;
      if (view.layer === "rollout" || view.head === "mean") {
        say("Choose one layer and one head above: the neuron view shows one head's queries and keys.");
        return;
      }
      var layer = view.layer, head = view.head, i = parseInt(querySelect.value, 10);
      var c = fig.colours(), scale = block.scales[layer];
      var q = vector(queries, layer, head, i);
      var shown = [];
      for (var j = 0; j < n; j++) if (!block.causal || j <= i) shown.push(j);
      var rows = shown.map(function (j) {
        var k = vector(keys, layer, head, j), prod = new Float64Array(d), dot = 0;
        for (var x = 0; x < d; x++) { prod[x] = q[x] * k[x]; dot += prod[x]; }
        return {j: j, k: k, prod: prod, score: dot * scale, attention: view.z[i][j]};
      });
      // one magnitude scale for q and the keys, one for the products, one for the scores
      var vmax = 0, pmax = 0, smax = 0;
      for (var x = 0; x < d; x++) vmax = Math.max(vmax, Math.abs(q[x]));
      rows.forEach(function (r) {
        for (var x = 0; x < d; x++) {
          vmax = Math.max(vmax, Math.abs(r.k[x]));
          pmax = Math.max(pmax, Math.abs(r.prod[x]));
        }
        smax = Math.max(smax, Math.abs(r.score));
      });
      vmax = vmax || 1; pmax = pmax || 1; smax = smax || 1;
      var xv = NV.pad + NV.label, xp = xv + d * cell + NV.gap, xs = xp + d * cell + NV.gap;
      var xa = xs + NV.bar + 76, width = xa + NV.bar + 50 + NV.pad;
      var height = NV.top + NV.row * (rows.length + 1) + NV.pad;
      var svg = node("svg", {
        width: width, height: height, viewBox: "0 0 " + width + " " + height,
        role: "img", "font-family": c.font, "font-size": NV.font
      });
      var what = "layer " + layer + ", head " + head + ", query " + i;
      svg.setAttribute("aria-label", "Neuron view, " + what + ": query and key vectors, their products and scores");
      svg.dataset.layer = String(layer);
      svg.dataset.head = String(head);
      svg.dataset.query = String(i);
      svg.appendChild(node("title", {}, "Neuron view, " + what));
      svg.appendChild(node("rect", {x: 0, y: 0, width: width, height: height, fill: c.bg}));
      function cells(values, x0, y, peak, kind) {
        var g = node("g", {"data-kind": kind});
        for (var x = 0; x < values.length; x++) {
          var v = values[x];
          g.appendChild(node("rect", {
            x: x0 + x * cell, y: y - NV.row / 2 + 2, width: Math.max(1, cell - 1), height: NV.row - 4,
            fill: v >= 0 ? POS : NEG, "fill-opacity": (Math.abs(v) / peak).toFixed(3), "data-v": v.toPrecision(4)
          }));
        }
        return g;
      }
      function label(text, x, y, attrs) {
        var t = node("text", Object.assign({x: x, y: y + 4, fill: c.fg, "xml:space": "preserve"}, attrs || {}), text);
        return t;
      }
      // headers, then the query's own row
      var y0 = 18;
      svg.appendChild(label("key", NV.pad + NV.label - 8, y0, {"text-anchor": "end", fill: c.muted}));
      svg.appendChild(label("q and k", xv, y0, {fill: c.muted}));
      svg.appendChild(label("q × k", xp, y0, {fill: c.muted}));
      svg.appendChild(label("q·k × " + number(scale), xs, y0, {fill: c.muted}));
      svg.appendChild(label("attention", xa, y0, {fill: c.muted}));
      var yq = NV.top - NV.row / 2;
      var qrow = node("g", {"data-q": i});
      qrow.appendChild(label("query: " + shortToken(tokens[i]), NV.pad + NV.label - 8, yq, {"text-anchor": "end", "font-weight": "bold"}));
      qrow.appendChild(cells(q, xv, yq, vmax, "q"));
      svg.appendChild(qrow);
      rows.forEach(function (r, at) {
        var y = NV.top + NV.row * (at + 1) - NV.row / 2;
        var g = node("g", {
          "data-k": r.j, "data-score": r.score.toPrecision(7), "data-attention": r.attention.toFixed(6)
        });
        g.appendChild(node("title", {}, r.j + ": " + tokens[r.j] + " — q·k × scale " + number(r.score)
          + ", attention " + r.attention.toFixed(3)));
        var name = label(shortToken(tokens[r.j]), NV.pad + NV.label - 8, y, {"text-anchor": "end"});
        if (data.special[r.j]) name.setAttribute("fill", c.muted);
        g.appendChild(name);
        g.appendChild(cells(r.k, xv, y, vmax, "k"));
        g.appendChild(cells(r.prod, xp, y, pmax, "qk"));
        // the score: a bar from the zero line at the middle, blue right for +, orange left for −
        var mid = xs + NV.bar / 2, len = (Math.abs(r.score) / smax) * NV.bar / 2;
        g.appendChild(node("rect", {
          x: r.score >= 0 ? mid : mid - len, y: y - NV.row / 2 + 3, width: Math.max(0.5, len), height: NV.row - 6,
          fill: r.score >= 0 ? POS : NEG
        }));
        g.appendChild(label(number(r.score), xs + NV.bar + 6, y, {"data-role": "score"}));
        g.appendChild(node("rect", {
          x: xa, y: y - NV.row / 2 + 3, width: Math.max(0.5, r.attention * NV.bar), height: NV.row - 6, fill: c.accent
        }));
        g.appendChild(label(r.attention.toFixed(3), xa + NV.bar + 6, y, {"data-role": "attention"}));
        svg.appendChild(g);
      });
      svg.appendChild(node("line", {
        x1: xs + NV.bar / 2, x2: xs + NV.bar / 2, y1: NV.top, y2: height - NV.pad, stroke: c.muted, "stroke-width": 1
      }));
      box.textContent = "";
      box.appendChild(svg);
      box.dataset.state = "drawn";
      box.dataset.layer = String(layer);
      box.dataset.head = String(head);
      box.dataset.query = String(i);
      if (note) {
        var kv = groups > 1 ? "; this model has " + block.kv_heads + " key heads for " + H
          + " query heads, so head " + head + " reads key head " + Math.floor(head / groups) : "";
        note.textContent = rows.length + " keys" + (block.causal && i < n - 1
          ? " (the " + (n - 1 - i) + " after the query are masked: the model is causal)" : "")
          + "; scale " + number(scale) + (Math.abs(scale * Math.sqrt(d) - 1) > 1e-6
            ? " (1/√" + d + " × " + number(scale * Math.sqrt(d)) + ", this layer's own factor)" : " (1/√" + d + ")") + kv;
      }
    }

    querySelect.addEventListener("change", function () { draw(); });
    function saved(ext) {
      var svg = box.querySelector("svg");
      if (!svg || !last) return;
      var name = save.figureName("neuron-view", last) + "-query" + svg.dataset.query + "." + ext;
      if (ext === "svg") save.saveSvg(svg, name); else save.saveSvgAsPng(svg, name);
    }
    fig.on("nv-svg", "click", function () { saved("svg"); });
    fig.on("nv-png", "click", function () { saved("png"); });

    Promise.all([fig.inflateSigned(block.queries), fig.inflateSigned(block.keys)]).then(function (arrays) {
      queries = arrays[0];
      keys = arrays[1];
      draw();
    });
    return {draw: draw};
  }

  ns.neuronview = {create: create};
})();
