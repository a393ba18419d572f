from django.apps import AppConfig


class OcrAppConfig(AppConfig):
    name = "app"
    verbose_name = "OCR"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from app import signals  # noqa: F401  (connects the file-cleanup receivers)
