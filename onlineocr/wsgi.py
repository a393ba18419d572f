"""WSGI entry point used by uWSGI and the development server."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "onlineocr.settings")

application = get_wsgi_application()

if os.environ.get("OCR_WARM_UP") == "1":
    # uWSGI loads this module in each worker after fork (lazy-apps): load every
    # engine's models here, so no user's request pays for it.
    from app.engines import registry

    registry.warm_up()
