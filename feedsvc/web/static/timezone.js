// The preferences page, enhanced: offer the browser's own time zone as a one-press choice.
// Without JavaScript the page works the same (a <select> of every zone). Served as
// /_feedsvc/timezone.js; the page's CSP allows scripts from the site itself only.
(function () {
  "use strict";
  var select = document.getElementById("timezone");
  var offer = document.getElementById("timezone-guess");
  if (!select || !offer || !window.Intl) return;
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!zone || select.value === zone) return;
  var listed = Array.prototype.some.call(select.options, function (option) {
    return option.value === zone;
  });
  if (!listed) return;
  var button = offer.querySelector("button");
  button.textContent = offer.getAttribute("data-label").replace("%(zone)s", zone);
  button.addEventListener("click", function () {
    select.value = zone;
    offer.hidden = true;
    select.focus();
  });
  offer.hidden = false;
})();
