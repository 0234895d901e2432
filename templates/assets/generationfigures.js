// The generation page's figures, drawn from the page's data for the chosen step (generation.js owns
// the controls, the token strip and the chosen token): attention by segment, the alternatives, and
// as SVG the step scores, the logit lens and the attribution matrix; each SVG builder also takes
// choose(t), called when a token's bar, cell or row is clicked.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};
  var fig = ns.figure, svgNode = ns.save.svgNode;

  function pct(x) { return x === null ? "–" : (100 * x).toFixed(1) + "%"; }

  // one method's values of what is explained ("token", "contrast", "answer", "asked:<i>") at step t:
  // {values: [units], stderr: [units] or null}
  function unitValues(attribution, method, kind, t) {
    var m = attribution.methods[method];
    if (kind.indexOf("asked:") === 0) return {values: m.asked[+kind.slice(6)], stderr: null};
    if (kind === "answer") return {values: m.answer, stderr: m.answer_stderr};
    if (kind === "contrast") return {values: m.contrasts[t], stderr: null};
    return {values: m.values[t], stderr: m.stderr ? m.stderr[t] : null};
  }

  // -- attention by segment, per layer, for the chosen step ---------------------------------------
  // box: the figure's container (absent: nothing is drawn)
  function segments(box, data, step) {
    if (!box) return;
    var L = data.layers, names = data.segments.names, shares = data.segments.shares[step];
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

  // -- what it nearly wrote: the chosen step's top tokens, as a table's rows (body), its title named
  function alternatives(body, title, data, step) {
    if (!body) return;
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

  // -- step scores: probability bars, entropy dots -------------------------------------------------
  var CELL = 30, CHART = 140, LABELS = 70;
  // data: the page's data; step: the chosen token, outlined; choose(t): a click on token t
  function stepsSvg(data, step, choose) {
    var T = data.steps, c = fig.colours(), width = Math.max(320, 48 + T * CELL), height = CHART + LABELS + 30;
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
      if (s !== undefined) choose(+s);
    });
    return svg;
  }

  function short(text) {
    text = String(text).replace(/\n/g, "⏎");
    return text.length > 10 ? text.slice(0, 9) + "…" : text;
  }

  // -- logit lens: layers (final at the top) x steps, each cell the layer's top token ------------
  var LENS_W = 64, LENS_H = 22;
  function lensSvg(data, step, choose) {
    var T = data.steps, lens = data.lens, c = fig.colours(), rows = data.layers + 1;
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
      if (s !== undefined) choose(+s);
    });
    return svg;
  }

  // -- the attribution matrix: answer tokens (rows) x prompt units (columns), like inseq's ----------
  var MX_W = 44, MX_H = 20;
  // method: the attribution method shown; kind: "token" or "contrast" (each row's own value)
  function matrixSvg(data, step, method, kind, choose) {
    var T = data.steps, attribution = data.attribution, c = fig.colours();
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
      var y = top + t * MX_H, got = unitValues(attribution, method, kind, t);
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
      if (st !== undefined) choose(+st);
    });
    return svg;
  }
  ns.generationFigures = {segments: segments, alternatives: alternatives, steps: stepsSvg, lens: lensSvg, matrix: matrixSvg, unitValues: unitValues, pct: pct};
})();
