// Compare page: filter the rows of every example by text and by whether the prediction flipped.
// The rows are in the HTML already (flipped first, then by probability shift); this only hides.
(function () {
  "use strict";
  var table = document.getElementById("compare-rows");
  if (!table) return;
  var text = document.getElementById("c-filter");
  var flipped = document.getElementById("c-flipped");
  var shown = document.getElementById("c-shown");
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var haystack = rows.map(function (tr) { return tr.textContent.toLowerCase(); });

  function apply() {
    var needle = text ? text.value.trim().toLowerCase() : "";
    var want = flipped ? flipped.value : "";
    var count = 0;
    rows.forEach(function (tr, i) {
      var ok = (!needle || haystack[i].indexOf(needle) >= 0) && (!want || tr.dataset.flipped === want);
      tr.hidden = !ok;
      if (ok) count += 1;
    });
    if (shown) shown.textContent = count + " of " + rows.length + " shown";
  }
  if (text) text.addEventListener("input", apply);
  if (flipped) flipped.addEventListener("change", apply);
})();
