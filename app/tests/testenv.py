"""Loaded by pytest before Django's settings (pytest.ini: -p app.tests.testenv).

The suite runs with DEBUG off, like production; it only needs a secret key and
its own media folder so that tests never touch the developer's uploads.
"""

import os
import secrets
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-" + secrets.token_hex(32))
os.environ["DJANGO_MEDIA_ROOT"] = tempfile.mkdtemp(prefix="onlineocr-test-media-")
# Jobs still run in-process (OCR_ASYNC is off), but the Celery app knows this broker from
# the start, so test_worker.py can switch to a real worker without re-plumbing the app.
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/9")
