/* Kubemate's page behaviour, kept out of the markup so that the Content-Security-Policy allows no inline script.
 *
 * - Forms marked data-confirm ask before they are sent (the text is the attribute's value).
 * - An error answer that carries a sentence (header X-Kubemate-Sentence, e.g. "what you sent is too large")
 *   is shown where the result would have gone; htmx would otherwise drop 4xx answers silently.
 */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status >= 400 && xhr.getResponseHeader("X-Kubemate-Sentence")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
