// The attention heatmap of one layer and head (or the rollout), drawn with the vendored Plotly;
// Plotly's own buttons save it as PNG and SVG.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};

  // el: the figure's container (absent: nothing is drawn); data: the page's data. Rows are the
  // queries and columns the keys: both data.tokens on an example page; a generation page passes
  // data.queries (the answer's writing positions) and data.keys (everything they could read).
  function create(el, data) {
    if (!el) return {draw: function () {}};
    var queries = data.queries || data.tokens, keys = data.keys || data.tokens;
    // Plotly measures every tick label: hundreds of them take seconds per redraw and overlap
    // anyway, so long inputs label every k-th token (hover still names both tokens)
    function axis(tokens) {
      var every = tokens.length <= 128 ? 1 : Math.ceil(tokens.length / 96);
      var vals = [];
      for (var i = 0; i < tokens.length; i += every) vals.push(i);
      return {all: tokens.map(function (_, i) { return i; }), vals: vals,
        text: vals.map(function (i) { return i + " " + tokens[i]; })};
    }
    var rows = axis(queries), cols = axis(keys);

    // view: {z, layer, head, peak}; the colour scale runs to the largest weight shown, so a
    // diffuse head is not all dark
    function draw(view) {
      var hover = view.z.map(function (row, r) {
        return row.map(function (v, c) { return queries[r] + " → " + keys[c]; });
      });
      var trace = {
        type: "heatmap", z: view.z, x: cols.all, y: rows.all, text: hover, zmin: 0, zmax: view.peak,
        colorscale: "Viridis", hovertemplate: "%{text}<br>weight %{z:.3f}<extra></extra>"
      };
      var layout = {
        margin: {l: 110, r: 10, t: 10, b: 110},
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
        font: {color: ns.figure.colours().fg},
        xaxis: {tickvals: cols.vals, ticktext: cols.text, tickangle: -60, side: "bottom"},
        yaxis: {tickvals: rows.vals, ticktext: rows.text, autorange: "reversed"},
        height: Math.max(360, Math.min(900, 18 * queries.length + 140)),
        // view.row: a query row to outline (the generation page's chosen answer token)
        shapes: view.row === undefined ? [] : [{
          type: "rect", xref: "paper", x0: 0, x1: 1, y0: view.row - 0.5, y1: view.row + 0.5,
          line: {color: ns.figure.colours().fg, width: 2}
        }]
      };
      el.dataset.layer = String(view.layer);
      el.dataset.head = String(view.head);
      var name = ns.save.figureName("attention", view);
      Plotly.react(el, [trace], layout, {
        displaylogo: false, responsive: true,
        toImageButtonOptions: {format: "png", scale: 2, filename: name},
        modeBarButtonsToAdd: [{
          name: "Download as SVG", icon: Plotly.Icons.disk,
          click: function (gd) { Plotly.downloadImage(gd, {format: "svg", filename: name}); }
        }]
      });
    }

    return {draw: draw};
  }

  ns.heatmap = {create: create};
})();
