// Index page: filter the examples by text, label, prediction and outcome; sort by any column.
(function () {
  "use strict";
  var table = document.getElementById("examples");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var text = document.getElementById("filter");
  var label = document.getElementById("f-label");
  var prediction = document.getElementById("f-prediction");
  var correct = document.getElementById("f-correct");
  var shown = document.getElementById("shown");

  function apply() {
    var q = text.value.toLowerCase();
    var count = 0;
    rows.forEach(function (row) {
      var ok = (q === "" || row.textContent.toLowerCase().indexOf(q) >= 0) &&
        (label.value === "" || row.dataset.label === label.value) &&
        (prediction.value === "" || row.dataset.prediction === prediction.value) &&
        (correct.value === "" || row.dataset.correct === correct.value);
      row.hidden = !ok;
      if (ok) count++;
    });
    shown.textContent = count + " of " + rows.length + " shown";
  }

  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  headers.forEach(function (th, column) {
    th.tabIndex = 0;
    th.setAttribute("aria-sort", "none");
    function sort() {
      var descending = th.getAttribute("aria-sort") === "ascending";
      var numeric = th.dataset.sort === "number";
      rows.sort(function (a, b) {
        var x = numeric ? parseFloat(a.dataset.confidence || "-1") : a.cells[column].textContent.trim();
        var y = numeric ? parseFloat(b.dataset.confidence || "-1") : b.cells[column].textContent.trim();
        var order = numeric ? x - y : x.localeCompare(y, undefined, {numeric: true});
        return descending ? -order : order;
      });
      headers.forEach(function (other) { other.setAttribute("aria-sort", "none"); });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
  });

  [text, label, prediction, correct].forEach(function (el) {
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });
  apply();
})();
