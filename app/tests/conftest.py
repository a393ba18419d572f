from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from app.tests.factories import OcrRecordFactory, UserFactory


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """Throttle counters live in the cache; each test starts with none."""
    cache.clear()


@pytest.fixture(autouse=True)
def _own_media_root(settings, tmp_path):
    """Each test writes uploads to its own folder, so leftovers are its own."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def other_user(db):
    return UserFactory()


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def api(user) -> APIClient:
    """An API client authenticated as `user` with a real JWT."""
    return client_for(user)


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def record_factory(db):
    return OcrRecordFactory


@pytest.fixture
def media_files():
    """A function listing every file under MEDIA_ROOT, to prove nothing was left behind."""
    root = Path(settings.MEDIA_ROOT)

    def files() -> set[Path]:
        return {path for path in root.rglob("*") if path.is_file()}

    return files
