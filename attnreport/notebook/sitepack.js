// A built site inside one notebook output (attnreport.notebook.sitepack): the site's files are
// one deflated blob (#site-data, base64) with a table of contents (#site-files: path -> [offset,
// length, type]). A page is shown in the inner frame #page as a srcdoc document: its scripts and
// styles inlined, its images data: addresses of the site's own files (blob: ones are refused in a
// page opened from a file), <base href="about:srcdoc"> so that its own #links and the address its
// scripts write stay in it. A click on a link to another page of the site shows that page; a link
// to another file of the site downloads it; a link elsewhere opens in a new window. Nothing is
// fetched from a server.
(function () {
  "use strict";
  var ROOT = "https://site.invalid/";  // only to resolve relative links; never requested
  var files = JSON.parse(document.getElementById("site-files").textContent);
  var frame = document.getElementById("page"), where = document.getElementById("where");
  var back = document.getElementById("back"), home = document.getElementById("home");
  var all = null, urls = {}, current = null, history = [];

  function bytes(path) { var f = files[path]; return all.subarray(f[0], f[0] + f[1]); }
  function text(path) { return new TextDecoder().decode(bytes(path)); }
  // a file as a data: address (an image, a download): blob: ones are refused in a file:// page
  function url(path) {
    if (!urls[path]) {
      var b = bytes(path), s = "";
      for (var i = 0; i < b.length; i += 0x8000) s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
      urls[path] = "data:" + files[path][2] + ";base64," + btoa(s);
    }
    return urls[path];
  }
  // script or style text, safe inside its element: nothing in it can end the element early
  function safe(source, tag) {
    return source.replace(new RegExp("</" + tag, "gi"), "<\\/" + tag).replace(/<!--/g, "<\\!--");
  }
  // a reference in page `from` -> {path, hash} of a site file, or null (elsewhere, or not packed)
  function resolve(ref, from) {
    if (ref === null || /^[a-z][a-z0-9+.-]*:/i.test(ref)) return null;
    var u;
    try { u = new URL(ref, ROOT + from); } catch (e) { return null; }
    if (u.origin + "/" !== ROOT) return null;
    var path = decodeURIComponent(u.pathname.slice(1));
    if (path === "" || path.slice(-1) === "/") path += "index.html";
    return files[path] ? {path: path, hash: u.hash} : null;
  }
  function each(doc, selector, fn) { Array.prototype.forEach.call(doc.querySelectorAll(selector), fn); }

  // a link of page `path` (as written, or made by its scripts later): to a page of the site, it
  // is marked for the click handler; to a file of the site, it downloads it (a frame may not open
  // a data: address); to anywhere else, it opens in a new window. Links within the page stay.
  function link(a, path) {
    var href = a.getAttribute("href");
    if (a.hasAttribute("data-site-page") || href.charAt(0) === "#" || /^data:/.test(href)) return;
    var r = resolve(href, path);
    if (r && /\.html$/.test(r.path)) {
      a.setAttribute("data-site-page", r.path + r.hash);
    } else if (r) {
      a.setAttribute("href", url(r.path));
      a.setAttribute("download", r.path.split("/").pop());
    } else {
      a.setAttribute("target", "_blank");
      a.setAttribute("rel", "noopener noreferrer");
    }
  }

  // page `path` as one document: its scripts and styles inline, its images data: addresses, its
  // links to pages marked for the click handler; `hash` set before its scripts read it
  function prepare(path, hash) {
    var doc = new DOMParser().parseFromString(text(path), "text/html");
    each(doc, "script[src]", function (el) {
      var r = resolve(el.getAttribute("src"), path);
      if (!r) return;
      el.removeAttribute("src");
      el.textContent = safe(text(r.path), "script");
    });
    each(doc, "link[rel~=stylesheet][href]", function (el) {
      var r = resolve(el.getAttribute("href"), path);
      if (!r) return;
      var style = doc.createElement("style");
      style.textContent = safe(text(r.path), "style");
      el.parentNode.replaceChild(style, el);
    });
    each(doc, "[src], link[href]", function (el) {
      var attr = el.hasAttribute("src") ? "src" : "href", r = resolve(el.getAttribute(attr), path);
      if (r) el.setAttribute(attr, url(r.path));
    });
    each(doc, "a[href]", function (a) { link(a, path); });
    // links within the page and the scripts' history.replaceState stay in this document
    var base = doc.createElement("base");
    base.setAttribute("href", "about:srcdoc");
    doc.head.insertBefore(base, doc.head.firstChild);
    if (hash) {
      var set = doc.createElement("script");
      set.textContent = "try { history.replaceState(null, '', " + JSON.stringify(hash).replace(/</g, "\\u003c") +
        "); } catch (e) {}";
      doc.head.insertBefore(set, base.nextSibling);
    }
    return "<!doctype html>\n" + doc.documentElement.outerHTML;
  }

  function show(path, hash, remember) {
    if (remember && current) history.push(current);
    back.disabled = !history.length;
    current = path + hash;
    where.textContent = current;
    frame.srcdoc = prepare(path, hash);
  }
  function open(target, remember) {
    var cut = target.indexOf("#");
    show(cut < 0 ? target : target.slice(0, cut), cut < 0 ? "" : target.slice(cut), remember);
  }

  frame.addEventListener("load", function () {
    var doc = frame.contentDocument;
    document.body.dataset.page = current;
    if (!doc) return;
    doc.addEventListener("click", function (e) {
      var a = e.target.closest && e.target.closest("a[href]");
      if (!a || e.defaultPrevented || e.button > 0) return;
      link(a, current.split("#")[0]);
      if (!a.hasAttribute("data-site-page")) return;
      e.preventDefault();
      open(a.getAttribute("data-site-page"), true);
    });
    document.body.dataset.ready = "true";
  });
  back.addEventListener("click", function () { if (history.length) open(history.pop(), false); });
  home.addEventListener("click", function () { open("index.html", true); });

  function fail(message) {
    where.textContent = message;
    document.body.dataset.ready = "failed";
  }
  if (typeof DecompressionStream === "undefined") {
    fail("this browser cannot inflate the report (no DecompressionStream); save it with report.save(folder)");
    return;
  }
  var raw = atob(document.getElementById("site-data").textContent.trim());
  var packed = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) packed[i] = raw.charCodeAt(i);
  var stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("deflate"));
  new Response(stream).arrayBuffer().then(function (buffer) {
    all = new Uint8Array(buffer);
    open("index.html", false);
  }, function (e) { fail("the packed report is damaged: " + e); });
})();
