/* Kubemate assistant (templates/ai/assistant/assistant.html): an answer still being written
 * ([data-pending][data-stream-url]) is read from its stream as the model writes it, piece by piece into the answer's
 * text with textContent (the model's words are never parsed as HTML); when the stream ends the answer's card is
 * fetched again (data-part-url: its citations, latency and cache badge as saved) and swapped in with htmx.
 * No inline script; without scripts the page links to the stream itself.
 */
(function () {
  "use strict";
  if (window.kubemateAssistant) return;
  window.kubemateAssistant = true;

  function refresh(card) {
    var url = card.getAttribute("data-part-url");
    if (window.htmx && url) {
      window.htmx.ajax("GET", url, { target: card, swap: "outerHTML" });
    } else {
      window.location.reload();
    }
  }

  function stream(card) {
    if (card.getAttribute("data-streaming")) return;
    card.setAttribute("data-streaming", "true");
    var out = card.querySelector(".answer-text");
    var url = card.getAttribute("data-stream-url");
    if (!out || !url || !window.fetch || !window.TextDecoder) return;
    out.textContent = "";
    out.classList.add("placeholder-glow");
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/plain" } })
      .then(function (response) {
        if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
        var reader = response.body.getReader();
        var decoder = new TextDecoder("utf-8");
        function pump() {
          return reader.read().then(function (step) {
            if (step.done) {
              out.textContent += decoder.decode();
              return;
            }
            out.classList.remove("placeholder-glow");
            out.textContent += decoder.decode(step.value, { stream: true });
            return pump();
          });
        }
        return pump();
      })
      .catch(function () { /* the saved state says what happened */ })
      .then(function () { refresh(card); });
  }

  function start(root) {
    (root || document).querySelectorAll("[data-pending][data-stream-url]").forEach(stream);
  }

  document.addEventListener("DOMContentLoaded", function () { start(document); });
  document.addEventListener("htmx:afterSettle", function (event) { start(event.target); });
})();
