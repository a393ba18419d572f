"""start.sh itself: the steps the Docker images run are the ones it runs here."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_sh(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["./start.sh", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "VENV": sys.prefix, **env},
        timeout=600,
    )


def test_install_is_idempotent_and_installs_nothing_twice():
    """dockerfile_base runs `./start.sh install`; on a machine that has everything it is a no-op."""
    result = start_sh("install")
    assert result.returncode == 0, result.stderr
    assert "apt-get install" not in result.stderr
    assert "pip install" not in result.stderr


def test_unknown_command_prints_usage():
    result = start_sh("frobnicate")
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_nginx_conf_renders_every_placeholder(tmp_path):
    """The rendered file is what nginx itself accepts (`nginx -t`)."""
    script = f"""
        set -e
        source <(sed -n '/^render_nginx_conf()/,/^}}/p' start.sh)
        log() {{ echo "$*" >&2; }}
        PORT=18080 RUN_DIR={tmp_path} UWSGI_SOCKET=127.0.0.1:18001 UWSGI_HARAKIRI=30
        DJANGO_STATIC_ROOT={tmp_path}/static DJANGO_MEDIA_ROOT={tmp_path}/media MAX_BODY_BYTES=1000
        render_nginx_conf {tmp_path}/nginx.conf
        nginx -t -e stderr -c {tmp_path}/nginx.conf
    """
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    rendered = (tmp_path / "nginx.conf").read_text()
    assert "listen 18080 default_server;" in rendered
    assert "client_max_body_size 1000;" in rendered
    assert "uwsgi_read_timeout 40s;" in rendered
    assert "test is successful" in result.stderr


TEST_PACKAGES = (
    "pytest",
    "pytest-django",
    "pytest-xdist",
    "factory-boy",
    "playwright",
    "pypdf",
    "moto",
    "schemathesis",
    "ruff",
)


def _requirement_names(path: Path) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {line.split("==")[0].split("[")[0].lower() for line in lines if line and not line.startswith("-r")}


def test_runtime_requirements_name_no_test_package():
    """The product image installs requirements.txt: no pytest, playwright, moto or schemathesis."""
    runtime = _requirement_names(ROOT / "requirements.txt")
    assert runtime.isdisjoint(TEST_PACKAGES), runtime & set(TEST_PACKAGES)
    dev = ROOT / "requirements-dev.txt"
    assert "-r requirements.txt" in dev.read_text().splitlines()
    assert set(TEST_PACKAGES) <= _requirement_names(dev)


def test_images_install_only_the_runtime_requirements():
    """`./start.sh install` (the base image's step) reads requirements.txt; only `test` reads the dev file."""
    script = (ROOT / "start.sh").read_text()
    install_branch = script.split("\n  install)\n", 1)[1].split(";;", 1)[0]
    assert "install_python\n" in install_branch  # no file argument: requirements.txt
    assert "install_python requirements-dev.txt" in script.split("\n  test)\n", 1)[1].split(";;", 1)[0]
    for dockerfile in ("dockerfile_base", "dockerfile_product"):
        runs = [line for line in (ROOT / dockerfile).read_text().splitlines() if "pip install" in line]
        assert not any("requirements-dev" in line for line in runs), dockerfile


def test_dockerignore_keeps_tests_and_benchmarks_out_of_the_image():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {"app/tests", "bench", ".ci", "docs"} <= ignored
