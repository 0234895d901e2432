// Saving figures, written once for every page: a download, SVG with its XML header, a PNG
// rendered from that SVG, the SVG node builder and the figure file names; viewer3d.js saves here too.
(function () {
  "use strict";
  var ns = window.attnreport = window.attnreport || {};
  var SVG_NS = "http://www.w3.org/2000/svg", XML_NS = "http://www.w3.org/XML/1998/namespace";
  var HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n';

  // an SVG element with its attributes (xml:space and the like in the XML namespace) and text
  function svgNode(name, attrs, text) {
    var node = document.createElementNS(SVG_NS, name);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k.indexOf("xml:") === 0) node.setAttributeNS(XML_NS, k, String(attrs[k]));
      else node.setAttribute(k, String(attrs[k]));
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // a standalone SVG file: the header, and the figure as drawn without the page's state (hover classes)
  function svgText(svg) {
    var copy = svg.cloneNode(true);
    copy.removeAttribute("class");
    copy.querySelectorAll("[class]").forEach(function (node) { node.removeAttribute("class"); });
    return HEADER + new XMLSerializer().serializeToString(copy);
  }

  function saveBlob(blob, filename) {
    var url = URL.createObjectURL(blob), a = document.createElement("a");
    a.href = url;
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  function saveCanvas(canvas, filename) {
    canvas.toBlob(function (blob) { saveBlob(blob, filename); }, "image/png");
  }

  function saveSvg(svg, filename) {
    saveBlob(new Blob([svgText(svg)], {type: "image/svg+xml"}), filename);
  }

  // a PNG drawn from the SVG at twice its size (less for very tall figures: browsers cap canvases)
  function saveSvgAsPng(svg, filename) {
    var width = +svg.getAttribute("width"), height = +svg.getAttribute("height");
    var scale = height * 2 <= 16000 ? 2 : Math.max(0.25, 16000 / height);
    var image = new Image();
    image.onload = function () {
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(width * scale);
      canvas.height = Math.round(height * scale);
      var ctx = canvas.getContext("2d");
      ctx.scale(scale, scale);
      ctx.drawImage(image, 0, 0, width, height);
      saveCanvas(canvas, filename);
    };
    image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svgText(svg));
  }

  // a figure's file name, without extension: kind, kind-what, kind-layerL-headH or kind-rollout
  function figureName(kind, view) {
    if (view === undefined) return kind;
    if (typeof view === "string") return kind + "-" + view;
    return kind + "-" + (view.layer === "rollout" ? "rollout" : "layer" + view.layer + "-head" + view.head);
  }

  ns.save = {
    svgNode: svgNode, svgText: svgText, saveBlob: saveBlob, saveCanvas: saveCanvas,
    saveSvg: saveSvg, saveSvgAsPng: saveSvgAsPng, figureName: figureName
  };
})();
