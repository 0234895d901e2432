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
  // head pages link here with #layer=L&head=H
  var wanted = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    var parts = kv.split("=");
    if (parts.length === 2) wanted[parts[0]] = parts[1];
  });
  if (/^\d+$/.test(wanted.layer || "") && +wanted.layer < L) layerSelect.value = wanted.layer;
  if (/^\d+$/.test(wanted.head || "") && +wanted.head < H) headSelect.value = wanted.head;

  var labels = data.tokens.map(function (t, i) { return i + " " + t; });
  var ticks = data.tokens.map(function (_, i) { return i; });

  // the colour scale runs to the largest weight shown, so a diffuse head is not all dark
  function peak(z) {
    var m = 0;
    z.forEach(function (row) { row.forEach(function (v) { if (v > m) m = v; }); });
    return m > 0 ? m : 1;
  }

  function draw() {
    if (attention === null) return;  // still inflating
    var layer = layerSelect.value === "rollout" ? "rollout" : parseInt(layerSelect.value, 10);
    var head = headSelect.value === "mean" ? "mean" : parseInt(headSelect.value, 10);
    headSelect.disabled = layer === "rollout";
    var z = matrix(layer, head);
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
      font: {color: style.color},
      xaxis: {tickvals: ticks, ticktext: labels, tickangle: -60, side: "bottom"},
      yaxis: {tickvals: ticks, ticktext: labels, autorange: "reversed"},
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
    var max = 0, signed = false;
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
      span.title = name + " " + v.toPrecision(4) + (err && !data.special[i] ? " ± " + err[i].toPrecision(2) + " (standard error)" : "");
      box.appendChild(span);
    });
    document.getElementById("view-note").textContent = data.view_notes[name] || "";
    var legend = document.getElementById("legend");
    legend.textContent = signed || name === "shapley" || name === "occlusion"
      ? "blue: against the prediction · orange: for it · strongest ±" + max.toPrecision(3)
      : "darker: more · strongest " + max.toPrecision(3);
    box.dataset.view = name;
  }

  viewSelect.addEventListener("change", drawTokens);
  layerSelect.addEventListener("change", draw);
  headSelect.addEventListener("change", draw);
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
          draw();
          document.getElementById("heatmap").scrollIntoView({behavior: "smooth", block: "center"});
        });
        box.appendChild(canvas);
      }
    }
  }

  Promise.all([inflate(data.attention), inflate(data.rollout_matrix)]).then(function (arrays) {
    attention = arrays[0];
    rolloutMatrix = arrays[1];
    draw();
    drawModelView();
  });
})();
