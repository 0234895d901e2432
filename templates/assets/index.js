// Index page: filter the examples table as the reader types.
(function () {
  "use strict";
  var input = document.getElementById("filter");
  var rows = Array.prototype.slice.call(document.querySelectorAll("#examples tbody tr"));
  input.addEventListener("input", function () {
    var q = input.value.toLowerCase();
    rows.forEach(function (row) {
      row.hidden = q !== "" && row.textContent.toLowerCase().indexOf(q) < 0;
    });
  });
})();
