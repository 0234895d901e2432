// What the pages' figures share: the theme's colours (black on white for paper), the quantised
// attention blocks (and signed vectors) inflated, options for a <select>, and listeners on controls a template may leave out.
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

  // uint8 weights, deflated and base64-encoded: inflate with the browser's own
  // DecompressionStream (no library, works from file://), then scale back to [0, 1].
  function inflateBytes(block) {
    var raw = atob(block.data);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).arrayBuffer();
  }

  // a "uint8-sqrt-..." block holds square roots (site/encode.py: thin attention stays non-zero)
  function inflate(block) {
    var squared = /-sqrt-/.test(block.encoding || "");
    return inflateBytes(block).then(function (buffer) {
      var q = new Uint8Array(buffer);
      var out = new Float32Array(q.length);
      for (var j = 0; j < q.length; j++) {
        var v = q[j] * block.scale;
        out[j] = squared ? v * v : v;
      }
      return out;
    });
  }

  // signed vectors (the neuron view's queries and keys): a little-endian float32 scale per vector
  // of the last axis, then the int8 values
  function inflateSigned(block) {
    var d = block.shape[block.shape.length - 1], count = 1;
    for (var a = 0; a < block.shape.length - 1; a++) count *= block.shape[a];
    return inflateBytes(block).then(function (buffer) {
      var scales = new DataView(buffer, 0, 4 * count), q = new Int8Array(buffer, 4 * count);
      var out = new Float32Array(q.length);
      for (var j = 0; j < q.length; j++) out[j] = q[j] * scales.getFloat32(4 * Math.floor(j / d), true);
      return out;
    });
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

  ns.figure = {printing: printing, cssVar: cssVar, colours: colours, option: option, on: on, inflate: inflate,
    inflateSigned: inflateSigned};
})();
