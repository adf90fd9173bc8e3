/* Kubemate's page behaviour, kept out of the markup so that the Content-Security-Policy allows no inline script.
 *
 * - Forms marked data-confirm, and htmx buttons with hx-confirm, ask in the confirmation dialog
 *   (templates/htmx/confirm_modal.html) before they are sent: the question is the attribute's value, where
 *   "{field}" is replaced by the value of the form's field of that name; a <template data-confirm-detail>
 *   inside the form or button says what will change; data-confirm-password asks for the password (dangerous
 *   capabilities); data-confirm-button names the confirm button; data-confirm-danger makes it red. The reason
 *   typed there is sent as the field "reason" (kept in the audit row), the password as "password".
 * - An error answer that carries a sentence (header X-Kubemate-Sentence, e.g. "what you sent is too large")
 *   is shown where the result would have gone; htmx would otherwise drop 4xx answers silently.
 */
(function () {
  "use strict";

  var pending = null;

  // Bootstrap's components come with Tabler's bundle (window.tabler.bootstrap).
  function bootstrapModal(element) {
    var bs = (window.tabler && window.tabler.bootstrap) || window.bootstrap;
    return bs && bs.Modal ? bs.Modal.getOrCreateInstance(element) : null;
  }

  function fill(question, form, submitter) {
    return question.replace(/\{([a-z_]+)\}/g, function (whole, name) {
      if (submitter && submitter.name === name) return submitter.value;
      var field = form && form.elements ? form.elements.namedItem(name) : null;
      return field && "value" in field ? field.value : whole;
    });
  }

  function ask(element, question, proceed, submitter) {
    var modal = document.getElementById("confirm-modal");
    if (!modal || !bootstrapModal(modal)) {
      if (window.confirm(question)) proceed({});
      return;
    }
    var form = element.tagName === "FORM" ? element : element.form;
    modal.querySelector("[data-testid=confirm-question]").textContent = fill(question, form, submitter);
    var detail = element.querySelector("template[data-confirm-detail]");
    var changes = modal.querySelector("[data-confirm-changes]");
    var target = modal.querySelector("[data-confirm-detail-target]");
    target.replaceChildren();
    if (detail) target.appendChild(detail.content.cloneNode(true));
    changes.classList.toggle("d-none", !detail);
    var needsPassword = element.hasAttribute("data-confirm-password");
    modal.querySelector("[data-confirm-password-block]").classList.toggle("d-none", !needsPassword);
    var password = modal.querySelector("#confirm-password");
    password.required = needsPassword;
    password.value = "";
    modal.querySelector("#confirm-reason").value = "";
    var ok = modal.querySelector("[data-confirm-ok]");
    ok.textContent = element.dataset.confirmButton || ok.dataset.labelDefault;
    var danger = element.hasAttribute("data-confirm-danger");
    ok.classList.toggle("btn-danger", danger);
    ok.classList.toggle("btn-primary", !danger);
    modal.querySelector("[data-confirm-status]").className = "modal-status " + (danger ? "bg-danger" : "bg-warning");
    pending = { proceed: proceed, needsPassword: needsPassword };
    var dialog = bootstrapModal(modal);
    opening = true;
    modal.addEventListener("shown.bs.modal", function () {
      opening = false;
      (needsPassword ? password : modal.querySelector("#confirm-reason")).focus();
    }, { once: true });
    dialog.show();
  }

  // Bootstrap ignores a close while the dialog is still fading in: a Cancel pressed that early closes it as soon
  // as it has opened, instead of being lost.
  var opening = false;
  document.addEventListener("click", function (event) {
    var dismiss = event.target.closest && event.target.closest("#confirm-modal [data-bs-dismiss=modal]");
    if (!dismiss || !opening) return;
    var modal = document.getElementById("confirm-modal");
    modal.addEventListener("shown.bs.modal", function () { bootstrapModal(modal).hide(); }, { once: true });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.id === "confirm-form") {
      event.preventDefault();
      var modal = document.getElementById("confirm-modal");
      var values = { reason: modal.querySelector("#confirm-reason").value };
      if (pending && pending.needsPassword) values.password = modal.querySelector("#confirm-password").value;
      var run = pending;
      pending = null;
      bootstrapModal(modal).hide();
      if (run) run.proceed(values);
      return;
    }
    if (!form || !form.dataset || !form.dataset.confirm) return;
    if (form.kmConfirmed) {
      form.kmConfirmed = false;
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
    var submitter = event.submitter;
    ask(form, form.dataset.confirm, function (values) {
      Object.keys(values).forEach(function (name) {
        var input = form.querySelector("input[type=hidden][name=" + name + "][data-confirm-value]");
        if (!input) {
          input = document.createElement("input");
          input.type = "hidden";
          input.name = name;
          input.setAttribute("data-confirm-value", "");
          form.appendChild(input);
        }
        input.value = values[name];
      });
      form.kmConfirmed = true;
      if (form.requestSubmit) form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
      else form.submit();
    }, submitter);
  }, true);

  // htmx buttons with hx-confirm ask in the same dialog; the answers ride along as request parameters.
  document.addEventListener("htmx:confirm", function (event) {
    var question = event.detail.question;
    if (!question) return;
    event.preventDefault();
    var element = event.detail.elt;
    ask(element, question, function (values) {
      element.kmConfirmValues = values;
      event.detail.issueRequest(true);
    });
  });

  document.addEventListener("htmx:configRequest", function (event) {
    var element = event.detail.elt;
    if (element && element.kmConfirmValues) {
      Object.keys(element.kmConfirmValues).forEach(function (name) {
        event.detail.parameters[name] = element.kmConfirmValues[name];
      });
      element.kmConfirmValues = null;
    }
  });

  // Forms. A select with data-filter-by="<select id>" shows only the option group named like that select's
  // choice (the release form's namespaces, grouped by project). An input with data-follows-first="<testid>"
  // follows the first number typed in that field while it still holds the old one (probe ports follow the
  // first container port). An element with data-shown-when="<testid>=<value>" shows only while that field
  // has that value (the Gateway's free-text fields behind "another Gateway").
  function byTestId(id) {
    return document.querySelector("[data-testid=\"" + id + "\"]");
  }

  function firstNumber(text) {
    var match = /\d+/.exec(text || "");
    return match ? match[0] : "";
  }

  function filterGroups(select) {
    var source = byTestId(select.dataset.filterBy);
    if (!source) return;
    var chosen = source.selectedOptions.length ? source.selectedOptions[0].textContent.trim() : "";
    var firstVisible = null;
    Array.prototype.forEach.call(select.querySelectorAll("optgroup"), function (group) {
      var show = !source.value || group.label === chosen;
      group.hidden = !show;
      group.disabled = !show;
      if (show && !firstVisible) firstVisible = group.querySelector("option");
    });
    var current = select.selectedOptions[0];
    if (current && current.parentElement.tagName === "OPTGROUP" && current.parentElement.hidden && firstVisible) {
      firstVisible.selected = true;
    }
  }

  function showWhen(element) {
    var rule = element.dataset.shownWhen.split("=");
    var field = byTestId(rule[0]);
    element.hidden = !!field && rule[1].split("|").indexOf(field.value) < 0;  // "kind=a|b": shown for a or b
  }

  // A sign-in fieldset (Prometheus, Alertmanager) shows the fields of the kind of sign-in chosen only.
  function showAuthKind(fieldset) {
    var chosen = fieldset.querySelector("input[type=radio]:checked");
    fieldset.querySelectorAll("[data-auth-kind]").forEach(function (part) {
      part.hidden = !chosen || part.dataset.authKind !== chosen.value;
    });
  }

  function setUp(root) {
    root.querySelectorAll("[data-endpoint-auth]").forEach(showAuthKind);
    root.querySelectorAll("[data-filter-by]").forEach(filterGroups);
    root.querySelectorAll("[data-shown-when]").forEach(showWhen);
    root.querySelectorAll("[data-follows-first]").forEach(function (input) {
      var source = byTestId(input.dataset.followsFirst);
      if (source && !input.dataset.following) {
        input.dataset.following = input.value === firstNumber(source.value) ? "yes" : "no";
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  document.addEventListener("htmx:load", function (event) { setUp(event.target); });

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (!target || !target.dataset) return;
    if (target.dataset.followsFirst) target.dataset.following = "no";  // typed by hand: stop following
    var id = target.dataset.testid;
    if (!id) return;
    document.querySelectorAll("[data-follows-first=\"" + id + "\"]").forEach(function (input) {
      var first = firstNumber(target.value);
      if (input.dataset.following === "yes" && first) {
        input.value = first;
        input.classList.add("is-valid");
      }
    });
  });

  // Choosing a namespace chooses its project too (the group its option sits in).
  function followGroup(select) {
    var source = byTestId(select.dataset.filterBy);
    var chosen = select.selectedOptions[0];
    if (!source || !chosen || chosen.parentElement.tagName !== "OPTGROUP") return;
    var label = chosen.parentElement.label;
    Array.prototype.forEach.call(source.options, function (option) {
      if (option.textContent.trim() === label && !option.selected) {
        option.selected = true;
        source.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
  }

  document.addEventListener("change", function (event) {
    var id = event.target && event.target.dataset ? event.target.dataset.testid : "";
    if (event.target && event.target.dataset && event.target.dataset.filterBy) followGroup(event.target);
    var auth = event.target && event.target.closest ? event.target.closest("[data-endpoint-auth]") : null;
    if (auth) showAuthKind(auth);
    if (!id) return;
    document.querySelectorAll("[data-filter-by=\"" + id + "\"]").forEach(filterGroups);
    document.querySelectorAll("[data-shown-when^=\"" + id + "=\"]").forEach(showWhen);
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.status >= 400 && xhr.getResponseHeader("X-Kubemate-Sentence")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
