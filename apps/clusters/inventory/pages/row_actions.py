"""The actions cell of a list's rows: who may do what is decided once per namespace (``RowActions``), and each kind
of button is rendered once per page from templates/clusters/inventory/_row_action.html with stand-ins, which each
row then fills with its own escaped URLs and confirmation.

A page of 50 pods has 200 buttons; rendering the template for each cost a third of the page's time.
"""

from __future__ import annotations

import html
import re

from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe

from apps.clusters.actions.registry import Action, Button, RowActions
from apps.core.reauth import needs_password

TEMPLATE = "clusters/inventory/_row_action.html"
# NUL cannot be in a Kubernetes name, a URL the console builds, or a translation, and escaping keeps it: the stand-ins
# are found in one pass, so a row's own text is never searched again for another stand-in.
_STANDIN = "\x00{}\x00"
_FIELD = re.compile("\x00(url|row_url|confirm)\x00")


class ActionCells:
    """``cell(row)``: the HTML of one row's action buttons (``row.url`` is the object's page, for the scale link)."""

    def __init__(self, request, cluster, kind: str):
        self.request = request
        self.actions = RowActions(request.user, cluster, kind)
        self._template = get_template(TEMPLATE)
        self._shapes: dict[tuple[str, bool], str] = {}
        self._password = None

    def buttons(self, namespace: str, name: str, summary: dict | None) -> list[Button]:
        """The row's buttons: those that post or link (the scale form stays on the object's page)."""
        return [
            button
            for button in self.actions(namespace, name, summary)
            if button.action.widget in ("link", "post") or button.action.name == "scale"
        ]

    def _shape(self, action: Action, confirm: bool) -> str:
        key = (action.name, confirm)
        found = self._shapes.get(key)
        if found is None:
            if self._password is None:
                self._password = bool(
                    self.request.user.is_authenticated
                    and hasattr(self.request, "session")
                    and needs_password(self.request)
                )
            context = {
                "action": action,
                "url": _STANDIN.format("url"),
                "row_url": _STANDIN.format("row_url"),
                "confirm": _STANDIN.format("confirm") if confirm else "",
                "needs_password": self._password,
            }
            # No request: the context processors are not needed for one button, and the language is already active.
            found = self._shapes[key] = self._template.render(context).strip()
        return found

    def cell(self, buttons: list[Button], row_url: str) -> SafeString:
        # html.escape is what Django's escape() runs, without its check for lazy strings on every call.
        parts, row_url = [], html.escape(row_url)
        for button in buttons:
            values = {"url": html.escape(button.url), "row_url": row_url, "confirm": html.escape(button.confirm)}
            shape = self._shape(button.action, bool(button.confirm))
            parts.append(_FIELD.sub(lambda m, values=values: values[m.group(1)], shape))
        return mark_safe("".join(parts))  # noqa: S308 - the template's own output, with escaped values put in
