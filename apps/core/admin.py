from django.contrib import admin
from django.db import transaction
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from apps.core import audit
from apps.core.models import Job, JobLogLine

# How many objects an admin action's audit event names; the count is always exact.
AUDITED_NAMES_MAX = 50


class AuditedAdmin(admin.ModelAdmin):
    """A Django admin page whose changes are audited like the console's: added, changed, deleted, and every
    admin action (``admin.<app>.<model>.<add|change|delete|action>``), by the signed-in person, in the
    transaction of the change. Users, groups, roles, projects and bindings are audited by their model
    signals (apps/accounts/changes.py), whichever page changes them."""

    def _record(self, request, verb: str, name: str = "", detail: dict | None = None) -> None:
        meta = self.model._meta
        audit.record(
            actor=request.user,
            action=f"admin.{meta.app_label}.{meta.model_name}.{verb}",
            kind=meta.object_name,
            name=name[:253],
            detail=detail,
            request=request,
        )

    def log_addition(self, request, obj, message):
        self._record(request, "add", str(obj), {"change": message})
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        self._record(request, "change", str(obj), {"change": message})
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            self._record(request, "delete", str(obj))
        return super().log_deletions(request, queryset)

    def get_actions(self, request):
        actions = super().get_actions(request)
        return {name: (self._audited(func, name), name, text) for name, (func, name, text) in actions.items()}

    def _audited(self, func, action_name: str):
        if action_name == "delete_selected":
            return func  # its confirmed deletions go through log_deletions

        def run(modeladmin, request, queryset):
            with transaction.atomic():
                names = [str(obj) for obj in queryset[:AUDITED_NAMES_MAX]]
                detail = {"admin_action": action_name, "count": queryset.count(), "objects": names}
                response = func(modeladmin, request, queryset)
                self._record(request, "action", action_name, detail)
            return response

        return run


class JobLogLineInline(admin.TabularInline):
    model = JobLogLine
    extra = 0
    readonly_fields = ("created_at", "level", "message")
    can_delete = False


@admin.register(Job)
class JobAdmin(AuditedAdmin):
    list_display = ("title", "kind", "status", "progress", "actor", "target", "created_at", "finished_at")
    list_filter = ("status", "kind")
    search_fields = ("title", "target", "actor__username")
    readonly_fields = [f.name for f in Job._meta.fields]
    inlines = [JobLogLineInline]

    def has_add_permission(self, request):
        return False


# The schedules (the RBAC reconcile among them) are edited in Django admin: audit those edits and actions too.
admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class AuditedPeriodicTaskAdmin(AuditedAdmin, PeriodicTaskAdmin):
    pass
