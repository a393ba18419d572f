"""The real production stack on loopback, for integration tests and benchmarks:
`./start.sh serve` runs the repo's nginx.conf and uwsgi.ini (only ports and paths differ),
and every request goes through nginx.

    with running_stack(UWSGI_PROCESSES="2") as stack:
        headers = signed_up(stack, "alice")
        stack.post("/api/ocr/", headers=headers, files=...)
"""

import json
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from app.tests.processes import free_port, kill_group

ROOT = Path(__file__).resolve().parents[2]
# What the TLS-terminating load balancer in front of nginx adds to every request.
VIA_TLS = {"X-Forwarded-Proto": "https"}
PASSWORD = "correct horse battery staple"
# The stack's settings come from running_stack's arguments only, never from the caller's environment.
OWN_PREFIXES = ("DJANGO_", "DATABASE_", "OCR_", "UWSGI_")


@dataclass
class Stack:
    process: subprocess.Popen
    url: str
    stats: tuple[str, int]
    log: Path
    media: Path
    run_dir: Path
    database_url: str
    # The Host every request names, with the port: the first of DJANGO_ALLOWED_HOSTS.
    host: str

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**VIA_TLS, "Host": self.host, **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, **kwargs)

    def workers(self) -> list[dict]:
        """uWSGI's stats for each worker (pid, requests, rss, status...)."""
        with socket.create_connection(self.stats, timeout=5) as sock:
            raw = b"".join(iter(lambda: sock.recv(65536), b""))
        return [worker for worker in json.loads(raw)["workers"] if worker["pid"]]

    def worker_pids(self) -> set[int]:
        return {worker["pid"] for worker in self.workers()}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def media_files(self) -> list[Path]:
        return [path for path in self.media.rglob("*") if path.is_file()]

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        """Run one statement straight on the stack's database (%s placeholders), committed;
        the rows it returns. For checking what the app wrote without going through it."""
        if self.database_url.startswith("sqlite:///"):
            connection = sqlite3.connect(self.database_url.removeprefix("sqlite:///"), timeout=20)
            try:
                with connection:
                    rows = connection.execute(statement.replace("%s", "?"), params).fetchall()
            finally:
                connection.close()
            return rows
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as connection:
            cursor = connection.execute(statement, params)
            return cursor.fetchall() if cursor.description else []


class StackFailed(RuntimeError):
    pass


def missing_tools() -> list[str]:
    """What `./start.sh serve` needs that is not installed (./start.sh test installs both)."""
    missing = [] if shutil.which("nginx") else ["nginx"]
    return missing + ([] if (Path(sys.prefix) / "bin" / "uwsgi").exists() else ["uwsgi"])


@contextmanager
def running_stack(timeout: float = 180, **settings: str) -> Iterator[Stack]:
    """Start `./start.sh serve` on free loopback ports with its own database (SQLite in the
    run's folder unless DATABASE_URL is given) and media folder; stop it and clean up after.
    Keyword arguments are environment variables for the stack (UWSGI_PROCESSES=..., OCR_...)."""
    # Not under pytest's 0700 temp folder: nginx workers run as an unprivileged user
    # and must reach media/ and the static files.
    base = Path(tempfile.mkdtemp(prefix="onlineocr-stack-"))
    base.chmod(0o755)
    media, run_dir = base / "media", base / "run"
    # PORT may be chosen by the caller (bench/coldstart.py polls it from the launch on).
    port, stats_port = int(settings.get("PORT") or free_port()), free_port()
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_", "OCR_", "UWSGI_"))
        },
        "VENV": sys.prefix,
        "PORT": str(port),
        "RUN_DIR": str(run_dir),
        "UWSGI_SOCKET": f"127.0.0.1:{free_port()}",
        "UWSGI_STATS": f"127.0.0.1:{stats_port}",
        "UWSGI_PROCESSES": "2",
        "DATABASE_URL": f"sqlite:///{base / 'db.sqlite3'}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_MEDIA_ROOT": str(media),
        "DJANGO_STATIC_ROOT": str(base / "static"),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        **settings,
    }
    log = base / "stack.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*python_revealed(base), "./start.sh", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(
        process,
        f"http://127.0.0.1:{port}",
        ("127.0.0.1", stats_port),
        log,
        media,
        run_dir,
        env["DATABASE_URL"],
        f"{_first_host(env['DJANGO_ALLOWED_HOSTS'])}:{port}",
    )
    try:
        wait_until_healthy(stack, timeout)
        yield stack
    finally:
        kill_group(process)
        shutil.rmtree(base, ignore_errors=True)


