from django.contrib import admin

from apps.compliance.models import SyslogDestination
from apps.core.admin import AuditedAdmin


@admin.register(SyslogDestination)
class SyslogDestinationAdmin(AuditedAdmin):
    list_display = ("name", "host", "port", "transport", "format", "enabled", "cursor", "delivered_at", "failing_since")
    # The cursor and the delivery state are the forwarder's: an edit here must not skip or repeat events.
    readonly_fields = ("cursor", "delivered_at", "failing_since", "last_error", "created_at", "updated_at")
