"""The admin: every user's records for staff, read-only, with thumbnails and a CSV export;
the user list with each user's record count."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import truncatechars
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from app import export, media, services
from app.models import ApiKey, OcrRecord
from app.web.throttle import throttled_posts

# The admin's log-in form counts in the same per-address sign-in bucket as the API and the
# pages (OCR_AUTH_THROTTLE): it guards the most powerful accounts. AdminSite.get_urls reads
# `self.login` when the URLs are built, after this module is imported by autodiscover.
admin.site.login = throttled_posts(admin.site.login)


@admin.register(OcrRecord)
class OcrRecordAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["css/admin.css"]}  # the thumbnails' rules: no style attributes under the CSP

    list_display = [
        "thumbnail",
        "id",
        "file_name",
        "owner",
        "engine",
        "status",
        "excerpt",
        "duration_ms",
        "created_at",
    ]
    list_display_links = ["thumbnail", "id", "file_name"]
    list_filter = ["engine", "status", "created_at"]
    search_fields = ["text", "file_name", "owner__username"]
    date_hierarchy = "created_at"
    list_select_related = ["owner"]
    actions = ["export_csv"]
    # Everything is read-only. The file is shown by name and as a preview: a link to its
    # /media/ URL would be a 404, since uploads are only served after an owner check.
    fields = readonly_fields = [
        "preview",
        "owner",
        "stored_file",
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

    def has_add_permission(self, request) -> bool:
        return False  # records come from OCR requests, not from a form

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a record is evidence of what the engine read: view, export or delete it

    # ---- the image, for staff only ------------------------------------------------

    def get_urls(self):
        image = path(
            "<int:pk>/image/",
            self.admin_site.admin_view(self.image_view),
            name="app_ocrrecord_image",
        )
        return [image, *super().get_urls()]

    def image_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Any record's image, for staff who may view records (admin_view checks is_staff)."""
        record = get_object_or_404(OcrRecord, pk=pk)
        if not (request.user.is_staff and self.has_view_permission(request, record)):
            raise PermissionDenied
        return media.image_response(record)

    @admin.display(description="image")
    def thumbnail(self, record: OcrRecord) -> str:
        return format_html(
            '<img src="{}" alt="" loading="lazy" width="72" height="48" class="ocr-thumb">',
            reverse("admin:app_ocrrecord_image", args=[record.pk]),
        )

    @admin.display(description="image preview")
    def preview(self, record: OcrRecord) -> str:
        return format_html(
            '<img src="{}" alt="" class="ocr-preview">',
            reverse("admin:app_ocrrecord_image", args=[record.pk]),
        )

    @admin.display(description="stored as")
    def stored_file(self, record: OcrRecord) -> str:
        return record.image.name

    @admin.display(description="text")
    def excerpt(self, record: OcrRecord) -> str:
        return format_html(
            '<span class="ocr-excerpt">{}</span>',
            truncatechars(record.text, 70),
        )

    # ---- export --------------------------------------------------------------------

    @admin.action(description="Export selected as CSV")
    def export_csv(self, request: HttpRequest, queryset) -> StreamingHttpResponse:
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response = StreamingHttpResponse(
            export.csv_lines(queryset.order_by("id")), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="ocr-records-{stamp}.csv"'
        return response


# ---- users, with how many records each has ------------------------------------------

User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserWithRecordsAdmin(UserAdmin):
    list_display = [*UserAdmin.list_display, "record_count"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(record_count=Count("ocr_records"))

    @admin.display(description="records", ordering="record_count")
    def record_count(self, user) -> int:
        return user.record_count


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are seen and revoked here, never made: only their owner sees a key, once."""

    list_display = [
        "name",
        "owner",
        "prefix",
        "active",
        "usage_count",
        "last_used_at",
        "created_at",
        "revoked_at",
    ]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "owner__username"]
    list_select_related = ["owner"]
    readonly_fields = ["owner", "name", "prefix", "key_hash", "usage_count", "last_used_at", "created_at"]
    actions = ["revoke"]

    @admin.display(boolean=True)
    def active(self, api_key: ApiKey) -> bool:
        return api_key.active

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset) -> None:
        for api_key in queryset:
            services.revoke_api_key(api_key=api_key)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
