/* The batch form's source list (templates/mining/batch_form.html): the filter box hides the
 * sources whose number, title or DOI does not contain what is typed (ticked ones stay shown). */
(function () {
  "use strict";

  function start() {
    var box = document.getElementById("source-filter");
    if (!box) { return; }
    var items = Array.prototype.slice.call(document.querySelectorAll(".source-choice"));
    var count = document.getElementById("source-count");
    box.addEventListener("input", function () {
      var words = box.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
      items.forEach(function (li) {
        var text = li.getAttribute("data-search") || "", ticked = li.querySelector("input:checked");
        var match = ticked || words.every(function (w) { return text.indexOf(w) !== -1; });
        li.hidden = !match;
        if (match) { shown += 1; }
      });
      if (count) { count.textContent = shown; }
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
