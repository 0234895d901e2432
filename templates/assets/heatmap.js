// The attention heatmap of one layer and head (or the rollout), drawn with the vendored Plotly;
// Plotly's own buttons save it as PNG and SVG.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};

  // el: the figure's container (absent: nothing is drawn); data: the page's data
  function create(el, data) {
    if (!el) return {draw: function () {}};
    var n = data.n;
    var labels = data.tokens.map(function (t, i) { return i + " " + t; });
    var ticks = data.tokens.map(function (_, i) { return i; });
    // Plotly measures every tick label: hundreds of them take seconds per redraw and overlap
    // anyway, so long inputs label every k-th token (hover still names both tokens)
    var tickStep = n <= 128 ? 1 : Math.ceil(n / 96);
    var tickvals = ticks.filter(function (i) { return i % tickStep === 0; });
    var ticktext = tickvals.map(function (i) { return labels[i]; });

    // view: {z, layer, head, peak}; the colour scale runs to the largest weight shown, so a
    // diffuse head is not all dark
    function draw(view) {
      var hover = view.z.map(function (row, r) {
        return row.map(function (v, c) { return data.tokens[r] + " → " + data.tokens[c]; });
      });
      var trace = {
        type: "heatmap", z: view.z, x: ticks, y: ticks, text: hover, zmin: 0, zmax: view.peak,
        colorscale: "Viridis", hovertemplate: "%{text}<br>weight %{z:.3f}<extra></extra>"
      };
      var layout = {
        margin: {l: 110, r: 10, t: 10, b: 110},
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
        font: {color: ns.figure.colours().fg},
        xaxis: {tickvals: tickvals, ticktext: ticktext, tickangle: -60, side: "bottom"},
        yaxis: {tickvals: tickvals, ticktext: ticktext, autorange: "reversed"},
        height: Math.max(360, Math.min(900, 18 * n + 140))
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
