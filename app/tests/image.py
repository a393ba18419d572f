"""Build dockerfile_base and dockerfile_product with podman and run the product image the way
a container engine would, on a machine where `podman run` cannot (crun cannot set rlimits in
this sandbox) and no registry serves python:3.11-slim-bookworm.

- The base: Debian 12 with its Python 3.11 (and headers, as the official image has them),
  made with debootstrap and imported, in place of the official image (BASE_IMAGE build arg).
- The build: `podman build --isolation chroot`, the machine's CA bundle handed in as the
  `pip_cert` build secret (this machine's registries sit behind a TLS proxy).
- A container: `podman create` + `podman mount` give a writable root from the image; the
  image's CMD runs there as its USER, with its ENV and WORKDIR, as PID 1 of its own PID, mount
  and UTS namespaces, with /proc, /dev, a private /tmp and bind-mounted volumes. The network
  is the host's (`--network host`): ports are passed in as -e variables.
"""

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app.tests.stack import PASSWORD, VIA_TLS

ROOT = Path(__file__).resolve().parents[2]
BASE_OS = "localhost/onlineocr-test-os:bookworm"
BASE = "localhost/onlineocr-test:base"
PRODUCT = "localhost/onlineocr-test:product"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# What the official python:3.11-slim-bookworm holds that a minimal Debian does not.
BASE_PACKAGES = "python3,python3-venv,python3-dev,ca-certificates"
APT_SOURCES = """deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
"""


def missing_tools() -> list[str]:
    """What building and running the images needs here (`./start.sh test-image` installs it)."""
    missing = [
        tool for tool in ("podman", "debootstrap", "unshare", "nsenter", "chroot") if not shutil.which(tool)
    ]
    return missing + ([] if os.geteuid() == 0 else ["root"])


def podman(*args: str, timeout: float = 1800, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return result


def image_exists(name: str) -> bool:
    return subprocess.run(["podman", "image", "exists", name]).returncode == 0


def make_base_os(workdir: Path) -> float:
    """The local stand-in for python:3.11-slim-bookworm; seconds taken (0 when it exists)."""
    if image_exists(BASE_OS):
        return 0.0
    started = time.monotonic()
    rootfs = workdir / "rootfs"
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(rootfs),
         "http://deb.debian.org/debian"],
        check=True, capture_output=True, timeout=1200,
    )  # fmt: skip
    (rootfs / "etc/apt/sources.list").write_text(APT_SOURCES)
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    podman(
        "import",
        "--change",
        "ENV LANG=C.UTF-8",
        "--change",
        'CMD ["python3"]',
        "-",
        BASE_OS,
        stdin=tar.stdout,
    )
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    return time.monotonic() - started


def build(dockerfile: str, tag: str, **build_args: str) -> float:
    """`podman build` of one of the repo's Dockerfiles, unchanged; seconds taken. Docker's
    format keeps the HEALTHCHECK (OCI's image config has no field for it)."""
    started = time.monotonic()
    args = [arg for name, value in build_args.items() for arg in ("--build-arg", f"{name}={value}")]
    podman(
        "build", "--isolation", "chroot", "--format", "docker", "--secret", f"id=pip_cert,src={CA_BUNDLE}",
        *args, "-f", dockerfile, "-t", tag, str(ROOT), cwd=ROOT,
    )  # fmt: skip
    return time.monotonic() - started


def inspect(image: str) -> dict:
    return json.loads(podman("image", "inspect", image).stdout)[0]


@dataclass
class Container:
    """A started container: its PID 1 (as the host sees it), its log, and what it runs as."""

    process: subprocess.Popen
    log: Path
    env: dict[str, str]
    user: str
    workdir: str

    def pid1(self) -> int:
        """The namespace's PID 1, the image's CMD (unshare --fork's child)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return int(children[0])

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10) -> float:
        """`docker stop`: SIGTERM to PID 1, SIGKILL after `timeout`; seconds until it ended."""
        started = time.monotonic()
        if self.process.poll() is None:
            os.kill(self.pid1(), signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL to PID 1, which ends every process in its namespace. (unshare's
        --kill-child does not reach it: the parent-death signal is dropped when chroot
        --userspec changes the user.)"""
        if self.process.poll() is None:
            with suppress(OSError, IndexError):  # between unshare's fork and exec, or gone
                os.kill(self.pid1(), signal.SIGKILL)
            self.process.kill()
            self.process.wait()


# Runs inside `unshare --mount --uts --pid --fork`: $1 the root, $2 the hostname, $3 the
# number of bind mounts, then pairs of (host path, path in the root), then the command.
_START = """set -e
root=$1 name=$2 count=$3; shift 3
hostname "$name"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
i=0
while [ "$i" -lt "$count" ]; do
  mount --bind "$1" "$root$2"; shift 2; i=$((i + 1))
done
exec chroot "$@"
"""


