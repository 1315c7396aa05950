/* The review queue's keys (templates/mining/review_queue.html): j/k move the current row, e opens
 * it, a approves it, r rejects it (asks a reason). A static file, not an inline script, for the
 * site's strict Content-Security-Policy; the current row's outline is set here, not in a <style>. */
(function () {
  "use strict";

  function start() {
    var rows = Array.prototype.slice.call(document.querySelectorAll(".qrow")), i = 0;
    function show() {
      rows.forEach(function (r, j) {
        r.classList.toggle("current", j === i);
        r.style.outline = j === i ? "2px solid var(--accent)" : "";
      });
      if (rows[i]) { rows[i].scrollIntoView({block: "nearest"}); }
    }
    document.addEventListener("keydown", function (e) {
      if (!rows.length || /INPUT|SELECT|TEXTAREA/.test(e.target.tagName) || e.ctrlKey || e.metaKey || e.altKey) { return; }
      var row = rows[i];
      if (e.key === "j") { i = Math.min(rows.length - 1, i + 1); show(); }
      else if (e.key === "k") { i = Math.max(0, i - 1); show(); }
      else if (e.key === "e") { window.location = row.getAttribute("data-edit"); }
      else if (e.key === "a") { var f = row.querySelector("form.js-approve"); if (f) { f.submit(); } }
      else if (e.key === "r") {
        var g = row.querySelector("form.js-reject");
        if (g) { var why = window.prompt("Reason to reject?"); if (why) { g.reason.value = why; g.submit(); } }
      }
    });
    show();
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
