"""The product image, built from dockerfile_base and dockerfile_product unchanged, run as a
container engine runs it (app/tests/image.py): its CMD as its USER with its ENV, behind its
own nginx, with volumes that outlive the container. `./start.sh test-image` runs these."""

import re
from pathlib import Path

import pytest

from app.tests import image
from app.tests.imaging import cer, chinese_lines, encode, english_lines, render
from app.tests.processes import free_port

pytestmark = pytest.mark.image

HOST = "ocr.example.test"
LINES = english_lines(3, seed=17)
HANZI = chinese_lines(2, seed=5, chars=8)


@pytest.fixture(scope="module")
def volumes(built_images, tmp_path_factory) -> dict[Path, str]:
    """Two named volumes, as `docker run -v onlineocr-db:/app/db -v onlineocr-media:/app/media`."""
    base = tmp_path_factory.mktemp("volumes")
    base.chmod(0o755)
    ids = image.user_ids(image.PRODUCT)
    return {image.volume(base / "db", ids): "/app/db", image.volume(base / "media", ids): "/app/media"}


def serve(volumes: dict[Path, str]):
    """`docker run -e DJANGO_ALLOWED_HOSTS=... -v ... onlineocr` on the host's network: the
    ports it listens on are chosen here so that parallel runs never collide."""
    port = free_port()
    env = {"PORT": str(port), "UWSGI_SOCKET": f"127.0.0.1:{free_port()}", "DJANGO_ALLOWED_HOSTS": HOST}
    return port, image.container(image.PRODUCT, volumes, env)


@pytest.fixture(scope="module")
def first_run(volumes):
    port, starting = serve(volumes)
    with starting as running:
        service = image.Service(running, port, HOST)
        image.report("first start to healthy (s)", round(service.wait_healthy(), 1))
        yield service


@pytest.fixture(scope="module")
def alice(first_run) -> dict:
    """alice signs up and uploads a letter; her token and record, from before any restart."""
    headers = first_run.sign_up("alice")
    png = encode(render(LINES))
    upload = first_run.request(
        "POST", "/api/ocr/", headers=headers, files={"image": ("letter.png", png, "image/png")},
        data={"engine": "tesseract"},
    )  # fmt: skip
    assert upload.status_code == 201, upload.text
    return {"headers": headers, "record": upload.json(), "png": png}


def test_the_images_carry_what_the_dockerfiles_promise(built_images):
    product = image.inspect(image.PRODUCT)
    config = product["Config"]
    assert config["User"] == "ocr"
    assert config["Cmd"] == ["./start.sh", "serve"]
    assert config["WorkingDir"] == "/app"
    assert set(config["Volumes"]) == {"/app/db", "/app/media"}
    assert set(config["ExposedPorts"]) == {"8080/tcp"}
    assert product["Healthcheck"]["Test"][0] == "CMD-SHELL"
    # The Dockerfiles build on Docker as they are: the official base is the default.
    assert re.search(r"^ARG BASE_IMAGE=python:3.11-slim-bookworm$", Path("dockerfile_base").read_text(), re.M)
    image.report("base image (MB)", round(image.inspect(image.BASE)["Size"] / 1e6))
    image.report("product image (MB)", round(product["Size"] / 1e6))


def test_the_product_image_holds_no_tests_benchmarks_dev_tools_or_compiler(built_images):
    with image.mounted(image.PRODUCT) as root:
        dev_files = ["app/tests", "bench", "requirements-dev.txt", "pytest.ini", "ruff.toml", ".ci", ".git"]
        for absent in [*dev_files, ".venv", "db/db.sqlite3", ".env", "docker-compose.yml"]:
            assert not (root / "app" / absent).exists(), absent
        site = next((root / "opt/venv/lib").glob("python3*/site-packages"))
        for dev_only in ["pytest", "playwright", "moto", "schemathesis", "ruff"]:
            assert not (site / dev_only).exists(), dev_only
        assert not (root / "usr/bin/gcc").exists()  # only uWSGI's build needed it
        assert (site / "tesserocr").exists() or list(site.glob("tesserocr*.so"))
        assert (root / "usr/sbin/nginx").exists()


def test_the_healthcheck_command_passes_on_a_live_service_and_fails_on_none(first_run, volumes):
    check = image.inspect(image.PRODUCT)["Healthcheck"]["Test"][1]
    assert image.exec_in(first_run.container, ["/bin/sh", "-c", check]).returncode == 0
    # The same command in a container where nothing listens on PORT: unhealthy.
    closed = {"PORT": str(free_port()), "DJANGO_ALLOWED_HOSTS": HOST}
    with image.container(image.PRODUCT, {}, closed, command=["/bin/sh", "-c", check]) as probe:
        assert probe.process.wait(timeout=30) != 0


