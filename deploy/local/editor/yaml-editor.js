/* The object editor's YAML field: CodeMirror 6 with YAML highlighting, line numbers, folding and the error the
 * server reported shown at its line. Bundled by deploy/local/vendor-assets (esbuild) into
 * static/vendor/codemirror/yaml-editor.js; nothing is fetched at run time.
 *
 * A <textarea data-yaml-editor> becomes the editor; the textarea stays in the form (hidden) and follows every
 * change, so the form posts it as before and the server-side dry run and diff are unchanged. After htmx swaps an
 * answer in, an element with data-error-line="N" (and its text as the message) marks line N. */
import { basicSetup, EditorView } from "codemirror";
import { yaml } from "@codemirror/lang-yaml";
import { lintGutter, setDiagnostics } from "@codemirror/lint";

const editors = new Map();

function mount(textarea) {
  if (editors.has(textarea)) return editors.get(textarea);
  const view = new EditorView({
    doc: textarea.value,
    extensions: [
      basicSetup,
      yaml(),
      lintGutter(),
      EditorView.lineWrapping,
      EditorView.updateListener.of((update) => {
        if (update.docChanged) {
          textarea.value = update.state.doc.toString();
          view.dispatch(setDiagnostics(update.state, []));
        }
      }),
      EditorView.theme({ "&": { fontSize: "13px", border: "1px solid var(--tblr-border-color)" }, ".cm-scroller": { minHeight: "60vh", maxHeight: "75vh" } }),
    ],
  });
  textarea.hidden = true;
  textarea.insertAdjacentElement("afterend", view.dom);
  view.dom.setAttribute("data-testid", "yaml-editor");
  editors.set(textarea, view);
  window.kubemateYamlEditor = view; // the browser tests type through it
  return view;
}

function markError(view, lineNumber, message) {
  const doc = view.state.doc;
  if (!lineNumber || lineNumber < 1 || lineNumber > doc.lines) return;
  const line = doc.line(lineNumber);
  view.dispatch(setDiagnostics(view.state, [{ from: line.from, to: Math.max(line.to, line.from), severity: "error", message }]));
  view.dispatch({ effects: EditorView.scrollIntoView(line.from, { y: "center" }) });
}

function setUp(root) {
  root.querySelectorAll("textarea[data-yaml-editor]").forEach(mount);
}

document.addEventListener("DOMContentLoaded", () => setUp(document));
document.addEventListener("htmx:afterSwap", (event) => {
  setUp(event.target);
  const marked = event.target.querySelector("[data-error-line]");
  if (!marked) return;
  for (const view of editors.values()) markError(view, Number(marked.dataset.errorLine), marked.textContent.trim());
});