# Runs its arguments in a mount namespace of their own where each HIDDEN folder (one only its
# owner may enter, e.g. /root) is an empty 0755 folder holding only its KEEP, the way to
# Python or to the checkout. Arguments: count, then count x (hidden, keep, spare), then argv.
_REVEAL = """set -e
count=$1; shift
i=0
while [ "$i" -lt "$count" ]; do
  hidden=$1 keep=$2 spare=$3; shift 3
  mkdir -p "$spare" && mount --bind "$keep" "$spare"
  mount -t tmpfs -o mode=0755 onlineocr-stack "$hidden"
  mkdir -p "$keep" && mount --bind "$spare" "$keep"
  i=$((i + 1))
done
exec "$@"
"""


def _hidden_ancestor(path: Path) -> Path | None:
    """The first folder on the way to `path` that other users may not enter."""
    return next((p for p in [*reversed(path.parents), path] if not p.stat().st_mode & 0o001), None)


def python_revealed(base: Path) -> list[str]:
    """Started as root, `start.sh serve` runs uWSGI as an unprivileged user (SERVE_USER), who
    must read this Python's standard library and the checkout. Where either lives under a
    folder other users may not enter (pyenv in /root, a CI checkout in a private folder), the
    stack runs where that folder holds only the way to them, as it would on a host or in the
    image with a Python everyone may read; elsewhere, as is."""
    if os.geteuid() != 0:
        return []
    reveal: dict[Path, Path] = {}
    for needed in (Path(sys.base_prefix).resolve(), ROOT):
        hidden = _hidden_ancestor(needed)
        if hidden is not None and hidden != needed and hidden not in reveal:
            reveal[hidden] = hidden / needed.relative_to(hidden).parts[0]
    if not reveal:
        return []
    pairs = [
        part
        for n, (hidden, keep) in enumerate(sorted(reveal.items()))
        for part in (str(hidden), str(keep), str(base / f"reveal{n}"))
    ]
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        _REVEAL,
        "sh",
        str(len(reveal)),
        *pairs,
    ]


def _first_host(allowed_hosts: str) -> str:
    """A Host header Django accepts: `.example.com` matches example.com, `*` anything."""
    first = allowed_hosts.split(",")[0].strip().lstrip(".")
    return "127.0.0.1" if first in ("", "*") else first


def wait_until_healthy(stack: Stack, timeout: float = 180) -> None:
    """Until /api/health/ answers 200 and every worker has loaded its engines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise StackFailed(f"start.sh serve exited:\n{stack.log_text()[-3000:]}")
        try:
            if stack.get("/api/health/", timeout=5).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass  # not listening yet, or its workers are still loading the engines
        time.sleep(0.5)
    raise StackFailed(f"the stack did not become healthy:\n{stack.log_text()[-3000:]}")


def signed_up(stack: Stack, username: str) -> dict[str, str]:
    """Register a user through the stack and return its JWT Authorization header."""
    response = stack.post("/api/register/", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    tokens = stack.post("/api/token_obtain_pair/", json={"username": username, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {tokens['access']}"}


@contextmanager
def stack_database(prefix: str = "onlineocr_stack") -> Iterator[dict[str, str]]:
    """running_stack's settings for the database the suite runs on. SQLite (the default): none,
    the stack keeps its own file. PostgreSQL (DATABASE_URL is postgres://...): a fresh
    database `<prefix>_<pid>` on the same server, which `start.sh serve` migrates; dropped after."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield {}
        return
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{os.getpid()}"
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(drop)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield {"DATABASE_URL": urlunsplit(urlsplit(url)._replace(path="/" + name))}
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(drop)  # FORCE: the killed workers' connections may linger a moment


def admin_session(stack: Stack, username: str) -> dict[str, str]:
    """Log an existing staff user into the admin through nginx; its cookies, to pass as
    `cookies=` (they are Secure, which requests' cookie jar keeps off plain http)."""
    login = stack.get("/admin/login/")
    token = login.text.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    response = stack.post(
        "/admin/login/",
        data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/admin/"},
        cookies=login.cookies.get_dict(),
        headers={"Origin": stack.url.replace("http://", "https://", 1)},  # the Host, port and all
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[-2000:]
    return {**login.cookies.get_dict(), **response.cookies.get_dict()}  # csrftoken rotated
