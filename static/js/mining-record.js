/* The record page (templates/mining/record_detail.html): review keys and the K/°C toggle of
 * the editor. A static file, not an inline script, for the site's strict Content-Security-Policy.
 *
 * Keys: j/k next/previous record, a approve, r reject (focuses the reason), e edit the composition.
 * The toggle: switching between K and °C converts the Tg, Tx and Tl typed so far (T(K) = T(°C) +
 * 273.15), so what is sent is always in the unit ticked; the server converts to K
 * (ml.rules.to_kelvin) and its messages echo the values in the unit typed.
 */
(function () {
  "use strict";

  var OFFSET = 273.15, FIELDS = ["id_tg_k", "id_tx_k", "id_tl_k"];

  function onKey(e) {
    if (/INPUT|SELECT|TEXTAREA/.test(e.target.tagName) || e.ctrlKey || e.metaKey || e.altKey) { return; }
    var go = function (id) { var a = document.getElementById(id); if (a) { window.location = a.href; } };
    if (e.key === "j") { go("next"); }
    else if (e.key === "k") { go("prev"); }
    else if (e.key === "a") { var b = document.getElementById("approve-btn"); if (b) { b.click(); } }
    else if (e.key === "r") { var f = document.getElementById("reject-form"); if (f) { e.preventDefault(); f.reason.focus(); } }
    else if (e.key === "e") { var c = document.getElementById("id_composition_raw"); if (c) { e.preventDefault(); c.focus(); } }
  }

  function round(x) { return String(Math.round(x * 100) / 100); }

  function setUpToggle() {
    var box = document.getElementById("unit-toggle");
    if (!box) { return; }
    var radios = box.querySelectorAll("input[type=radio]");
    var current = (box.querySelector("input[type=radio]:checked") || {}).value || "K";
    function relabel(unit) {
      var labels = document.querySelectorAll("[data-unit-label]");
      for (var i = 0; i < labels.length; i++) { labels[i].textContent = unit === "C" ? "°C" : "K"; }
    }
    function change(e) {
      var unit = e.target.value;
      if (unit === current) { return; }
      FIELDS.forEach(function (id) {
        var input = document.getElementById(id);
        if (!input || input.value.trim() === "") { return; }
        var value = Number(input.value);
        if (!isFinite(value)) { return; }  // left as typed: the server names the problem
        input.value = round(unit === "C" ? value - OFFSET : value + OFFSET);
      });
      current = unit;
      relabel(unit);
    }
    for (var i = 0; i < radios.length; i++) { radios[i].addEventListener("change", change); }
    relabel(current);
  }

  function start() {
    document.addEventListener("keydown", onKey);
    setUpToggle();
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
