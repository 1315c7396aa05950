// The campaign page's live generation round (templates/design/campaign_detail.html): while a
// round is queued or running, poll its status (#generation's data-url) and show it; reload the
// page once it finishes, so the new candidates appear. A static file: the site's CSP allows no
// inline script.
(function () {
  var box = document.getElementById("generation");
  if (!box || box.dataset.live !== "1") return;
  function poll() {
    fetch(box.dataset.url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (s) {
      var r = s.round;
      if (r) {
        document.getElementById("round-status").textContent = r.status_display;
        document.getElementById("round-message").textContent = r.message;
        var bar = document.getElementById("round-progress");
        if (bar) { bar.value = r.progress; bar.textContent = Math.round(100 * r.progress) + " %"; }
        document.getElementById("round-error").textContent = r.error;
        if (r.finished) { window.location.reload(); return; }
      }
      setTimeout(poll, 1500);
    }).catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1000);
})();
