/* Live progress of background jobs, for pages without inline scripts (a CSP is coming).
 *
 * Any element with data-job-url="/api/jobs/<kind>/<id>/" is polled (core/api_jobs.py) and its
 * children updated: .job-status (text), .job-message (text), .job-progress (<progress> value),
 * .job-percent (text), .job-error (text, shown when not empty). When the job has finished the
 * element gets data-job-finished="<status>"; with data-job-reload="1" the page reloads so the
 * server can show the outcome (e.g. the new active model and its "Design candidates" link).
 */
(function () {
  "use strict";

  var POLL_MS = 2000, RETRY_MS = 5000;

  function setText(box, selector, text) {
    var el = box.querySelector(selector);
    if (el) { el.textContent = text; }
    return el;
  }

  function show(box, job) {
    setText(box, ".job-status", job.status_display || job.status);
    if (job.message) { setText(box, ".job-message", job.message); }
    var fraction = Math.max(0, Math.min(1, Number(job.progress) || 0));
    var bar = box.querySelector(".job-progress");
    if (bar) { bar.value = fraction; bar.textContent = Math.round(100 * fraction) + " %"; }
    setText(box, ".job-percent", Math.round(100 * fraction) + " %");
    var error = setText(box, ".job-error", job.error || "");
    if (error) { error.hidden = !job.error; }
  }

  function follow(box) {
    var url = box.getAttribute("data-job-url");
    function poll() {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (job) {
          show(box, job);
          if (job.finished) {
            box.setAttribute("data-job-finished", job.status);
            if (box.getAttribute("data-job-reload") === "1") { window.location.reload(); }
            return;
          }
          window.setTimeout(poll, POLL_MS);
        })
        .catch(function () { window.setTimeout(poll, RETRY_MS); });
    }
    window.setTimeout(poll, 500);
  }

  function start() {
    var boxes = document.querySelectorAll("[data-job-url]");
    for (var i = 0; i < boxes.length; i++) { follow(boxes[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
