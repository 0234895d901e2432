// Model view: a thumbnail of every layer and head (a click opens it in the heatmap), labelled by
// layer and head on the page, and one SVG grid of them, labelled alike, which is saved as the SVG
// and rendered into the PNG.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};

  // box: the figure's container (absent: nothing is drawn); data: the page's data; open(layer,
  // head): what a click on a thumbnail does. Each head's block is rows x cols: n x n on an example
  // page, the answer's writing positions x every key on a generation page (data.queries, data.keys).
  function create(box, data, open) {
    if (!box) return {draw: function () {}};
    var save = ns.save, node = save.svgNode, L = data.layers, H = data.heads;
    var rows = (data.queries || data.tokens).length, cols = (data.keys || data.tokens).length;
    // the numbers the labels show: a notebook's include_layers / include_heads pass their own
    function layerId(l) { return data.layer_ids ? data.layer_ids[l] : l; }
    function headId(h) { return data.head_ids ? data.head_ids[h] : h; }

    // one small canvas per layer and head, each row scaled to its own maximum so the pattern
    // shows however diffuse the head is
    function draw(attention) {
      var colour = ns.figure.cssVar(getComputedStyle(document.body), "--neg", "#0072b2");
      var probe = document.createElement("canvas").getContext("2d");
      probe.fillStyle = colour;
      var rgb = probe.fillStyle.match(/[0-9a-f]{2}/gi) || ["00", "72", "b2"];
      var cr = parseInt(rgb[0], 16), cg = parseInt(rgb[1], 16), cb = parseInt(rgb[2], 16);
      // the grid's own labels, as on the saved SVG: heads across the top, layers down the side
      function label(text, title, cls) {
        var span = document.createElement("span");
        span.className = "mv-label " + cls;
        span.textContent = text;
        span.title = title;
        box.appendChild(span);
      }
      label("", "", "mv-corner");
      for (var hh = 0; hh < H; hh++) label("H" + headId(hh), "head " + headId(hh), "mv-head");
      for (var l = 0; l < L; l++) {
        label("L" + layerId(l), "layer " + layerId(l), "mv-layer");
        for (var h = 0; h < H; h++) {
          var canvas = document.createElement("canvas");
          canvas.width = cols;
          canvas.height = rows;
          canvas.className = "thumb";
          // a wide block (many keys, few rows) is drawn wide, up to 4:1, not squeezed square
          if (rows !== cols) canvas.style.aspectRatio = String(Math.max(0.5, Math.min(4, cols / rows)));
          canvas.title = "layer " + layerId(l) + ", head " + headId(h);
          canvas.dataset.layer = String(l);
          canvas.dataset.head = String(h);
          var ctx = canvas.getContext("2d");
          var image = ctx.createImageData(cols, rows);
          for (var r = 0; r < rows; r++) {
            var base = ((l * H + h) * rows + r) * cols, peak = 0, c;
            for (c = 0; c < cols; c++) if (attention[base + c] > peak) peak = attention[base + c];
            for (c = 0; c < cols; c++) {
              var a = peak > 0 ? attention[base + c] / peak : 0, k = (r * cols + c) * 4;
              image.data[k] = cr; image.data[k + 1] = cg; image.data[k + 2] = cb;
              image.data[k + 3] = Math.round(255 * a);
            }
          }
          ctx.putImageData(image, 0, 0);
          canvas.addEventListener("click", function (event) {
            open(event.currentTarget.dataset.layer, event.currentTarget.dataset.head);
          });
          box.appendChild(canvas);
        }
      }
    }

    // every thumbnail on one grid, layers down and heads across, labelled; each an image with crisp pixels
    function grid() {
      var thumbs = box.querySelectorAll("canvas.thumb");
      if (!thumbs.length) return null;
      var c = ns.figure.colours();
      // cells keep the blocks' shape: as wide as the keys and as tall as the rows, at most 128
      var cellW = Math.max(48, Math.min(128, cols));
      var cellH = Math.max(24, Math.min(128, Math.round(cellW * rows / cols)));
      var gap = 4, left = 34, top = 20;
      var width = left + H * (cellW + gap), height = top + L * (cellH + gap);
      function x(h) { return left + h * (cellW + gap); }
      function y(l) { return top + l * (cellH + gap); }
      var svg = node("svg", {
        width: width, height: height, viewBox: "0 0 " + width + " " + height,
        "font-family": c.font, "font-size": 11, fill: c.fg
      });
      svg.appendChild(node("title", {}, "Attention of every layer and head"));
      svg.appendChild(node("rect", {x: 0, y: 0, width: width, height: height, fill: c.bg}));
      for (var h = 0; h < H; h++) {
        svg.appendChild(node("text", {x: x(h) + cellW / 2, y: 13, "text-anchor": "middle"}, "H" + headId(h)));
      }
      for (var l = 0; l < L; l++) {
        svg.appendChild(node("text", {x: left - 6, y: y(l) + cellH / 2 + 4, "text-anchor": "end"}, "L" + layerId(l)));
      }
      Array.prototype.forEach.call(thumbs, function (thumb) {
        var tx = x(+thumb.dataset.head), ty = y(+thumb.dataset.layer);
        svg.appendChild(node("image", {
          x: tx, y: ty, width: cellW, height: cellH, preserveAspectRatio: "none",
          style: "image-rendering: pixelated", "data-layer": thumb.dataset.layer, "data-head": thumb.dataset.head,
          href: thumb.toDataURL("image/png")
        }));
        svg.appendChild(node("rect", {
          x: tx + 0.5, y: ty + 0.5, width: cellW - 1, height: cellH - 1, fill: "none",
          stroke: c.fg, "stroke-opacity": 0.25
        }));
      });
      return svg;
    }

    ns.figure.on("mv-svg", "click", function () {
      var svg = grid();
      if (svg) save.saveSvg(svg, save.figureName("model-view") + ".svg");
    });
    ns.figure.on("mv-png", "click", function () {
      var svg = grid();
      if (svg) save.saveSvgAsPng(svg, save.figureName("model-view") + ".png");
    });

    return {draw: draw};
  }

  ns.modelview = {create: create};
})();
