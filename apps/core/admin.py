from django.contrib import admin

from apps.core.models import Job, JobLogLine


class JobLogLineInline(admin.TabularInline):
    model = JobLogLine
    extra = 0
    readonly_fields = ("created_at", "level", "message")
    can_delete = False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("title", "kind", "status", "progress", "actor", "target", "created_at", "finished_at")
    list_filter = ("status", "kind")
    search_fields = ("title", "target", "actor__username")
    readonly_fields = [f.name for f in Job._meta.fields]
    inlines = [JobLogLineInline]

    def has_add_permission(self, request):
        return False
