// Example page: decode the page's JSON data, draw the attention heatmap, size the tokens.
// Data arrives only through <script type="application/json">; tokens are set with
// textContent, never as markup.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("example-data").textContent);

  // uint8 weights, deflated and base64-encoded: inflate with the browser's own
  // DecompressionStream (no library, works from file://), then scale back to [0, 1].
  function inflate(block) {
    var raw = atob(block.data);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer().then(function (buffer) {
      var q = new Uint8Array(buffer);
      var out = new Float32Array(q.length);
      for (var j = 0; j < q.length; j++) out[j] = q[j] * block.scale;
      return out;
    });
  }

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

  function option(select, value, label) {
    var o = document.createElement("option");
    o.value = String(value);
    o.textContent = label;
    select.appendChild(o);
  }

  var layerSelect = document.getElementById("layer");
  var headSelect = document.getElementById("head");
  for (var l = 0; l < L; l++) option(layerSelect, l, "layer " + l);
  option(layerSelect, "rollout", "rollout (all layers)");
  option(headSelect, "mean", "mean of heads");
  for (var h = 0; h < H; h++) option(headSelect, h, "head " + h);
  layerSelect.value = String(L - 1);
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

  var labels = data.tokens.map(function (t, i) { return i + " " + t; });
  var ticks = data.tokens.map(function (_, i) { return i; });
  // Plotly measures every tick label: hundreds of them take seconds per redraw and overlap
  // anyway, so long inputs label every k-th token (hover still names both tokens)
  var tickStep = n <= 128 ? 1 : Math.ceil(n / 96);
  var tickvals = ticks.filter(function (i) { return i % tickStep === 0; });
  var ticktext = tickvals.map(function (i) { return labels[i]; });

  // the colour scale runs to the largest weight shown, so a diffuse head is not all dark
  function peak(z) {
    var m = 0;
    z.forEach(function (row) { row.forEach(function (v) { if (v > m) m = v; }); });
    return m > 0 ? m : 1;
  }

  var printing = window.matchMedia ? window.matchMedia("print") : {matches: false};

  // Head view (after BertViz): the tokens twice, queries on the left and keys on the right, a
  // line for every weight at or above the threshold, as opaque as the weight. Drawn as SVG with
  // its colours as attributes, so the saved SVG and PNG look like the page; tokens are text nodes.
  var SVG = "http://www.w3.org/2000/svg";
  var HV = {row: 20, pad: 10, gap: 240, top: 28, font: 13, maxChars: 28};
  // a user's own example template may leave any of these out: each is optional
  function on(id, event, handler) {
    var node = document.getElementById(id);
    if (node) node.addEventListener(event, handler);
  }
  var hvBox = document.getElementById("head-view");
  var hvThreshold = document.getElementById("hv-threshold") || document.createElement("select");
  [0.01, 0.02, 0.05, 0.1, 0.2, 0.5].forEach(function (v) { option(hvThreshold, v, String(v)); });
  // every row sums to 1, so at most 1/threshold lines leave a token: long inputs stay drawable
  hvThreshold.value = n <= 64 ? "0.01" : n <= 192 ? "0.02" : "0.05";
  var hvFocus = null;

  function svgNode(name, attrs) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    return node;
  }

  function shortToken(t) {
    var chars = Array.from(t);
    return chars.length > HV.maxChars ? chars.slice(0, HV.maxChars - 1).join("") + "…" : t;
  }

  function cssVar(style, name, fallback) {
    return style.getPropertyValue(name).trim() || fallback;
  }

  function drawHeadView(z, layer, head) {
    if (!hvBox) return;
    var style = getComputedStyle(document.body);
    var paper = printing.matches;
    var fg = paper ? "#000000" : style.color;
    var bg = paper ? "#ffffff" : cssVar(style, "--panel", "#ffffff");
    var muted = paper ? "#333333" : cssVar(style, "--muted", "#5b6475");
    var ink = paper ? "#0072b2" : cssVar(style, "--accent", "#0072b2");
    var fontFamily = style.fontFamily || "sans-serif";
    var threshold = parseFloat(hvThreshold.value);
    var shown = data.tokens.map(shortToken);
    var measure = document.createElement("canvas").getContext("2d");
    measure.font = HV.font + "px " + fontFamily;
    var colW = measure.measureText("attending (query)").width;
    shown.forEach(function (t, i) {
      colW = Math.max(colW, measure.measureText(i + "  " + t).width);
    });
    colW = Math.ceil(Math.min(colW, 260)) + 12;
    var x1 = HV.pad + colW, x2 = x1 + HV.gap;
    var width = x2 + colW + HV.pad, height = HV.top + n * HV.row + HV.pad;
    function y(i) { return HV.top + i * HV.row + HV.row / 2; }
    var what = layer === "rollout" ? "rollout (all layers)"
      : "layer " + layer + ", " + (head === "mean" ? "mean of heads" : "head " + head);
    var svg = svgNode("svg", {
      width: width, height: height, viewBox: "0 0 " + width + " " + height,
      role: "img", "font-family": fontFamily, "font-size": HV.font
    });
    svg.setAttribute("aria-label", "Head view, " + what + ": lines from attending to attended tokens");
    svg.dataset.layer = String(layer);
    svg.dataset.head = String(head);
    svg.dataset.threshold = String(threshold);
    var title = svgNode("title", {});
    title.textContent = "Attention, " + what;
    svg.appendChild(title);
    svg.appendChild(svgNode("rect", {x: 0, y: 0, width: width, height: height, fill: bg}));
    var left = svgNode("text", {x: x1 - 8, y: 16, "text-anchor": "end", fill: muted});
    left.textContent = "attending (query)";
    var right = svgNode("text", {x: x2 + 8, y: 16, fill: muted});
    right.textContent = "attended (key)";
    svg.appendChild(left);
    svg.appendChild(right);
    // as the heatmap's colour scale, opacity runs to the strongest weight shown, so a diffuse
    // head (or a long input) is not all faint
    var strongest = peak(z);
    svg.dataset.peak = String(strongest);
    var lines = svgNode("g", {stroke: ink, "stroke-width": 2, "stroke-linecap": "round"});
    var count = 0;
    for (var r = 0; r < n; r++) {
      var group = svgNode("g", {"data-q": r}), best = 0;
      for (var b = 1; b < n; b++) if (z[r][b] > z[r][best]) best = b;
      for (var c = 0; c < n; c++) {
        var w = z[r][c];
        // every weight above the threshold, and each token's strongest, so none is left without a line
        if (!(w >= threshold) && !(c === best && w > 0)) continue;
        group.appendChild(svgNode("line", {
          x1: x1, y1: y(r), x2: x2, y2: y(c), "stroke-opacity": (w / strongest).toFixed(3), "data-k": c
        }));
        count++;
      }
      if (group.firstChild) lines.appendChild(group);
    }
    svg.appendChild(lines);
    ["q", "k"].forEach(function (side) {
      var column = svgNode("g", {fill: fg, "data-side": side});
      shown.forEach(function (t, i) {
        var text = svgNode("text", side === "q"
          ? {x: x1 - 8, y: y(i) + 4, "text-anchor": "end", "data-i": i}
          : {x: x2 + 8, y: y(i) + 4, "data-i": i});
        text.setAttributeNS("http://www.w3.org/XML/1998/namespace", "xml:space", "preserve");
        if (data.special[i]) text.setAttribute("fill", muted);
        text.textContent = t;
        var tip = svgNode("title", {});
        tip.textContent = i + ": " + data.tokens[i];
        text.appendChild(tip);
        column.appendChild(text);
      });
      svg.appendChild(column);
    });
    svg.dataset.lines = String(count);
    hvBox.textContent = "";
    hvBox.appendChild(svg);
    hvBox.dataset.layer = String(layer);
    hvBox.dataset.head = String(head);
    var note = document.getElementById("hv-note");
    if (note) note.textContent = count + " lines: weights ≥ " + threshold + ", and each token's strongest";
    if (hvFocus !== null) highlight(hvFocus.side, hvFocus.i);
  }

  // follow one token's lines: a query's to every key it reads, a key's from every query
  function highlight(side, i) {
    var svg = hvBox.querySelector("svg");
    if (!svg) return;
    clearHighlight(svg);
    if (side === null) return;
    hvFocus = {side: side, i: i};
    svg.classList.add("focus");
    var selector = side === "q" ? "g[data-q='" + i + "'] line" : "line[data-k='" + i + "']";
    svg.querySelectorAll(selector).forEach(function (line) { line.classList.add("on"); });
    var label = svg.querySelector("g[data-side='" + side + "'] text[data-i='" + i + "']");
    if (label) label.classList.add("on");
  }

  function clearHighlight(svg) {
    hvFocus = null;
    svg.classList.remove("focus");
    svg.querySelectorAll(".on").forEach(function (node) { node.classList.remove("on"); });
  }

  on("head-view", "mouseover", function (event) {
    var text = event.target.closest ? event.target.closest("text[data-i]") : null;
    if (!text) return;
    highlight(text.parentNode.getAttribute("data-side"), parseInt(text.getAttribute("data-i"), 10));
  });
  on("head-view", "mouseleave", function () { highlight(null); });
  on("head-view", "keydown", function (event) {
    var step = {ArrowDown: 1, ArrowUp: -1}[event.key];
    if (event.key === "Escape") { highlight(null); return; }
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      var side = event.key === "ArrowLeft" ? "q" : "k";
      highlight(side, hvFocus ? hvFocus.i : 0);
      event.preventDefault();
      return;
    }
    if (!step) return;
    var at = hvFocus ? Math.max(0, Math.min(n - 1, hvFocus.i + step)) : 0;
    highlight(hvFocus ? hvFocus.side : "q", at);
    var label = hvBox.querySelector("g[data-side='" + hvFocus.side + "'] text[data-i='" + at + "']");
    if (label && label.scrollIntoView) label.scrollIntoView({block: "nearest"});
    event.preventDefault();
  });
  on("hv-threshold", "change", draw);

  // Saving: the SVG as drawn (without the hover state), and a PNG rendered from it
  function figureName() {
    var svg = hvBox.querySelector("svg");
    return "head-view-" + (svg.dataset.layer === "rollout" ? "rollout"
      : "layer" + svg.dataset.layer + "-head" + svg.dataset.head);
  }

  function svgText() {
    var copy = hvBox.querySelector("svg").cloneNode(true);
    copy.removeAttribute("class");
    copy.querySelectorAll("[class]").forEach(function (node) { node.removeAttribute("class"); });
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(copy);
  }

  function save(url, filename) {
    var a = document.createElement("a");
    a.href = url;
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
  }

  function saveBlob(blob, filename) {
    var url = URL.createObjectURL(blob);
    save(url, filename);
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  function saveSvg(text, filename) {
    saveBlob(new Blob([text], {type: "image/svg+xml"}), filename);
  }

  // a PNG drawn from SVG text at twice its size (less for very tall figures: browsers cap canvases)
  function saveSvgAsPng(text, width, height, filename) {
    var scale = height * 2 <= 16000 ? 2 : Math.max(0.25, 16000 / height);
    var image = new Image();
    image.onload = function () {
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(width * scale);
      canvas.height = Math.round(height * scale);
      var ctx = canvas.getContext("2d");
      ctx.scale(scale, scale);
      ctx.drawImage(image, 0, 0, width, height);
      canvas.toBlob(function (blob) { saveBlob(blob, filename); }, "image/png");
    };
    image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(text);
  }

  on("hv-svg", "click", function () {
    if (!hvBox || !hvBox.querySelector("svg")) return;
    saveSvg(svgText(), figureName() + ".svg");
  });

  on("hv-png", "click", function () {
    var svg = hvBox && hvBox.querySelector("svg");
    if (!svg) return;
    saveSvgAsPng(svgText(), +svg.getAttribute("width"), +svg.getAttribute("height"), figureName() + ".png");
  });


  function draw() {
    if (attention === null) return;  // still inflating
    var layer = layerSelect.value === "rollout" ? "rollout" : parseInt(layerSelect.value, 10);
    var head = headSelect.value === "mean" ? "mean" : parseInt(headSelect.value, 10);
    headSelect.disabled = layer === "rollout";
    var z = matrix(layer, head);
    drawHeadView(z, layer, head);
    var hover = z.map(function (row, r) {
      return row.map(function (v, c) { return data.tokens[r] + " → " + data.tokens[c]; });
    });
    var style = getComputedStyle(document.body);
    var trace = {
      type: "heatmap", z: z, x: ticks, y: ticks, text: hover, zmin: 0, zmax: peak(z),
      colorscale: "Viridis", hovertemplate: "%{text}<br>weight %{z:.3f}<extra></extra>"
    };
    var layout = {
      margin: {l: 110, r: 10, t: 10, b: 110},
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: {color: printing.matches ? "#000" : style.color},
      xaxis: {tickvals: tickvals, ticktext: ticktext, tickangle: -60, side: "bottom"},
      yaxis: {tickvals: tickvals, ticktext: ticktext, autorange: "reversed"},
      height: Math.max(360, Math.min(900, 18 * n + 140))
    };
    var el = document.getElementById("heatmap");
    el.dataset.layer = String(layer);
    el.dataset.head = String(head);
    var name = "attention-" + (layer === "rollout" ? "rollout" : "layer" + layer + "-head" + head);
    Plotly.react(el, [trace], layout, {
      displaylogo: false, responsive: true,
      toImageButtonOptions: {format: "png", scale: 2, filename: name},
      modeBarButtonsToAdd: [{
        name: "Download as SVG", icon: Plotly.Icons.disk,
        click: function (gd) { Plotly.downloadImage(gd, {format: "svg", filename: name}); }
      }]
    });
  }

  // Token views: signed values (attributions) on a diverging orange/blue scale centred on 0,
  // unsigned ones (rollout, flow) on a single-hue scale; special tokens are not scored.
  var viewSelect = document.getElementById("view");
  var order = ["shapley", "occlusion", "flow", "rollout"];
  var names = Object.keys(data.views).sort(function (a, b) { return order.indexOf(a) - order.indexOf(b); });
  names.forEach(function (name) { option(viewSelect, name, name); });

  function drawTokens() {
    var name = viewSelect.value;
    var values = data.views[name];
    var box = document.getElementById("tokens");
    box.textContent = "";
    var max = 0, signed = false, unsure = 0;
    values.forEach(function (v, i) {
      if (data.special[i]) return;
      if (v < 0) signed = true;
      if (Math.abs(v) > max) max = Math.abs(v);
    });
    data.tokens.forEach(function (t, i) {
      var span = document.createElement("span");
      span.className = "token" + (data.special[i] ? " special" : "");
      span.textContent = t;
      var v = values[i];
      if (!data.special[i]) {
        var share = max > 0 ? Math.min(1, Math.abs(v) / max) : 0;
        span.style.setProperty("--w", share.toFixed(3));
        span.classList.add(v < 0 ? "neg" : "pos");
        span.dataset.value = String(v);
      }
      var err = data.errors[name];
      var title = name + " " + v.toPrecision(4);
      if (err && !data.special[i] && err[i] !== null) {
        title += " ± " + err[i].toPrecision(2) + " (standard error)";
        // an estimate whose 95% interval holds 0 has no established sign: a dotted outline says so
        if (Math.abs(v) < 1.96 * err[i]) {
          span.classList.add("unsure");
          title += "; within 1.96 standard errors of 0";
          unsure += 1;
        }
      }
      span.title = title;
      box.appendChild(span);
    });
    document.getElementById("view-note").textContent = data.view_notes[name] || "";
    var legend = document.getElementById("legend");
    legend.textContent = signed || name === "shapley" || name === "occlusion"
      ? "blue, dashed outline: against the prediction · orange, solid outline: for it · strongest ±" + max.toPrecision(3)
      : "darker: more · strongest " + max.toPrecision(3);
    if (unsure) legend.textContent += " · dotted outline: " + unsure + " within 1.96 standard errors of 0 (sign not established)";
    box.dataset.view = name;
  }

  // The token view as a figure: each token's box, shade and outline as the page draws it, with
  // the view's name and scale under it, as SVG (text stays text) or as a PNG rendered from it
  function tokensSvg() {
    var box = document.getElementById("tokens"), origin = box.getBoundingClientRect();
    var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
    var width = Math.ceil(origin.width), bottom = 0;
    function node(tag, attrs, text) {
      var e = document.createElementNS(ns, tag);
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
      if (text !== undefined) e.textContent = text;
      svg.appendChild(e);
      return e;
    }
    var page = getComputedStyle(document.body);
    node("rect", {x: 0, y: 0, width: "100%", height: "100%", fill: page.backgroundColor});
    box.querySelectorAll(".token").forEach(function (span) {
      var r = span.getBoundingClientRect(), cs = getComputedStyle(span);
      var x = r.left - origin.left, y = r.top - origin.top;
      node("rect", {x: x.toFixed(1), y: y.toFixed(1), width: r.width.toFixed(1), height: r.height.toFixed(1),
        rx: 4, fill: cs.backgroundColor, stroke: cs.borderTopColor,
        "stroke-width": parseFloat(cs.borderTopWidth) || 0,
        "stroke-dasharray": cs.borderTopStyle === "dashed" ? "3 2" : cs.borderTopStyle === "dotted" ? "1 2" : "none"});
      node("text", {x: (x + r.width / 2).toFixed(1), y: (y + r.height / 2).toFixed(1), "text-anchor": "middle",
        "dominant-baseline": "central", fill: cs.color, "font-family": cs.fontFamily, "font-size": cs.fontSize,
        "xml:space": "preserve"}, span.textContent);
      bottom = Math.max(bottom, y + r.height);
    });
    var caption = viewSelect.value + ": " + document.getElementById("legend").textContent;
    node("text", {x: 0, y: (bottom + 18).toFixed(1), fill: page.color, "font-family": page.fontFamily,
      "font-size": "12px"}, caption);
    var height = Math.ceil(bottom + 28);
    svg.setAttribute("xmlns", ns);
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    return {text: '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(svg),
      width: width, height: height, name: "tokens-" + viewSelect.value};
  }

  on("tok-svg", "click", function () {
    var fig = tokensSvg();
    saveSvg(fig.text, fig.name + ".svg");
  });

  on("tok-png", "click", function () {
    var fig = tokensSvg();
    saveSvgAsPng(fig.text, fig.width, fig.height, fig.name + ".png");
  });

  function choose() {
    var hash = "#layer=" + layerSelect.value + "&head=" + headSelect.value;
    if (location.hash !== hash && window.history && history.replaceState) {
      try { history.replaceState(null, "", hash); } catch (e) { /* some file:// browsers refuse */ }
    }
    draw();
  }

  viewSelect.addEventListener("change", drawTokens);
  layerSelect.addEventListener("change", choose);
  headSelect.addEventListener("change", choose);
  window.addEventListener("hashchange", function () { readHash(); draw(); });
  // figures take their colours from the theme when drawn: redraw them for paper and back
  if (printing.addEventListener) printing.addEventListener("change", draw);
  drawTokens();
  // Model view: one small canvas per layer and head, each row scaled to its own maximum so
  // the pattern shows however diffuse the head is; a click opens that head in the heatmap.
  function drawModelView() {
    var box = document.getElementById("model-view");
    var colour = getComputedStyle(document.body).getPropertyValue("--neg").trim() || "#0072b2";
    var probe = document.createElement("canvas").getContext("2d");
    probe.fillStyle = colour;
    var rgb = probe.fillStyle.match(/[0-9a-f]{2}/gi) || ["00", "72", "b2"];
    var cr = parseInt(rgb[0], 16), cg = parseInt(rgb[1], 16), cb = parseInt(rgb[2], 16);
    for (var l = 0; l < L; l++) {
      for (var h = 0; h < H; h++) {
        var canvas = document.createElement("canvas");
        canvas.width = n;
        canvas.height = n;
        canvas.className = "thumb";
        canvas.title = "layer " + l + ", head " + h;
        canvas.dataset.layer = String(l);
        canvas.dataset.head = String(h);
        var ctx = canvas.getContext("2d");
        var image = ctx.createImageData(n, n);
        for (var r = 0; r < n; r++) {
          var base = ((l * H + h) * n + r) * n, peak = 0, c;
          for (c = 0; c < n; c++) if (attention[base + c] > peak) peak = attention[base + c];
          for (c = 0; c < n; c++) {
            var a = peak > 0 ? attention[base + c] / peak : 0, k = (r * n + c) * 4;
            image.data[k] = cr; image.data[k + 1] = cg; image.data[k + 2] = cb;
            image.data[k + 3] = Math.round(255 * a);
          }
        }
        ctx.putImageData(image, 0, 0);
        canvas.addEventListener("click", function (event) {
          layerSelect.value = event.currentTarget.dataset.layer;
          headSelect.value = event.currentTarget.dataset.head;
          choose();
          document.getElementById("heatmap").scrollIntoView({behavior: "smooth", block: "center"});
        });
        box.appendChild(canvas);
      }
    }
  }

  // Saving the model view: every thumbnail on one grid, layers down and heads across, labelled;
  // the PNG is drawn from the thumbnails, the SVG holds each as an image with crisp pixels
  function modelViewGrid() {
    var thumbs = Array.prototype.slice.call(document.querySelectorAll("#model-view canvas.thumb"));
    var style = getComputedStyle(document.body);
    var cell = Math.max(48, Math.min(128, n)), gap = 4, left = 34, top = 20;
    return {
      thumbs: thumbs, cell: cell, gap: gap, left: left, top: top,
      width: left + H * (cell + gap), height: top + L * (cell + gap),
      fg: printing.matches ? "#000000" : style.color,
      bg: printing.matches ? "#ffffff" : cssVar(style, "--panel", "#ffffff"),
      font: style.fontFamily || "sans-serif",
      x: function (h) { return left + h * (cell + gap); },
      y: function (l) { return top + l * (cell + gap); }
    };
  }

  on("mv-png", "click", function () {
    var g = modelViewGrid();
    if (!g.thumbs.length) return;
    var canvas = document.createElement("canvas");
    canvas.width = g.width * 2;
    canvas.height = g.height * 2;
    var ctx = canvas.getContext("2d");
    ctx.scale(2, 2);
    ctx.fillStyle = g.bg;
    ctx.fillRect(0, 0, g.width, g.height);
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = g.fg;
    ctx.font = "11px " + g.font;
    ctx.textAlign = "center";
    for (var h = 0; h < H; h++) ctx.fillText("H" + h, g.x(h) + g.cell / 2, 13);
    ctx.textAlign = "right";
    for (var l = 0; l < L; l++) ctx.fillText("L" + l, g.left - 6, g.y(l) + g.cell / 2 + 4);
    g.thumbs.forEach(function (thumb) {
      var x = g.x(+thumb.dataset.head), y = g.y(+thumb.dataset.layer);
      ctx.drawImage(thumb, x, y, g.cell, g.cell);
      ctx.strokeStyle = g.fg;
      ctx.globalAlpha = 0.25;
      ctx.strokeRect(x + 0.5, y + 0.5, g.cell - 1, g.cell - 1);
      ctx.globalAlpha = 1;
    });
    canvas.toBlob(function (blob) { saveBlob(blob, "model-view.png"); }, "image/png");
  });

  on("mv-svg", "click", function () {
    var g = modelViewGrid();
    if (!g.thumbs.length) return;
    var svg = svgNode("svg", {
      width: g.width, height: g.height, viewBox: "0 0 " + g.width + " " + g.height,
      "font-family": g.font, "font-size": 11, fill: g.fg
    });
    var title = svgNode("title", {});
    title.textContent = "Attention of every layer and head";
    svg.appendChild(title);
    svg.appendChild(svgNode("rect", {x: 0, y: 0, width: g.width, height: g.height, fill: g.bg}));
    for (var h = 0; h < H; h++) {
      var ht = svgNode("text", {x: g.x(h) + g.cell / 2, y: 13, "text-anchor": "middle"});
      ht.textContent = "H" + h;
      svg.appendChild(ht);
    }
    for (var l = 0; l < L; l++) {
      var lt = svgNode("text", {x: g.left - 6, y: g.y(l) + g.cell / 2 + 4, "text-anchor": "end"});
      lt.textContent = "L" + l;
      svg.appendChild(lt);
    }
    g.thumbs.forEach(function (thumb) {
      var x = g.x(+thumb.dataset.head), y = g.y(+thumb.dataset.layer);
      var image = svgNode("image", {
        x: x, y: y, width: g.cell, height: g.cell, preserveAspectRatio: "none",
        style: "image-rendering: pixelated", "data-layer": thumb.dataset.layer, "data-head": thumb.dataset.head
      });
      image.setAttribute("href", thumb.toDataURL("image/png"));
      svg.appendChild(image);
      svg.appendChild(svgNode("rect", {
        x: x + 0.5, y: y + 0.5, width: g.cell - 1, height: g.cell - 1, fill: "none",
        stroke: g.fg, "stroke-opacity": 0.25
      }));
    });
    var text = '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(svg);
    saveSvg(text, "model-view.svg");
  });

  Promise.all([inflate(data.attention), inflate(data.rollout_matrix)]).then(function (arrays) {
    attention = arrays[0];
    rolloutMatrix = arrays[1];
    draw();
    drawModelView();
  });
})();
