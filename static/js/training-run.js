/* Live progress of a training run on the Models pages (was inline; a CSP is coming).
 *
 * #run-status[data-url] (templates/ml/run_detail.html): status, phase, epoch, bar and error are
 * updated from ml:run_status; the page reloads when the run has finished (the server then shows
 * the outcome, the metrics and, for a refusal, what to do).
 * #live-progress[data-url] (templates/ml/model_list.html): one line of status; reload at the end.
 */
(function () {
  "use strict";

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value; }
  }

  function follow(url, update) {
    function poll() {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
        .then(function (s) {
          update(s);
          if (s.finished) { window.location.reload(); return; }
          window.setTimeout(poll, 2000);
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 1000);
  }

  function start() {
    var box = document.getElementById("run-status");
    if (box && box.getAttribute("data-finished") !== "1" && box.getAttribute("data-url")) {
      follow(box.getAttribute("data-url"), function (s) {
        text("status-text", s.status_display);
        text("phase", s.phase);
        text("epoch", s.total_epochs ? "epoch " + s.epoch + "/" + s.total_epochs : "");
        var bar = document.getElementById("progress");
        if (bar) { bar.value = s.progress; bar.textContent = Math.round(100 * s.progress) + " %"; }
        text("error", s.error);
      });
    }
    var cell = document.getElementById("live-progress");
    if (cell && cell.getAttribute("data-url")) {
      follow(cell.getAttribute("data-url"), function (s) {
        cell.textContent = s.status_display + " — " + s.phase + (s.total_epochs ? " " + s.epoch + "/" + s.total_epochs : "");
      });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
