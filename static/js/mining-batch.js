/* The batch page's live status (templates/mining/batch_detail.html): polls the batch's
 * status.json every 2 s while it runs and reloads the page once it has finished. A static
 * file, not an inline script, for the site's strict Content-Security-Policy. */
(function () {
  "use strict";

  function start() {
    var box = document.getElementById("batch-status");
    if (!box || box.getAttribute("data-finished") === "1") { return; }
    function set(id, text) { var el = document.getElementById(id); if (el) { el.textContent = text; } }
    function poll() {
      fetch(box.getAttribute("data-url"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
        .then(function (s) {
          set("st-status", s.status_display || s.status);
          set("st-done", s.sources_done);
          set("st-total", s.sources_total);
          set("st-records", s.records_found);
          set("st-tokens", s.prompt_tokens + " prompt + " + s.completion_tokens + " completion");
          var bar = document.getElementById("st-bar");
          if (bar) { bar.max = Math.max(1, s.sources_total); bar.value = s.sources_done; }
          if (s.finished) { window.location.reload(); } else { window.setTimeout(poll, 2000); }
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 2000);
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
