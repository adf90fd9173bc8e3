/* The web terminal: xterm.js in #terminal, talking to the terminal service over a websocket
 * (apps/terminal/server.py): {"t":"in","d":...} and {"t":"resize","cols":...,"rows":...} out,
 * {"t":"out","d":...} and {"t":"end","end":...,"sentence":...} in. */
(function () {
  "use strict";

  function start() {
    var box = document.getElementById("terminal");
    if (!box || !window.Terminal) return;
    var state = document.querySelector("[data-testid=terminal-state]");
    var endLine = document.querySelector("[data-testid=terminal-end]");
    var term = new window.Terminal({ cursorBlink: true, fontSize: 13, scrollback: 5000, convertEol: false });
    var fit = window.FitAddon ? new window.FitAddon.FitAddon() : null;
    if (fit) term.loadAddon(fit);
    term.open(box);
    if (fit) fit.fit();
    term.focus();
    window.kubemateTerminal = term;  // tests read the screen through it

    function setState(name, label) {
      state.dataset.state = name;
      state.textContent = label;
      state.className = "badge " + (name === "open" ? "bg-green-lt" : name === "ended" ? "bg-secondary-lt" : "bg-red-lt");
    }

    var socket = new WebSocket(box.dataset.ws);
    function send(message) {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    }
    function resize() {
      if (fit) fit.fit();
      send({ t: "resize", cols: term.cols, rows: term.rows });
    }
    socket.addEventListener("open", function () {
      setState("open", box.dataset.labelOpen);
      resize();
    });
    socket.addEventListener("message", function (event) {
      var message = JSON.parse(event.data);
      if (message.t === "out") term.write(message.d);
      if (message.t === "end") {
        endLine.textContent = message.sentence;
        endLine.dataset.end = message.end;
      }
    });
    socket.addEventListener("close", function () {
      if (state.dataset.state === "connecting") setState("failed", box.dataset.labelFailed);
      else setState("ended", box.dataset.labelEnded);
      term.options.disableStdin = true;
    });
    term.onData(function (data) { send({ t: "in", d: data }); });
    window.addEventListener("resize", resize);
    document.querySelector("[data-terminal-close]").addEventListener("click", function () { socket.close(); });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
