// Token view: one view's value on every token (attribution, rollout, flow) as shaded boxes, its
// legend and note, and the view saved as SVG or PNG with each box as the page draws it.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};

  // box: the figure's container (absent: nothing is drawn); data: the page's data. Signed values
  // (attributions) on a diverging orange/blue scale centred on 0, unsigned ones (rollout, flow)
  // on a single-hue scale; special tokens are not scored. An attribution is coloured on its fixed
  // scale (data.scales: full colour at that effect, in the output's units, the same on every page),
  // effects below its negligible threshold neutral; rollout and flow relative to their peak.
  // Tokens the tokenizer could not read (data.unknown) show their characters, marked. A view over larger units (words,
  // sentences, lines: data.view_unit) shades the text itself, one span per unit at its character
  // span (data.units), the text between units left as it is.
  // a number as a legend states it: three significant digits, tiny ones as 2.53e-6
  function num(x) {
    return x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential(2) : String(Number(x.toPrecision(3)));
  }

  // ids: the elements of the legend, the note and the save buttons (default: an example page's;
  // a page with two token views names its own, null for none)
  function create(box, data, ids) {
    if (!box) return {draw: function () {}};
    ids = ids || {};
    function element(key, fallback) { return document.getElementById(key in ids ? ids[key] : fallback); }
    var save = ns.save, legend = element("legend", "legend"), shown = null, caption = "";
    // the switch to shade an attribution by this text's own strongest effect instead of the fixed
    // scale (absent: always the fixed scale), and the line that says that strongest effect
    var ownScale = element("own_scale", "own-scale"), strongestLine = element("strongest", "strongest");
    if (ownScale) ownScale.addEventListener("change", function () { if (shown !== null) draw(shown); });

    function unitOf(name) { return (data.view_unit && data.view_unit[name]) || "token"; }

    // the pieces a view shades: [text, scored] per token, or per unit with the text between as
    // unscored pieces (null)
    function pieces(name) {
      if (unitOf(name) === "token") {
        return data.tokens.map(function (t, i) { return {text: t, index: i, special: data.special[i]}; });
      }
      var out = [], at = 0, text = data.text;
      data.units.forEach(function (span, u) {
        if (span[0] > at) out.push({text: text.slice(at, span[0]), index: null});
        out.push({text: text.slice(span[0], span[1]), index: u, special: false});
        at = Math.max(at, span[1]);
      });
      if (at < text.length) out.push({text: text.slice(at), index: null});
      return out;
    }

    function draw(name) {
      var values = data.views[name], unit = unitOf(name), parts = pieces(name);
      box.textContent = "";
      box.classList.toggle("units", unit !== "token");
      box.dataset.unit = unit;
      var max = 0, signed = false, unsure = 0, neutral = 0, beyond = 0;
      var fixed = (data.scales || {})[name] || null, unknown = {};
      (data.unknown || []).forEach(function (i) { unknown[i] = true; });
      parts.forEach(function (part) {
        if (part.index === null || part.special) return;
        var v = values[part.index];
        if (v < 0) signed = true;
        if (Math.abs(v) > max) max = Math.abs(v);
      });
      parts.forEach(function (part) {
        if (part.index === null) {  // the text between units, as text
          box.appendChild(document.createTextNode(part.text));
          return;
        }
        var i = part.index, special = part.special;
        var span = document.createElement("span");
        span.className = "token" + (special ? " special" : "") + (unit !== "token" ? " unit" : "");
        span.textContent = part.text;
        var v = values[i];
        var own = fixed && ownScale && ownScale.checked && max > 0;
        var scale = fixed && !own ? fixed.scale : max;
        if (!special) {
          var share = scale > 0 ? Math.min(1, Math.abs(v) / scale) : 0;
          if (fixed && Math.abs(v) < fixed.negligible) {
            share = 0;
            span.classList.add("neutral");
            neutral += 1;
          } else {
            span.classList.add(v < 0 ? "neg" : "pos");
            if (fixed && !own && Math.abs(v) > fixed.scale) beyond += 1;
          }
          span.style.setProperty("--w", share.toFixed(3));
          span.dataset.value = String(v);
        }
        var err = data.errors[name];
        var title = (unit !== "token" ? unit + " " + (i + 1) + ", " : "") + name + " " + v.toPrecision(4);
        if (!special && fixed && Math.abs(v) < fixed.negligible) title += " (too small to matter)";
        if (unit === "token" && unknown[i]) {
          span.classList.add("unk");
          title = "unknown to the model: the tokenizer could not read these characters, the model saw [UNK]; " + title;
        }
        if (err && !special && err[i] !== null) {
          title += " ± " + err[i].toPrecision(2) + " (standard error)";
          // an estimate whose 95% interval holds 0 has no established sign: a dotted outline says so
          if (Math.abs(v) < 1.96 * err[i]) {
            span.classList.add("unsure");
            title += "; sign not established (within 1.96 standard errors of 0)";
            unsure += 1;
          }
        }
        span.title = title;
        box.appendChild(span);
      });
      var note = element("note", "view-note");
      if (note) note.textContent = data.view_notes[name] || "";
      var own = fixed && ownScale && ownScale.checked && max > 0;
      if (own) {
        caption = "blue, dashed outline: against the prediction · orange, solid outline: for it · colour scale ±" +
          num(max) + " (" + fixed.output + "; this text's strongest effect in full colour, not the fixed ±" +
          num(fixed.scale) + ") · grey: effects below " + num(fixed.negligible) + ", too small to matter" +
          (neutral ? " (" + neutral + ")" : "");
      } else if (fixed) {
        caption = "blue, dashed outline: against the prediction · orange, solid outline: for it · colour scale ±" +
          num(fixed.scale) + " (" + fixed.output + "; full colour at that effect or more" +
          (beyond ? ", " + beyond + " beyond it" : "") + ") · grey: effects below " + num(fixed.negligible) +
          ", too small to matter" + (neutral ? " (" + neutral + ")" : "") + " · strongest ±" + num(max);
      } else {
        caption = signed
          ? "blue, dashed outline: against the prediction · orange, solid outline: for it · strongest ±" + max.toPrecision(3)
          : "darker: more, relative to this text's strongest, " + max.toPrecision(3);
      }
      var unknownCount = unit === "token" ? Object.keys(unknown).length : 0;
      if (unknownCount) caption += " · red underline: " + unknownCount + " unknown to the model";
      if (unit !== "token") caption = "one value per " + unit + " (" + data.units.length + " " + unit + "s) · " + caption;
      if (unsure) caption += " · dotted outline: " + unsure + " whose direction is not established (within 1.96 standard errors of 0)";
      if (legend) legend.textContent = caption;
      if (ownScale) ownScale.disabled = !fixed || max === 0;
      if (strongestLine) {
        strongestLine.hidden = !fixed;
        var says = strongestLine.querySelector("[data-strongest]");
        if (says && fixed) {
          says.textContent = "The strongest effect on this text is ±" + num(max) + " (" + fixed.output +
            "), " + (max < fixed.scale ? (100 * max < fixed.scale ? "under 1" : Math.round(100 * max / fixed.scale)) + "% of the fixed colour scale's ±" +
            num(fixed.scale) + ", the same on every page" : "at or beyond the fixed colour scale's ±" + num(fixed.scale)) + ".";
        }
      }
      box.dataset.view = name;
      box.dataset.scale = own ? "own" : fixed ? "fixed" : "relative";
      shown = name;
    }

    // a unit's box in the figure: units of running text wrap across lines, so a unit view's
    // figure lays them out one per row, its text cut to the row, instead of where the page has them
    var ROW = 22;
    function place(span, k, origin, width) {
      if (box.dataset.unit === "token") {
        var r = span.getBoundingClientRect();
        return {x: r.left - origin.left, y: r.top - origin.top, width: r.width, height: r.height,
          text: span.textContent};
      }
      var chars = Math.max(8, Math.floor(width / 7.5)), text = span.textContent.replace(/\s+/g, " ");
      if (text.length > chars) text = text.slice(0, chars - 1) + "\u2026";
      return {x: 0, y: k * ROW, width: width, height: ROW - 4, text: text};
    }

    // the view as a figure: each token's box, shade and outline as the page draws it, with the
    // view's name and scale under it (text stays text)
    function figure() {
      var origin = box.getBoundingClientRect(), width = Math.ceil(origin.width), bottom = 0;
      var svg = save.svgNode("svg", {});
      function add(tag, attrs, text) { svg.appendChild(save.svgNode(tag, attrs, text)); }
      var page = getComputedStyle(document.body);
      add("rect", {x: 0, y: 0, width: "100%", height: "100%", fill: page.backgroundColor});
      box.querySelectorAll(".token").forEach(function (span, k) {
        var r = place(span, k, origin, width), cs = getComputedStyle(span);
        var x = r.x, y = r.y;
        add("rect", {x: x.toFixed(1), y: y.toFixed(1), width: r.width.toFixed(1), height: r.height.toFixed(1),
          rx: 4, fill: cs.backgroundColor, stroke: cs.borderTopColor,
          "stroke-width": parseFloat(cs.borderTopWidth) || 0,
          "stroke-dasharray": cs.borderTopStyle === "dashed" ? "3 2" : cs.borderTopStyle === "dotted" ? "1 2" : "none"});
        add("text", {x: (x + r.width / 2).toFixed(1), y: (y + r.height / 2).toFixed(1), "text-anchor": "middle",
          "dominant-baseline": "central", fill: cs.color, "font-family": cs.fontFamily, "font-size": cs.fontSize,
          "xml:space": "preserve"}, r.text);
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

    ns.figure.on("svg" in ids ? ids.svg : "tok-svg", "click", function () {
      if (shown !== null) save.saveSvg(figure(), save.figureName("tokens", shown) + ".svg");
    });
    ns.figure.on("png" in ids ? ids.png : "tok-png", "click", function () {
      if (shown !== null) save.saveSvgAsPng(figure(), save.figureName("tokens", shown) + ".png");
    });

    return {draw: draw};
  }

  ns.tokenview = {create: create};
})();