def test_every_process_runs_as_the_images_user(first_run):
    uid = image.user_ids(image.PRODUCT)[0]
    pids = image.namespace_pids(first_run.container)
    assert len(pids) >= 4  # start.sh, uWSGI's master and worker, nginx's master and worker
    owners = {pid: image.real_uid(pid) for pid in pids}
    assert set(owners.values()) == {uid}, owners


def test_the_engines_load_in_the_image(first_run):
    engines = {engine["name"]: engine for engine in first_run.request("GET", "/api/engines/").json()}
    available = {name for name, engine in engines.items() if engine["available"]}
    assert available == {"tesseract", "rapidocr", "ddddocr", "zxing"}
    assert "chi_sim" in engines["tesseract"]["languages"]


def test_an_upload_is_read_and_read_back(first_run, alice):
    record = alice["record"]
    assert cer("\n".join(LINES), record["text"]) <= 0.05
    again = first_run.request("GET", f"/api/history/{record['id']}/", headers=alice["headers"])
    assert again.status_code == 200
    assert again.json()["text"] == record["text"]
    png = encode(render(HANZI, font="/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"))
    chinese = first_run.request(
        "POST", "/api/ocr/", headers=alice["headers"], files={"image": ("zh.png", png, "image/png")},
        data={"engine": "rapidocr"},
    )  # fmt: skip
    assert chinese.status_code == 201, chinese.text
    assert cer("\n".join(HANZI), chinese.json()["text"]) <= 0.1


def test_an_image_is_served_to_its_owner_only(first_run, alice):
    path = f"/api/history/{alice['record']['id']}/image/"
    own = first_run.request("GET", path, headers=alice["headers"])
    assert own.status_code == 200
    assert own.content == alice["png"]
    assert first_run.request("GET", path, headers=first_run.sign_up("bob")).status_code == 404
    assert first_run.request("GET", path).status_code == 401


def test_what_the_service_writes_lands_in_the_volumes_as_its_user(first_run, alice, volumes):
    db, media = (host for host, path in sorted(volumes.items(), key=lambda item: item[1]))
    uid = image.user_ids(image.PRODUCT)[0]
    assert (db / "db.sqlite3").stat().st_uid == uid
    assert (db / ".secret_key").stat().st_mode & 0o077 == 0  # a key nobody else may read
    uploads = [path for path in media.rglob("*") if path.is_file() and path.name != ".gitkeep"]
    assert alice["png"] in [path.read_bytes() for path in uploads]
    assert {path.stat().st_uid for path in uploads} == {uid}
    nginx_media = first_run.request("GET", "/media/" + uploads[0].relative_to(media).as_posix())
    assert nginx_media.status_code == 404


def test_sigterm_stops_it_and_a_new_container_on_the_same_volumes_keeps_everything(first_run, alice, volumes):
    seconds = first_run.container.stop(timeout=10)
    image.report("SIGTERM to stopped (s)", round(seconds, 1))
    assert first_run.container.process.returncode == 0, first_run.container.log_text()[-2000:]
    assert seconds <= 10
    port, starting = serve(volumes)
    with starting as running:
        second = image.Service(running, port, HOST)
        image.report("restart to healthy (s)", round(second.wait_healthy(), 1))
        # The same secret key (kept in db/): the token issued before the restart still works.
        history = second.request("GET", "/api/history/", headers=alice["headers"])
        assert history.status_code == 200, history.text
        assert alice["record"]["id"] in [item["id"] for item in history.json()["results"]]
        picture = second.request(
            "GET", f"/api/history/{alice['record']['id']}/image/", headers=alice["headers"]
        )
        assert picture.content == alice["png"]
        assert running.stop(timeout=10) <= 10


def test_without_settings_it_answers_for_localhost_only_and_makes_its_own_key(built_images, tmp_path):
    """No DJANGO_ALLOWED_HOSTS and no DJANGO_SECRET_KEY: the HEALTHCHECK asks for localhost,
    which is served; any other Host gets 400; the key is made once, in the db volume."""
    ids = image.user_ids(image.PRODUCT)
    db = image.volume(tmp_path / "db", ids)
    port = free_port()
    env = {"PORT": str(port), "UWSGI_SOCKET": f"127.0.0.1:{free_port()}"}
    with image.container(image.PRODUCT, {db: "/app/db"}, env) as running:
        image.Service(running, port, "localhost").wait_healthy()
        check = image.inspect(image.PRODUCT)["Healthcheck"]["Test"][1]
        assert image.exec_in(running, ["/bin/sh", "-c", check]).returncode == 0
        assert image.Service(running, port, HOST).request("GET", "/api/health/").status_code == 400
        key = db / ".secret_key"
        assert key.stat().st_uid == ids[0]
        assert len(key.read_text().strip()) >= 50
