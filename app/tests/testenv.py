"""Loaded by pytest before Django's settings (pytest.ini: -p app.tests.testenv).

The suite runs with DEBUG off, like production; it only needs a secret key and
its own media folder so that tests never touch the developer's uploads.
"""

import os
import secrets
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-" + secrets.token_hex(32))
os.environ["DJANGO_MEDIA_ROOT"] = tempfile.mkdtemp(prefix="onlineocr-test-media-")
