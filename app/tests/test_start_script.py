"""start.sh itself: the steps the Docker images run are the ones it runs here."""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.tests.processes import free_port
from app.tests.stack import OWN_PREFIXES, python_revealed

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


def _serve(tmp_path: Path, root: Path = ROOT, **settings: str) -> tuple[int | None, str]:
    """`start.sh serve` as the stack tests run it (own database, ports and run folder), for a
    start that is expected to stop before uWSGI and nginx come up: its exit status and output.
    If it comes up anyway it is stopped at once, and the status is None."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)},
        "VENV": sys.prefix,
        "PORT": str(free_port()),
        "RUN_DIR": str(tmp_path / "run"),
        "UWSGI_SOCKET": f"127.0.0.1:{free_port()}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        **settings,
    }
    process = subprocess.Popen(
        [*python_revealed(tmp_path), str(root / "start.sh"), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    watchdog = threading.Timer(300, os.killpg, (process.pid, signal.SIGKILL))
    watchdog.start()
    output, status = [], None
    try:
        for line in process.stdout:
            output.append(line)
            if "==> serving on" in line:
                break
        else:
            status = process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
    return status, "".join(output)


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder every user may enter (pytest's own temp folders are 0700)."""
    base = Path(tempfile.mkdtemp(prefix="onlineocr-serve-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_plain_http_without_saying_so_is_refused_with_the_way_to_say_so(open_tmp):
    """Turning the four TLS settings off one by one fails `check --deploy`; the message names
    the switch that makes a plain-http deployment deliberate."""
    status, output = _serve(
        open_tmp,
        DJANGO_BEHIND_TLS_PROXY="0",
        DJANGO_SECURE_COOKIES="0",
        DJANGO_SECURE_SSL_REDIRECT="0",
        DJANGO_HSTS_SECONDS="0",
    )
    assert status == 1, output[-2000:]
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in output
    assert "set DJANGO_PLAIN_HTTP=1" in output


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the workers change user only when started as root")


@needs_root
@pytest.mark.parametrize("setting", ["DJANGO_STATIC_ROOT", "DJANGO_MEDIA_ROOT"])
def test_serve_refuses_a_folder_its_workers_cannot_enter(open_tmp, setting):
    """A 0700 parent: nginx's workers (www-data) would answer 403 for every file under it."""
    locked = open_tmp / "locked"
    locked.mkdir(mode=0o700)
    status, output = _serve(open_tmp, **{setting: str(locked / "files")})
    assert status == 1, output[-2000:]
    assert f"www-data cannot enter {locked} (drwx------ root root)" in output


@needs_root
def test_serve_refuses_a_checkout_its_workers_cannot_enter(open_tmp):
    """The checkout under a 0700 folder (like /root): uWSGI's workers could not even import it."""
    locked = open_tmp / "home"
    locked.mkdir(mode=0o700)
    (locked / "onlineocr").symlink_to(ROOT)
    status, output = _serve(open_tmp, root=locked / "onlineocr", SERVE_USER="nobody")
    assert status == 1, output[-2000:]
    assert f"nobody cannot enter {locked} (drwx------ root root)" in output
