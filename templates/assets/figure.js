// What the example page's figures share: the theme's colours (black on white for paper), options
// for a <select>, and listeners on controls that a user's own template may leave out.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};
  var printing = window.matchMedia ? window.matchMedia("print") : {matches: false};

  function cssVar(style, name, fallback) {
    return style.getPropertyValue(name).trim() || fallback;
  }

  // figures take their colours from the theme when drawn (the page redraws them for paper and back)
  function colours() {
    var style = getComputedStyle(document.body), paper = printing.matches;
    return {
      fg: paper ? "#000000" : style.color,
      bg: paper ? "#ffffff" : cssVar(style, "--panel", "#ffffff"),
      muted: paper ? "#333333" : cssVar(style, "--muted", "#5b6475"),
      accent: paper ? "#0072b2" : cssVar(style, "--accent", "#0072b2"),
      font: style.fontFamily || "sans-serif"
    };
  }

  function option(select, value, label) {
    var o = document.createElement("option");
    o.value = String(value);
    o.textContent = label;
    select.appendChild(o);
  }

  function on(id, event, handler) {
    var node = document.getElementById(id);
    if (node) node.addEventListener(event, handler);
  }

  ns.figure = {printing: printing, cssVar: cssVar, colours: colours, option: option, on: on};
})();
