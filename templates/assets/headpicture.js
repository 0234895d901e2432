// Head page: the head's attention on its most typical examples, one SVG each, queries down and
// keys across with their tokens as labels (text nodes: a token is never markup), each row scaled
// to its own largest weight, the exact weight on hover.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};
  var box = document.getElementById("head-pictures"), source = document.getElementById("head-pictures-data");
  if (!box || !source) return;
  var pictures = JSON.parse(source.textContent), node = ns.save.svgNode;

  function short(token) { token = String(token); return token.length > 12 ? token.slice(0, 11) + "…" : token; }

  function picture(p, weights) {
    var m = p.tokens.length, c = ns.figure.colours();
    var colour = ns.figure.cssVar(getComputedStyle(document.body), "--neg", "#0072b2");
    var cell = Math.max(7, Math.min(16, Math.floor(420 / Math.max(m, 1))));
    var left = 96, top = 84, width = left + m * cell + 48, height = top + m * cell + 4;  // room for the last key's slanted label
    var svg = node("svg", {
      width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img",
      "font-family": c.font, "font-size": Math.min(11, cell), fill: c.fg, class: "head-picture-svg"
    });
    svg.appendChild(node("title", {}, "attention of this head on example " + p.id));
    for (var i = 0; i < m; i++) {
      var y = top + i * cell, x = left + i * cell;
      svg.appendChild(node("text", {x: left - 4, y: y + cell * 0.75, "text-anchor": "end", class: "query"}, short(p.tokens[i])));
      svg.appendChild(node("text", {
        x: 0, y: 0, transform: "translate(" + (x + cell * 0.75) + "," + (top - 4) + ") rotate(-60)", class: "key"
      }, short(p.tokens[i])));
    }
    for (var r = 0; r < m; r++) {
      var peak = 0, k;
      for (k = 0; k < m; k++) if (weights[r * m + k] > peak) peak = weights[r * m + k];
      for (k = 0; k < m; k++) {
        var w = weights[r * m + k], rect = node("rect", {
          x: left + k * cell, y: top + r * cell, width: cell, height: cell, fill: colour,
          "fill-opacity": peak > 0 ? (w / peak).toFixed(3) : 0, class: "cell"
        });
        rect.appendChild(node("title", {}, short(p.tokens[r]) + " → " + short(p.tokens[k]) + ": " + w.toFixed(3)));
        svg.appendChild(rect);
      }
    }
    svg.appendChild(node("rect", {
      x: left - 0.5, y: top - 0.5, width: m * cell + 1, height: m * cell + 1, fill: "none", stroke: c.fg, "stroke-opacity": 0.3
    }));
    return svg;
  }

  pictures.forEach(function (p) {
    var figure = document.createElement("figure");
    figure.className = "head-picture";
    figure.dataset.id = p.id;
    box.appendChild(figure);
    var caption = document.createElement("figcaption"), link = document.createElement("a");
    link.href = "../" + p.page;
    link.textContent = p.id;
    caption.appendChild(document.createTextNode("example "));
    caption.appendChild(link);
    if (p.tokens.length < p.n) caption.appendChild(document.createTextNode(" (its first " + p.tokens.length + " of " + p.n + " tokens)"));
    ns.figure.inflate(p.attention).then(function (weights) {
      figure.insertBefore(picture(p, weights), figure.firstChild);
      figure.appendChild(caption);
      figure.dataset.state = "drawn";
    });
  });
})();
