// The admin export page's "Select all" box (django-import-export) calls its handler from an
// inline onchange attribute, which a strict script-src blocks; the template cuts the attribute
// and the handler is bound here instead.
document.addEventListener("DOMContentLoaded", function () {
  if (typeof onSelectToggleChange !== "function") return;
  document.querySelectorAll("input.select-toggle").forEach(function (box) {
    box.addEventListener("change", onSelectToggleChange);
  });
});
