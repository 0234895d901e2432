// Probe page glue: the original and its counterfactual, each in its own token view, one view
// control for both (the same class's attributions on the two sides). Data arrives only through
// <script type="application/json">; tokens are set as text, never as markup.
(function () {
  "use strict";
  var ns = window.attnreport;
  var node = document.getElementById("probe-data");
  if (!node) return;
  var data = JSON.parse(node.textContent);
  var select = document.getElementById("view");
  var views = data.sides.map(function (side, k) {
    return ns.tokenview.create(document.getElementById("tokens-" + k), side, {
      legend: "legend-" + k, note: k === 0 ? "view-note" : null, svg: "svg-" + k, png: "png-" + k
    });
  });

  // the views either side has, the explained classes' attributions first, rollout last
  var names = [];
  data.sides.forEach(function (side) {
    Object.keys(side.views).forEach(function (name) { if (names.indexOf(name) < 0) names.push(name); });
  });
  function rank(name) {
    if (name === "rollout") return 1000;
    var at = data.classes.indexOf(name.split(" for ").pop());
    return (at < 0 ? 100 : at * 10) + (name.indexOf("shapley") === 0 ? 0 : 1);
  }
  names.sort(function (a, b) { return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0); });
  names.forEach(function (name) { ns.figure.option(select, name, name); });

  function draw(name) {
    data.sides.forEach(function (side, k) {
      var box = document.getElementById("tokens-" + k);
      if (side.views[name] !== undefined) {
        views[k].draw(name);
        return;
      }
      // this side's attributions do not explain that class: say so, and show the text plain
      box.textContent = side.text;
      box.dataset.view = "";
      var legend = document.getElementById("legend-" + k);
      if (legend) legend.textContent = "not explained for this class on this side (" + name + ")";
    });
  }
  select.addEventListener("change", function () { draw(select.value); });
  if (names.length) draw(names[0]);
})();
