// Token view: one view's value on every token (attribution, rollout, flow) as shaded boxes, its
// legend and note, and the view saved as SVG or PNG with each box as the page draws it.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};

  // box: the figure's container (absent: nothing is drawn); data: the page's data. Signed values
  // (attributions) on a diverging orange/blue scale centred on 0, unsigned ones (rollout, flow)
  // on a single-hue scale; special tokens are not scored.
  function create(box, data) {
    if (!box) return {draw: function () {}};
    var save = ns.save, legend = document.getElementById("legend"), shown = null, caption = "";

    function draw(name) {
      var values = data.views[name];
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
      var note = document.getElementById("view-note");
      if (note) note.textContent = data.view_notes[name] || "";
      caption = signed || name === "shapley" || name === "occlusion"
        ? "blue, dashed outline: against the prediction · orange, solid outline: for it · strongest ±" + max.toPrecision(3)
        : "darker: more · strongest " + max.toPrecision(3);
      if (unsure) caption += " · dotted outline: " + unsure + " within 1.96 standard errors of 0 (sign not established)";
      if (legend) legend.textContent = caption;
      box.dataset.view = name;
      shown = name;
    }

    // the view as a figure: each token's box, shade and outline as the page draws it, with the
    // view's name and scale under it (text stays text)
    function figure() {
      var origin = box.getBoundingClientRect(), width = Math.ceil(origin.width), bottom = 0;
      var svg = save.svgNode("svg", {});
      function add(tag, attrs, text) { svg.appendChild(save.svgNode(tag, attrs, text)); }
      var page = getComputedStyle(document.body);
      add("rect", {x: 0, y: 0, width: "100%", height: "100%", fill: page.backgroundColor});
      box.querySelectorAll(".token").forEach(function (span) {
        var r = span.getBoundingClientRect(), cs = getComputedStyle(span);
        var x = r.left - origin.left, y = r.top - origin.top;
        add("rect", {x: x.toFixed(1), y: y.toFixed(1), width: r.width.toFixed(1), height: r.height.toFixed(1),
          rx: 4, fill: cs.backgroundColor, stroke: cs.borderTopColor,
          "stroke-width": parseFloat(cs.borderTopWidth) || 0,
          "stroke-dasharray": cs.borderTopStyle === "dashed" ? "3 2" : cs.borderTopStyle === "dotted" ? "1 2" : "none"});
        add("text", {x: (x + r.width / 2).toFixed(1), y: (y + r.height / 2).toFixed(1), "text-anchor": "middle",
          "dominant-baseline": "central", fill: cs.color, "font-family": cs.fontFamily, "font-size": cs.fontSize,
          "xml:space": "preserve"}, span.textContent);
        bottom = Math.max(bottom, y + r.height);
      });
      add("text", {x: 0, y: (bottom + 18).toFixed(1), fill: page.color, "font-family": page.fontFamily,
        "font-size": "12px"}, shown + ": " + caption);
      var height = Math.ceil(bottom + 28);
      svg.setAttribute("width", width);
      svg.setAttribute("height", height);
      svg.setAttribute("viewBox", "0 0 " + width + " " + height);
      return svg;
    }

    ns.figure.on("tok-svg", "click", function () {
      if (shown !== null) save.saveSvg(figure(), save.figureName("tokens", shown) + ".svg");
    });
    ns.figure.on("tok-png", "click", function () {
      if (shown !== null) save.saveSvgAsPng(figure(), save.figureName("tokens", shown) + ".png");
    });

    return {draw: draw};
  }

  ns.tokenview = {create: create};
})();
