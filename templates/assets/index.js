// Index page: the list of examples, filtered, sorted and shown one page of rows at a time.
// The list comes as columns in <script type="application/json" id="examples-data">, so an index
// of 100,000 examples lays out 100 rows, not 100,000. Texts are set with textContent only.
(function () {
  "use strict";
  var table = document.getElementById("examples");
  var source = document.getElementById("examples-data");
  if (!table || !source) return;
  var body = table.tBodies[0];
  var data = JSON.parse(source.textContent);
  var total = data.id.length;
  var pageRows = parseInt(table.dataset.pageRows, 10) || 100;
  var text = document.getElementById("filter");
  var label = document.getElementById("f-label");
  var prediction = document.getElementById("f-prediction");
  var correct = document.getElementById("f-correct");
  var group = document.getElementById("f-group");   // only when the report has data groups
  var shown = document.getElementById("shown");
  var pager = document.getElementById("pager");
  var prev = document.getElementById("prev");
  var next = document.getElementById("next");
  var pageOf = document.getElementById("page-of");

  // lower-cased search text per example, built once
  var haystack = new Array(total);
  for (var i = 0; i < total; i++) {
    haystack[i] = [data.id[i], data.text[i], data.label[i] || "", data.prediction[i] || "", data.group ? data.group[i] || "" : ""].join("\u0000").toLowerCase();
  }
  var order = [];           // indices of the examples that pass the filters, in the sorted order
  var sortKey = null, descending = false, page = 0;

  function percent(x) { return x === null ? "–" : (100 * x).toFixed(1) + "%"; }

  function cell(row, content) {
    var td = document.createElement("td");
    if (content !== undefined) td.textContent = content;
    row.appendChild(td);
    return td;
  }

  function draw() {
    var pages = Math.max(1, Math.ceil(order.length / pageRows));
    page = Math.min(page, pages - 1);
    var start = page * pageRows, end = Math.min(order.length, start + pageRows);
    var rows = document.createDocumentFragment();
    for (var k = start; k < end; k++) {
      var i = order[k];
      var tr = document.createElement("tr");
      if (data.correct[i] === 0) tr.className = "wrong";
      tr.dataset.confidence = data.confidence[i] === null ? "" : String(data.confidence[i]);
      var link = document.createElement("a");
      link.href = data.page[i];
      link.textContent = data.id[i];
      cell(tr).appendChild(link);
      cell(tr, data.text[i]).className = "text";
      if (data.group) cell(tr, data.group[i] === null ? "–" : data.group[i]);
      cell(tr, data.label[i] === null ? "–" : data.label[i]);
      var predicted = cell(tr, data.prediction[i] === null ? "–" : data.prediction[i]);
      if (data.correct[i] === 0) {
        var badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "wrong";
        predicted.appendChild(document.createTextNode(" "));
        predicted.appendChild(badge);
      }
      cell(tr, percent(data.confidence[i]));
      if (data.min_probability) cell(tr, percent(data.min_probability[i]));
      rows.appendChild(tr);
    }
    body.replaceChildren(rows);
    shown.textContent = order.length === total
      ? "showing " + (start + 1) + "–" + end + " of " + total
      : order.length + " of " + total + " match" + (order.length ? "; showing " + (start + 1) + "–" + end : "");
    pager.style.display = pages < 2 ? "none" : "";
    pageOf.textContent = "page " + (page + 1) + " of " + pages;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }

  function compare(a, b) {
    var x = data[sortKey][a], y = data[sortKey][b];
    var result;
    if (x === null || y === null) result = (x === null) - (y === null);   // missing values last
    else if (typeof x === "number") result = x - y;
    else result = String(x).localeCompare(String(y), undefined, {numeric: true});
    if (descending && x !== null && y !== null) result = -result;
    return result || a - b;                                              // stable: report order
  }

  function apply() {
    var q = text.value.toLowerCase();
    var l = label.value, p = prediction.value, c = correct.value, g = group ? group.value : "";
    order = [];
    for (var i = 0; i < total; i++) {
      if (q !== "" && haystack[i].indexOf(q) < 0) continue;
      if (l !== "" && data.label[i] !== l) continue;
      if (p !== "" && data.prediction[i] !== p) continue;
      if (c !== "" && String(data.correct[i]) !== c) continue;
      if (g !== "" && data.group[i] !== g) continue;
      order.push(i);
    }
    if (sortKey) order.sort(compare);
    page = 0;
    draw();
  }

  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  headers.forEach(function (th) {
    th.tabIndex = 0;
    th.setAttribute("aria-sort", "none");
    function sort() {
      descending = sortKey === th.dataset.column && th.getAttribute("aria-sort") === "ascending";
      sortKey = th.dataset.column;
      headers.forEach(function (other) { other.setAttribute("aria-sort", "none"); });
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      apply();
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
  });
  prev.addEventListener("click", function () { page -= 1; draw(); });
  next.addEventListener("click", function () { page += 1; draw(); });
  [text, label, prediction, correct, group].filter(Boolean).forEach(function (el) {
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });
  apply();
})();
