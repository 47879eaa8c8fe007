/* thinkcost report: plots, a sortable table and a lazily decompressed problem browser.
   Model text only ever reaches the page through textContent / text nodes, never as HTML. */
(function () {
  "use strict";

  var byId = function (id) { return document.getElementById(id); };

  /* --- plots: figure JSON lives in <script type="application/json"> next to each div --------- */
  function drawPlots() {
    if (typeof Plotly === "undefined") { return; }
    document.querySelectorAll("[data-figure]").forEach(function (div) {
      var fig = JSON.parse(byId(div.getAttribute("data-figure")).textContent);
      Plotly.newPlot(div, fig.data, fig.layout, { responsive: true, displaylogo: false });
    });
  }

  /* --- sortable table: cells carry data-sort (number or text); empty values sort last --------- */
  function sortKey(row, i, numeric) {
    var cell = row.cells[i];
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    if (raw === "") { return null; }
    if (!numeric) { return raw.toLowerCase(); }
    var x = parseFloat(raw);
    return isNaN(x) ? null : x;
  }

  function sortTable(table, th, i) {
    var dir = th.getAttribute("data-dir") === "asc" ? "desc" : "asc";
    table.querySelectorAll("th").forEach(function (h) {
      h.removeAttribute("data-dir");
      h.removeAttribute("aria-sort");
    });
    th.setAttribute("data-dir", dir);
    th.setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
    var numeric = th.getAttribute("data-type") === "num";
    var sign = dir === "asc" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (r, idx) {
      return { row: r, key: sortKey(r, i, numeric), idx: idx };
    });
    rows.sort(function (a, b) {
      if (a.key === null || b.key === null) {
        return a.key === b.key ? a.idx - b.idx : (a.key === null ? 1 : -1);
      }
      if (a.key < b.key) { return -sign; }
      if (a.key > b.key) { return sign; }
      return a.idx - b.idx;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
  }

  function makeSortable() {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("thead th").forEach(function (th, i) {
        th.addEventListener("click", function () { sortTable(table, th, i); });
      });
    });
  }

  /* --- problem browser ------------------------------------------------------------------------ */
  var dataPromise = null;

  function base64Bytes(b64) {
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }

  function loadData() {
    if (dataPromise === null) {
      var src = byId("browser-data");
      if (typeof DecompressionStream === "undefined") {
        dataPromise = Promise.reject(new Error("this browser has no DecompressionStream: open the report in a current browser"));
      } else {
        var stream = new Blob([base64Bytes(src.textContent.trim())]).stream()
          .pipeThrough(new DecompressionStream("gzip"));
        dataPromise = new Response(stream).text().then(JSON.parse);
      }
    }
    return dataPromise;
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function fmtInt(x) { return x === null || x === undefined ? "–" : Number(x).toLocaleString("en-US"); }

  function traceText(parts) {
    /* parts alternate plain / repeated text, starting with plain */
    var pre = el("pre", "trace");
    parts.forEach(function (p, i) {
      if (i % 2 === 1) { pre.appendChild(el("mark", null, p)); }
      else if (p) { pre.appendChild(document.createTextNode(p)); }
    });
    return pre;
  }

  function fillPanel(panel, title, trace, limit, note) {
    panel.replaceChildren();
    panel.appendChild(el("h3", null, title));
    if (!trace) {
      panel.appendChild(el("p", "muted", "no stored sample 0 for this problem under this recipe"));
      return;
    }
    var dl = el("dl");
    function item(k, v, cls) { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", cls, v)); }
    item("verdict", trace.correct ? "✓ correct" : "✗ wrong", trace.correct ? "verdict-ok" : "verdict-bad");
    item("extracted answer", trace.extracted === null ? "(none)" : trace.extracted);
    item("extraction rule", trace.rule);
    item("tokens", "reasoning " + fmtInt(trace.reasoning_tokens) + " · answer " + fmtInt(trace.answer_tokens) +
      " · completion " + fmtInt(trace.completion_tokens));
    item("finish reason", trace.finish_reason);
    item("repetition", trace.repetition.toFixed(3) + " (" + trace.repeated + " of " + trace.ngrams +
      " word 4-grams repeat; highlighted" + (trace.truncated ? "; over the shown characters only" : "") + ")");
    if (trace.error) { item("error", trace.error, "warn"); }
    panel.appendChild(dl);
    if (trace.truncated) {
      panel.appendChild(el("p", "note trunc", "showing " + fmtInt(limit) + " of " + fmtInt(trace.chars) +
        " characters; " + note));
    }
    panel.appendChild(traceText(trace.parts));
  }

  function selected() {
    return {
      problem: parseInt(byId("pb-problem").value, 10),
      variant: byId("pb-variant").value,
      recipe: byId("pb-recipe").value,
    };
  }

  function tracesOf(data, recipe, variant) {
    var r = data.traces[recipe] || {};
    return r[variant] || {};
  }

  function applyFilter(data) {
    var s = selected();
    var only = byId("pb-differ").checked;
    var left = tracesOf(data, s.recipe, data.reference);
    var right = tracesOf(data, s.recipe, s.variant);
    var select = byId("pb-problem");
    var firstVisible = null;
    Array.prototype.forEach.call(select.options, function (opt) {
      var pid = data.problems[parseInt(opt.value, 10)].id;
      var a = left[pid], b = right[pid];
      var differ = !!(a && b && a.correct !== b.correct);
      opt.hidden = only && !differ;
      if (!opt.hidden && firstVisible === null) { firstVisible = opt; }
    });
    var cur = select.options[select.selectedIndex];
    if (cur && cur.hidden && firstVisible !== null) { select.value = firstVisible.value; }
    var count = Array.prototype.filter.call(select.options, function (o) { return !o.hidden; }).length;
    byId("pb-count").textContent = count + " of " + select.options.length + " problems";
  }

  function render(data) {
    applyFilter(data);
    var s = selected();
    var p = data.problems[s.problem];
    if (!p) { return; }
    byId("pb-question").textContent = p.question;
    byId("pb-qtrunc").textContent = p.truncated ? "question truncated at " + fmtInt(data.limit) + " of " +
      fmtInt(p.chars) + " characters" : "";
    byId("pb-gold").textContent = p.gold;
    byId("pb-pid").textContent = p.id + (p.task ? " (" + p.task + ")" : "");
    fillPanel(byId("pb-left"), data.reference + " (reference)", tracesOf(data, s.recipe, data.reference)[p.id],
      data.limit, data.note);
    fillPanel(byId("pb-right"), s.variant, tracesOf(data, s.recipe, s.variant)[p.id], data.limit, data.note);
    byId("pb-status").textContent = "";
  }

  function show() {
    var status = byId("pb-status");
    if (status.textContent === "") { status.textContent = "loading traces…"; }
    loadData().then(render, function (err) { status.textContent = "cannot load the traces: " + err.message; });
  }

  function step(delta) {
    var select = byId("pb-problem");
    var opts = Array.prototype.filter.call(select.options, function (o) { return !o.hidden; });
    var at = opts.findIndex(function (o) { return o.value === select.value; });
    var next = opts[Math.min(opts.length - 1, Math.max(0, at + delta))];
    if (next) { select.value = next.value; show(); }
  }

  function setupBrowser() {
    var root = byId("browser");
    if (!root || !byId("browser-data")) { return; }
    ["pb-problem", "pb-variant", "pb-recipe", "pb-differ"].forEach(function (id) {
      byId(id).addEventListener("change", show);
    });
    byId("pb-prev").addEventListener("click", function () { step(-1); });
    byId("pb-next").addEventListener("click", function () { step(1); });
    /* decompress only when the browser is first used or scrolled into view */
    if ("IntersectionObserver" in window) {
      var seen = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) { seen.disconnect(); show(); }
      });
      seen.observe(root);
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    makeSortable();
    setupBrowser();
    drawPlots();
  });
})();