@contextmanager
def container(
    image: str,
    volumes: Mapping[Path, str] = {},
    env: Mapping[str, str] = {},
    command: list[str] | None = None,
    hosts: Mapping[str, str] = {},
) -> Iterator[Container]:
    """Run `image`'s CMD (or `command`, as compose's `command:` replaces it) in a fresh
    writable root, as `docker run --network host -v HOST:PATH -e K=V` would; removed after."""
    config = inspect(image)["Config"]
    name = podman("create", "--no-healthcheck", image).stdout.strip()
    try:
        root = Path(podman("mount", name).stdout.strip())
        hosts_file = root.parent / "hosts"  # outside the root, as Docker's own /etc/hosts
        hosts_file.write_text(
            "127.0.0.1 localhost\n::1 localhost\n" + "".join(f"{ip} {host}\n" for host, ip in hosts.items())
        )
        mounts = {hosts_file: "/etc/hosts", **volumes}
        image_env = dict(item.split("=", 1) for item in config.get("Env", []))
        home = _home_of(root, config["User"])
        run_env = {"HOSTNAME": name[:12], "HOME": home, **image_env, **env}
        argv = command or config["Cmd"]
        workdir = config.get("WorkingDir") or "/"
        log = root.parent / "container.log"
        pairs = [part for host, path in mounts.items() for part in (str(host), path)]
        # stdout is a pipe of root's, as an engine's is: the image's USER cannot reopen it.
        process = subprocess.Popen(
            ["unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--propagation", "private",
             "sh", "-c", _START, "sh", str(root), name[:12], str(len(mounts)), *pairs,
             f"--userspec={config['User']}", str(root),
             "/usr/bin/env", "-i", "-C", workdir,
             *(f"{k}={v}" for k, v in run_env.items()), *argv],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        copier = threading.Thread(target=_copy, args=(process.stdout, log), daemon=True)
        copier.start()
        running = Container(process, log, run_env, config["User"], workdir)
        try:
            yield running
        finally:
            running.kill()
            copier.join(timeout=10)
    finally:
        subprocess.run(["podman", "umount", name], capture_output=True)
        subprocess.run(["podman", "rm", "-f", name], capture_output=True)


def _copy(pipe, log: Path) -> None:
    with log.open("ab") as out:
        for chunk in iter(lambda: pipe.read1(65536), b""):
            out.write(chunk)
            out.flush()


def exec_in(running: Container, argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    """`docker exec`: a command in the running container's namespaces, as its user and ENV."""
    return subprocess.run(
        ["nsenter", "-t", str(running.pid1()), "--mount", "--uts", "--pid", "--root",
         "setpriv", f"--reuid={running.user}", f"--regid={running.user}", "--init-groups",
         "/usr/bin/env", "-i", "-C", running.workdir, *(f"{k}={v}" for k, v in running.env.items()), *argv],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _home_of(root: Path, user: str) -> str:
    return _passwd_entry(root, user)[5]


def _passwd_entry(root: Path, user: str) -> list[str]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return fields
    raise LookupError(f"the image has no user {user}")


@contextmanager
def mounted(image: str) -> Iterator[Path]:
    """The image's filesystem, read-only."""
    root = Path(podman("image", "mount", image).stdout.strip())
    try:
        yield root
    finally:
        podman("image", "unmount", image)


def user_ids(image: str) -> tuple[int, int]:
    """The uid and gid of the image's USER, from its own /etc/passwd."""
    with mounted(image) as root:
        fields = _passwd_entry(root, inspect(image)["Config"]["User"])
    return int(fields[2]), int(fields[3])


def namespace_pids(running: Container) -> list[int]:
    """Every process in the container's PID namespace, as the host numbers them."""
    own = os.readlink(f"/proc/{running.pid1()}/ns/pid")
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "ns/pid") == own:
                pids.append(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    return pids


def real_uid(pid: int) -> int:
    line = next(
        line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:")
    )
    return int(line.split()[1])


REPORT = ROOT / "artifacts" / "image-test.json"


def report(name: str, value: object) -> None:
    """A figure for `./start.sh test-image` to print at the end (sizes, timings)."""
    REPORT.parent.mkdir(exist_ok=True)
    figures = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    REPORT.write_text(json.dumps({**figures, name: value}, indent=1))


def volume(path: Path, ids: tuple[int, int]) -> Path:
    """A host folder for a named volume, owned by the image's user (Docker gives a new volume
    its mount point's ownership: the image's db/ and media/ belong to that user)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, *ids)
    return path


def wait_for(condition: Callable[[], bool], seconds: float, running: Container) -> float:
    """Until `condition()`, in seconds; a failure with the container's log if it ends first
    or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        assert running.process.poll() is None, f"the container ended:\n{running.log_text()[-3000:]}"
        if condition():
            return time.monotonic() - started
        time.sleep(0.3)
    pytest.fail(f"timed out after {seconds} s:\n{running.log_text()[-3000:]}")


class Service:
    """A container serving the app, reached on the host's loopback through its nginx, with the
    TLS proxy's header and the Host it answers for."""

    def __init__(self, running: Container, port: int, host: str):
        self.container, self.url, self.host = running, f"http://127.0.0.1:{port}", host

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**VIA_TLS, "Host": self.host, **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers, **{"timeout": 60, **kwargs})

    def wait_healthy(self, seconds: float = 180) -> float:
        return wait_for(self._healthy, seconds, self.container)

    def _healthy(self) -> bool:
        try:
            return self.request("GET", "/api/health/", timeout=3).status_code == 200
        except requests.RequestException:
            return False  # not listening yet, or its workers still load the engines

    def sign_up(self, username: str) -> dict[str, str]:
        response = self.request("POST", "/api/register/", json={"username": username, "password": PASSWORD})
        assert response.status_code == 201, response.text
        return self.token(username)

    def token(self, username: str) -> dict[str, str]:
        response = self.request(
            "POST", "/api/token_obtain_pair/", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access']}"}
