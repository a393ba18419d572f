from django.contrib import admin
from django.template.defaultfilters import truncatechars

from app.models import OcrRecord


@admin.register(OcrRecord)
class OcrRecordAdmin(admin.ModelAdmin):
    list_display = ["id", "file_name", "owner", "engine", "status", "excerpt", "duration_ms", "created_at"]
    list_filter = ["engine", "status", "created_at"]
    search_fields = ["text", "file_name", "owner__username"]
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
    readonly_fields = [
        "owner",
        "image",
        "file_name",
        "sha256",
        "size",
        "width",
        "height",
        "engine",
        "lang",
        "task",
        "status",
        "text",
        "lines",
        "extra",
        "error",
        "duration_ms",
        "created_at",
    ]

    @admin.display(description="text")
    def excerpt(self, record: OcrRecord) -> str:
        return truncatechars(record.text, 80)

    def has_add_permission(self, request) -> bool:
        return False  # records come from OCR requests, not from a form
