"""The peer services the benches measure ours against, each in a virtual environment of its own
under bench/.venvs/ (git-ignored), made on a bench's first run with pip from PyPI at pinned
versions. Nothing of theirs is imported into this process or copied into the project.

- rapidocr_api (PyPI): its own CLI, `rapidocr_api -ip 127.0.0.1 -p PORT`, its defaults.
- ocr_api_server, the original Flask captcha service: run from ../shared/peers/ocr_api_server/
  as the README beside it says, `python ocr_server.py --port PORT --ocr --det`.

    with running_peer(RAPIDOCR_API) as peer:
        requests.post(peer.url + "/ocr", files=...)
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import common  # noqa: F401  (puts the checkout on sys.path)
import requests

from app.tests.processes import free_port, stop_group

ROOT = Path(__file__).resolve().parents[1]
VENVS = ROOT / "bench" / ".venvs"
OCR_API_SERVER_DIR = (ROOT / ".." / "shared" / "peers" / "ocr_api_server").resolve()


def _ours(*names: str) -> list[str]:
    """Pins at the versions this project runs: the peers then use the same inference runtime."""
    return [f"{name}=={metadata.version(name)}" for name in names]


@dataclass(frozen=True)
class Peer:
    name: str
    specs: tuple[str, ...]  # what pip installs into its venv
    note: str  # how it runs, for the printout

    @property
    def venv(self) -> Path:
        return VENVS / self.name

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def command(self, port: int) -> tuple[list[str], Path]:
        """Its start command and the folder it runs in."""
        if self.name == "rapidocr_api":
            return [str(self.venv / "bin" / "rapidocr_api"), "-ip", "127.0.0.1", "-p", str(port)], ROOT
        return [str(self.python), "ocr_server.py", "--port", str(port), "--ocr", "--det"], OCR_API_SERVER_DIR

    def ready_path(self) -> str:
        return "/" if self.name == "rapidocr_api" else "/ping"


# rapidocr_api 0.2.0 needs rapidocr, which since 3.x leaves the inference package to the user:
# onnxruntime is added (its README's `pip install rapidocr_api` alone cannot run).
RAPIDOCR_API = Peer(
    "rapidocr_api",
    ("rapidocr_api==0.2.0", *_ours("rapidocr", "onnxruntime")),
    "its CLI's defaults: 1 uvicorn worker, angle classifier on, short side up to 736, ONNX on all cores",
)
# Its README: `pip install flask ddddocr==1.6.1`; flask and onnxruntime pinned at ours.
OCR_API_SERVER = Peer(
    "ocr_api_server",
    ("ddddocr==1.6.1", *_ours("flask", "onnxruntime")),
    "Flask's development server, one process, ddddocr's default sessions (a thread per core)",
)


def ensure_venv(peer: Peer) -> Path:
    """Create the peer's venv once; again only when its pins change."""
    stamp = peer.venv / ".bench-installed"
    wanted = " ".join(peer.specs)
    if stamp.exists() and stamp.read_text() == wanted:
        return peer.venv
    print(f"creating {peer.venv.relative_to(ROOT)}: pip install {wanted}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(peer.venv)], check=True)
    pip = [str(peer.python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    installed = subprocess.run([*pip, *peer.specs], capture_output=True, text=True)
    if installed.returncode:
        raise RuntimeError(f"pip install {wanted} failed:\n{installed.stderr[-3000:]}")
    stamp.write_text(wanted)
    return peer.venv


VERSIONS = """
import importlib.metadata as m, json, sys
print(json.dumps({name: m.version(name) for name in sys.argv[1:]}))
"""


def versions(peer: Peer) -> dict[str, str]:
    """The versions installed in the peer's venv, read from it."""
    names = [spec.split("==")[0] for spec in peer.specs]
    out = subprocess.run([str(peer.python), "-c", VERSIONS, *names], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-300:]}


RAPIDOCR_DEFAULTS = """
import yaml, rapidocr, pathlib, json
c = yaml.safe_load((pathlib.Path(rapidocr.__file__).parent / "config.yaml").read_text())
print(json.dumps({"use_cls": c["Global"]["use_cls"],
  "det_limit": f'{c["Det"]["limit_type"]} {c["Det"]["limit_side_len"]}',
  "ort_threads": c["EngineConfig"]["onnxruntime"]["intra_op_num_threads"]}))
"""


def rapidocr_api_defaults() -> dict:
    """rapidocr_api's effective RapidOCR settings, read from the installed package."""
    python = str(RAPIDOCR_API.python)
    out = subprocess.run([python, "-c", RAPIDOCR_DEFAULTS], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-300:]}


@dataclass
class Running:
    peer: Peer
    process: subprocess.Popen
    url: str


@contextmanager
def running_peer(peer: Peer, timeout: float = 180) -> Iterator[Running]:
    """Start the peer on a free loopback port (its venv made first if needed), wait until it
    answers, stop its whole process group after. None of our settings reach it."""
    ensure_venv(peer)
    if peer is OCR_API_SERVER and not (OCR_API_SERVER_DIR / "ocr_server.py").exists():
        raise RuntimeError(f"the peer's source is not at {OCR_API_SERVER_DIR}")
    port = free_port()
    command, cwd = peer.command(port)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OCR_", "OMP_", "DJANGO_", "VIRTUAL_ENV"))
    }
    log = Path("/tmp") / f"onlineocr-bench-{peer.name}-{os.getpid()}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{peer.name} did not start:\n{log.read_text(errors='replace')[-2000:]}")
            try:
                if requests.get(url + peer.ready_path(), timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        yield Running(peer, process, url)
    finally:
        stop_group(process)
        log.unlink(missing_ok=True)


if __name__ == "__main__":  # make both venvs ahead of a run: .venv/bin/python bench/peers.py
    for each in (RAPIDOCR_API, OCR_API_SERVER):
        ensure_venv(each)
        print(each.name, versions(each))
