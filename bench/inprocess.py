"""Set Django up inside a benchmark process: its own SQLite file and media folder in /tmp,
migrated, so a run never touches the developer's data. Environment variables win."""

import os
import sys
from pathlib import Path


def setup(name: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onlineocr.settings")
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DATABASE_URL", f"sqlite:////tmp/onlineocr-bench-{name}.sqlite3")
    os.environ.setdefault("DJANGO_MEDIA_ROOT", f"/tmp/onlineocr-bench-{name}-media")
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
    # A bench sends far more than a user's 120 reads a minute: it measures reading, not the rate.
    os.environ.setdefault("OCR_USER_THROTTLE", "")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
