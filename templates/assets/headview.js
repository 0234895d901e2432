// Head view (after BertViz) of the heatmap's layer and head: its threshold, hover and keys, and
// its saved SVG and PNG. Drawn as SVG with its colours as attributes, so the saved files look like the page.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};
  var HV = {row: 20, pad: 10, gap: 240, top: 28, font: 13, maxChars: 28};
  // beyond this many tokens a side is drawn a range at a time: thousands of rows are neither
  // drawable nor readable at once
  var RANGE = 256;

  function shortToken(t) {
    var chars = Array.from(t);
    return chars.length > HV.maxChars ? chars.slice(0, HV.maxChars - 1).join("") + "…" : t;
  }

  // box: the figure's container (absent: nothing is drawn); data: the page's data. Queries on the
  // left and keys on the right (both data.tokens on an example page; data.queries and data.keys,
  // with data.query_special and data.key_special, on a generation page), a line for every weight at
  // or above the threshold, as opaque as the weight; tokens are text nodes.
  function create(box, data) {
    if (!box) return {draw: function () {}};
    var fig = ns.figure, save = ns.save, node = save.svgNode;
    var sides = {
      q: {tokens: data.queries || data.tokens, special: data.query_special || data.special},
      k: {tokens: data.keys || data.tokens, special: data.key_special || data.special}
    };
    var nq = sides.q.tokens.length, nk = sides.k.tokens.length, n = Math.max(nq, nk);
    var threshold = document.getElementById("hv-threshold") || document.createElement("select");
    [0.01, 0.02, 0.05, 0.1, 0.2, 0.5].forEach(function (v) { fig.option(threshold, v, String(v)); });
    // every row sums to 1, so at most 1/threshold lines leave a token: long inputs stay drawable
    threshold.value = n <= 64 ? "0.01" : n <= 192 ? "0.02" : "0.05";
    var focus = null, last = null;
    // the range of tokens drawn, [from, from + RANGE) of each side longer than RANGE
    var range = document.getElementById("hv-range") || document.createElement("select");
    if (n > RANGE) {
      for (var from = 0; from < n; from += RANGE) {
        fig.option(range, from, "tokens " + from + "–" + (Math.min(n, from + RANGE) - 1) + " of " + n);
      }
      var label = document.getElementById("hv-range-label");
      if (label) label.hidden = false;
    }
    function span(count) {
      var from = n > RANGE ? parseInt(range.value || "0", 10) : 0;
      return count > RANGE ? [Math.min(from, count - 1), Math.min(count, from + RANGE)] : [0, count];
    }

    function draw(view) {
      last = view;
      var z = view.z, layer = view.layer, head = view.head;
      var c = fig.colours(), limit = parseFloat(threshold.value);
      var measure = document.createElement("canvas").getContext("2d");
      measure.font = HV.font + "px " + c.font;
      var colW = measure.measureText("attending (query)").width;
      var shown = {q: span(nq), k: span(nk)}, qa = shown.q[0], qb = shown.q[1], ka = shown.k[0], kb = shown.k[1];
      ["q", "k"].forEach(function (side) {
        sides[side].tokens.slice(shown[side][0], shown[side][1]).forEach(function (t, i) {
          colW = Math.max(colW, measure.measureText((i + shown[side][0]) + "  " + shortToken(t)).width);
        });
      });
      colW = Math.ceil(Math.min(colW, 260)) + 12;
      var x1 = HV.pad + colW, x2 = x1 + HV.gap;
      var rows = Math.max(qb - qa, kb - ka);
      var width = x2 + colW + HV.pad, height = HV.top + rows * HV.row + HV.pad;
      function yq(i) { return HV.top + (i - qa) * HV.row + HV.row / 2; }
      function yk(i) { return HV.top + (i - ka) * HV.row + HV.row / 2; }
      var what = layer === "rollout" ? "rollout (all layers)"
        : "layer " + layer + ", " + (head === "mean" ? "mean of heads" : "head " + head);
      var svg = node("svg", {
        width: width, height: height, viewBox: "0 0 " + width + " " + height,
        role: "img", "font-family": c.font, "font-size": HV.font
      });
      svg.setAttribute("aria-label", "Head view, " + what + ": lines from attending to attended tokens");
      svg.dataset.layer = String(layer);
      svg.dataset.head = String(head);
      svg.dataset.threshold = String(limit);
      svg.appendChild(node("title", {}, "Attention, " + what));
      svg.appendChild(node("rect", {x: 0, y: 0, width: width, height: height, fill: c.bg}));
      svg.appendChild(node("text", {x: x1 - 8, y: 16, "text-anchor": "end", fill: c.muted}, "attending (query)"));
      svg.appendChild(node("text", {x: x2 + 8, y: 16, fill: c.muted}, "attended (key)"));
      // as the heatmap's colour scale, opacity runs to the strongest weight shown, so a diffuse
      // head (or a long input) is not all faint
      svg.dataset.peak = String(view.peak);
      var lines = node("g", {stroke: c.accent, "stroke-width": 2, "stroke-linecap": "round"});
      var count = 0;
      for (var r = qa; r < qb; r++) {
        var group = node("g", {"data-q": r}), best = 0;
        for (var b = 1; b < nk; b++) if (z[r][b] > z[r][best]) best = b;
        for (var k = ka; k < kb; k++) {
          var w = z[r][k];
          // every weight above the threshold, and each token's strongest, so none is left without a line
          if (!(w >= limit) && !(k === best && w > 0)) continue;
          group.appendChild(node("line", {
            x1: x1, y1: yq(r), x2: x2, y2: yk(k), "stroke-opacity": (w / view.peak).toFixed(3), "data-k": k
          }));
          count++;
        }
        if (group.firstChild) lines.appendChild(group);
      }
      svg.appendChild(lines);
      ["q", "k"].forEach(function (side) {
        var column = node("g", {fill: c.fg, "data-side": side});
        sides[side].tokens.forEach(function (t, i) {
          if (i < shown[side][0] || i >= shown[side][1]) return;
          var text = node("text", side === "q"
            ? {x: x1 - 8, y: yq(i) + 4, "text-anchor": "end", "data-i": i, "xml:space": "preserve"}
            : {x: x2 + 8, y: yk(i) + 4, "data-i": i, "xml:space": "preserve"}, shortToken(t));
          if (sides[side].special && sides[side].special[i]) text.setAttribute("fill", c.muted);
          text.appendChild(node("title", {}, i + ": " + t));
          column.appendChild(text);
        });
        svg.appendChild(column);
      });
      svg.dataset.lines = String(count);
      box.textContent = "";
      box.appendChild(svg);
      box.dataset.layer = String(layer);
      box.dataset.head = String(head);
      var note = document.getElementById("hv-note");
      if (note) {
        note.textContent = count + " lines: weights ≥ " + limit + ", and each token's strongest"
          + (rows < n ? "; tokens " + Math.min(qa, ka) + "–" + (Math.max(qb, kb) - 1) + " of " + n
            + " (lines to tokens outside the range are not drawn)" : "");
      }
      svg.dataset.from = String(Math.min(qa, ka));
      if (focus !== null) highlight(focus.side, focus.i);
    }

    // follow one token's lines: a query's to every key it reads, a key's from every query
    function highlight(side, i) {
      var svg = box.querySelector("svg");
      if (!svg) return;
      clearHighlight(svg);
      if (side === null) return;
      focus = {side: side, i: i};
      svg.classList.add("focus");
      var selector = side === "q" ? "g[data-q='" + i + "'] line" : "line[data-k='" + i + "']";
      svg.querySelectorAll(selector).forEach(function (line) { line.classList.add("on"); });
      var label = svg.querySelector("g[data-side='" + side + "'] text[data-i='" + i + "']");
      if (label) label.classList.add("on");
    }

    function clearHighlight(svg) {
      focus = null;
      svg.classList.remove("focus");
      svg.querySelectorAll(".on").forEach(function (on) { on.classList.remove("on"); });
    }

    box.addEventListener("mouseover", function (event) {
      var text = event.target.closest ? event.target.closest("text[data-i]") : null;
      if (!text) return;
      highlight(text.parentNode.getAttribute("data-side"), parseInt(text.getAttribute("data-i"), 10));
    });
    box.addEventListener("mouseleave", function () { highlight(null); });
    box.addEventListener("keydown", function (event) {
      var step = {ArrowDown: 1, ArrowUp: -1}[event.key];
      if (event.key === "Escape") { highlight(null); return; }
      if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
        var side = event.key === "ArrowLeft" ? "q" : "k";
        highlight(side, focus ? Math.min(focus.i, sides[side].tokens.length - 1) : 0);
        event.preventDefault();
        return;
      }
      if (!step) return;
      var count = (focus ? sides[focus.side] : sides.q).tokens.length;
      var at = focus ? Math.max(0, Math.min(count - 1, focus.i + step)) : 0;
      highlight(focus ? focus.side : "q", at);
      var label = box.querySelector("g[data-side='" + focus.side + "'] text[data-i='" + at + "']");
      if (label && label.scrollIntoView) label.scrollIntoView({block: "nearest"});
      event.preventDefault();
    });
    threshold.addEventListener("change", function () { if (last) draw(last); });
    range.addEventListener("change", function () { focus = null; if (last) draw(last); });

    // saving: the SVG as drawn (without the hover state), and a PNG rendered from it
    function saved(ext) {
      var svg = box.querySelector("svg");
      if (!svg) return;
      var name = save.figureName("head-view", last) + "." + ext;
      if (ext === "svg") save.saveSvg(svg, name); else save.saveSvgAsPng(svg, name);
    }
    fig.on("hv-svg", "click", function () { saved("svg"); });
    fig.on("hv-png", "click", function () { saved("png"); });

    return {draw: draw, highlight: highlight};
  }

  ns.headview = {create: create};
})();
