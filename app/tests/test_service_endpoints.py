"""Schema and docs (offline), engines, health, admin, settings safety."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from drf_spectacular.generators import SchemaGenerator

from app.tests.factories import UserFactory
from app.tests.responses import assert_error

ROOT = Path(__file__).resolve().parents[2]


def test_schema_generates_without_warnings_and_covers_every_endpoint():
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", os.devnull],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_DEBUG": "0"},
    )
    assert result.returncode == 0, result.stderr
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert set(paths) >= {
        "/api/register/",
        "/api/token_obtain_pair/",
        "/api/token_refresh/",
        "/api/ocr/",
        "/api/history/",
        "/api/history/{id}/",
        "/api/history/{id}/image/",
        "/api/engines/",
        "/api/health/",
    }
    ocr = paths["/api/ocr/"]["post"]
    assert set(ocr["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert {"201", "400", "413", "503"} <= set(ocr["responses"])


@pytest.mark.parametrize("url", ["/docs/", "/redoc/", "/api/schema/"])
def test_docs_are_served_without_login(anon, db, url):
    response = anon.get(url)
    assert response.status_code == 200


def test_swagger_ui_assets_come_from_our_own_static_files(anon, db):
    html = anon.get("/docs/").content.decode()
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    asset = anon.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200


def test_engines_lists_all_four_with_languages_and_tasks(anon, db):
    engines = {engine["name"]: engine for engine in anon.get("/api/engines/").json()}
    assert set(engines) == {"tesseract", "rapidocr", "ddddocr", "zxing"}
    assert all(engine["available"] and engine["version"] for engine in engines.values())
    assert {"eng", "chi_sim"} <= set(engines["tesseract"]["languages"])
    assert engines["ddddocr"]["tasks"] == ["text", "math", "detect"]
    assert engines["rapidocr"]["tasks"] == ["document", "idcard", "line"]
    assert engines["zxing"]["tasks"] == ["barcode"]


def test_engines_shows_a_missing_engine_with_its_reason(anon, db, monkeypatch):
    monkeypatch.setenv("TESSDATA_PREFIX", "/nonexistent/tessdata")  # no language packs
    tesseract = next(e for e in anon.get("/api/engines/").json() if e["name"] == "tesseract")
    assert tesseract["available"] is False
    assert "tesseract-ocr" in tesseract["reason"]


def test_health_reports_database_and_engines(anon, db):
    response = anon.get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "engines": {"tesseract": True, "rapidocr": True, "ddddocr": True, "zxing": True},
    }


def test_health_is_503_when_the_database_is_down(anon, db, monkeypatch):
    def refuse():
        raise connection.Database.OperationalError("connection refused")

    with monkeypatch.context() as patch:  # undone before the test database is torn down
        patch.setattr(connection, "ensure_connection", refuse)
        response = anon.get("/api/health/")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["database"].startswith("error")


def test_unknown_api_url_is_a_json_404(anon, db):
    response = anon.get("/api/nothing-here/")
    assert_error(response, 404, "not_found")


def test_admin_lists_records_for_staff_and_refuses_others(client, record_factory):
    staff = UserFactory(is_staff=True, is_superuser=True)
    record_factory(text="Quarterly report total", file_name="q3.png")
    client.force_login(UserFactory())
    assert client.get("/admin/app/ocrrecord/").status_code == 302  # to the login page
    client.force_login(staff)
    page = client.get("/admin/app/ocrrecord/?q=quarterly")
    assert page.status_code == 200
    assert b"q3.png" in page.content
    assert b"Quarterly report total" in page.content


def settings_error(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**clean, "DJANGO_SETTINGS_MODULE": "onlineocr.settings", **env},
    )
    return result.stderr if result.returncode else ""


def test_settings_refuse_to_start_without_a_secret_key():
    assert "DJANGO_SECRET_KEY is not set" in settings_error()


def test_settings_refuse_the_development_key_in_production():
    from django.conf import settings

    assert "development secret key" in settings_error(DJANGO_SECRET_KEY=settings.DEV_SECRET_KEY)


def test_debug_is_off_by_default_and_a_dev_key_only_with_debug():
    from django.conf import settings

    assert settings.DEBUG is False
    assert settings_error(DJANGO_DEBUG="1") == ""
