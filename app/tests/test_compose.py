"""docker-compose.yml: valid against the Compose specification's JSON schema, safe as shipped
(no secret in it, web on loopback, health checks, named volumes), and its app services'
commands run from the built image against the machine's PostgreSQL and Redis and a local S3
server (the `image` tests, with ./start.sh test-image)."""

import json
import re
import secrets
import subprocess
from importlib.resources import files
from pathlib import Path

import boto3
import jsonschema
import psycopg
import pytest
import redis
import requests
import yaml
from psycopg import sql

from app.tests import image
from app.tests.imaging import cer, encode, english_lines, render
from app.tests.processes import free_port, moto_server

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SECRETS = ("DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY")
APP_SERVICES = ("web", "worker")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ is a literal $.
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class Unset(ValueError):
    pass


def interpolate(value, variables: dict[str, str]):
    """Compose's variable substitution over a parsed file."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        given = variables.get(name)
        missing = given is None or (op and op.startswith(":") and given == "")
        if op and op.endswith("?") and missing:
            raise Unset(f"{name}: {arg}")
        if op and op.endswith("-") and missing:
            return arg
        return given or ""

    return VARIABLE.sub(one, value)


def env_file(path: Path) -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return {name.strip(): value.strip() for name, value in pairs}


def referenced(text: str) -> set[str]:
    return {match.group("name") for match in VARIABLE.finditer(text) if match.group("name")}


def filled(**overrides: str) -> dict[str, str]:
    """.env.example with its secrets filled in, as a user's .env."""
    return {
        **env_file(ENV_EXAMPLE),
        **{name: secrets.token_urlsafe(40) for name in SECRETS},
        **overrides,
    }


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def schema() -> dict:
    """The Compose specification's schema, as check-jsonschema vendors it."""
    vendored = files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(vendored.read_text())


def test_the_file_is_valid_against_the_compose_specification(raw, schema):
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    for form in (raw, interpolate(raw, filled())):
        errors = sorted(validator.iter_errors(form), key=lambda error: list(error.path))
        assert not errors, [f"{list(error.path)}: {error.message}" for error in errors]


def test_the_schema_catches_a_broken_file(schema):
    """The check is not vacuous: a misspelt key and a port as a mapping are refused."""
    validator = jsonschema.Draft202012Validator(schema)
    assert not validator.is_valid({"services": {"web": {"image": "x", "helthcheck": {}}}})
    assert not validator.is_valid({"services": {"web": {"image": "x", "ports": [{"bogus": 1}]}}})


@pytest.mark.parametrize("secret", SECRETS)
def test_no_secret_has_a_default_and_a_missing_one_stops_compose(raw, secret):
    text = COMPOSE.read_text()
    uses = re.findall(r"\$\{" + secret + r"(:?[-?]?)[^}]*\}", text)
    assert uses
    assert set(uses) == {":?"}, uses
    assert env_file(ENV_EXAMPLE)[secret] == ""  # the example leaves it to the user
    with pytest.raises(Unset, match=secret):
        interpolate(raw, filled(**{secret: ""}))


def test_every_variable_is_documented_in_the_env_example():
    assert referenced(COMPOSE.read_text()) <= set(env_file(ENV_EXAMPLE)), referenced(
        COMPOSE.read_text()
    ) - set(env_file(ENV_EXAMPLE))


def test_env_files_stay_out_of_git_and_the_image():
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode == 0
    assert subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT).returncode == 1
    assert {".env", ".env.*"} <= set((ROOT / ".dockerignore").read_text().split())


def test_published_ports_are_on_loopback_unless_configured(raw):
    services = interpolate(raw, filled())["services"]
    assert services["web"]["ports"] == ["127.0.0.1:8080:8080"]
    assert services["s3"]["ports"] == ["127.0.0.1:9000:9000"]  # the browsers' image links
    assert [name for name, service in services.items() if "ports" in service] == ["web", "s3"]
    exposed = interpolate(raw, filled(OCR_BIND="0.0.0.0", OCR_PORT="80"))["services"]
    assert exposed["web"]["ports"] == ["0.0.0.0:80:8080"]
    assert exposed["s3"]["ports"] == ["127.0.0.1:9000:9000"]


def test_long_running_services_have_health_checks_and_keep_data_in_named_volumes(raw):
    services = interpolate(raw, filled())["services"]
    assert "HEALTHCHECK" in (ROOT / "dockerfile_product").read_text()  # web's own, from the image
    for name in ("worker", "db", "redis", "s3"):
        assert services[name]["healthcheck"]["test"], name
    for name, path in {"db": "/var/lib/postgresql/data", "redis": "/data", "s3": "/data"}.items():
        volume = next(
            mount.split(":")[0] for mount in services[name]["volumes"] if mount.endswith(":" + path)
        )
        assert volume in raw["volumes"], name
    for name in APP_SERVICES:
        needs = services[name]["depends_on"]
        assert {needs[dep]["condition"] for dep in ("db", "redis")} == {"service_healthy"}
        assert needs["s3-bucket"]["condition"] == "service_completed_successfully"


# --- the app services' commands from the built image -------------------------------------


@pytest.fixture(scope="module")
def machine(built_images):
    """What compose's db, redis and s3 services give, from this machine: a fresh `onlineocr`
    role and database on its PostgreSQL (as the postgres image makes them from POSTGRES_*),
    its Redis, and a local S3 server with the bucket (as s3-bucket makes it)."""
    admin_url = "postgres://postgres@127.0.0.1:5432/postgres"
    database = sql.Identifier("onlineocr")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        admin.execute("DROP ROLE IF EXISTS onlineocr")
        admin.execute("CREATE ROLE onlineocr LOGIN")  # trust auth here: any password is taken
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER onlineocr").format(database))
    queue = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    queue.delete("celery")
    with moto_server() as endpoint:
        # The app reaches the store as `s3`, browsers at the published address.
        port = endpoint.rsplit(":", 1)[1]
        variables = filled(OCR_S3_ENDPOINT_URL=f"http://s3:{port}", OCR_S3_PUBLIC_URL=endpoint)
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id=variables["S3_ACCESS_KEY"], aws_secret_access_key=variables["S3_SECRET_KEY"],
        )  # fmt: skip
        s3.create_bucket(Bucket=variables["OCR_S3_BUCKET"])
        yield {"variables": variables, "s3": s3}
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(database))
        admin.execute("DROP ROLE IF EXISTS onlineocr")


def service_env(raw: dict, name: str, variables: dict[str, str]) -> dict[str, str]:
    return {
        key: str(value) for key, value in interpolate(raw, variables)["services"][name]["environment"].items()
    }


@pytest.mark.image
def test_web_and_worker_run_the_stack_from_the_image(raw, machine):
    """web's and worker's own command and environment from the file, in two containers of the
    product image; `db`, `redis` and `s3` name this machine's servers, as compose's network
    names its services."""
    services = interpolate(raw, machine["variables"])["services"]
    port = free_port()
    hosts = {"db": "127.0.0.1", "redis": "127.0.0.1", "s3": "127.0.0.1"}
    web_env = {
        **service_env(raw, "web", machine["variables"]),
        "PORT": str(port),
        "UWSGI_SOCKET": f"127.0.0.1:{free_port()}",
    }
    worker_env = service_env(raw, "worker", machine["variables"])
    assert services["web"]["ports"][0].endswith(":8080")  # what PORT stands in for here
    with (
        image.container(image.PRODUCT, env=web_env, command=services["web"]["command"], hosts=hosts) as web,
        image.container(
            image.PRODUCT, env=worker_env, command=services["worker"]["command"], hosts=hosts
        ) as worker,
    ):
        service = image.Service(web, port, web_env["DJANGO_ALLOWED_HOSTS"].split(",")[0])
        call = service.request
        service.wait_healthy()
        image.wait_for(lambda: "ready." in worker.log_text(), 180, worker)
        check = image.inspect(image.PRODUCT)["Healthcheck"]["Test"][1]
        assert image.exec_in(web, ["/bin/sh", "-c", check]).returncode == 0
        worker_check = services["worker"]["healthcheck"]["test"]
        assert worker_check[0] == "CMD-SHELL"
        pinged = image.exec_in(worker, ["/bin/sh", "-c", worker_check[1]], timeout=60)
        assert pinged.returncode == 0, pinged.stdout + pinged.stderr

        headers = service.sign_up("carol")
        lines = english_lines(3, seed=23)
        png = encode(render(lines))
        queued = call(
            "POST", "/api/ocr/?async=1", headers=headers, files={"image": ("memo.png", png, "image/png")},
            data={"engine": "tesseract"},
        )  # fmt: skip
        assert queued.status_code == 202, queued.text
        record = f"/api/history/{queued.json()['id']}/"
        image.wait_for(lambda: call("GET", record, headers=headers).json()["status"] == "done", 120, worker)
        assert cer("\n".join(lines), call("GET", record, headers=headers).json()["text"]) <= 0.05
        # The upload sits in the bucket, not on the web container's disk.
        bucket = machine["variables"]["OCR_S3_BUCKET"]
        keys = [item["Key"] for item in machine["s3"].list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert [machine["s3"].get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys] == [png]
        picture = call("GET", record + "image/", headers=headers, allow_redirects=False)
        assert picture.status_code == 302
        assert picture.headers["Location"].startswith(machine["variables"]["OCR_S3_PUBLIC_URL"] + "/")
        assert requests.get(picture.headers["Location"], timeout=10).content == png
        # The jobs really went through Redis, and the records into PostgreSQL.
        with psycopg.connect("postgres://onlineocr@127.0.0.1:5432/onlineocr") as connection:
            assert connection.execute("SELECT count(*) FROM app_ocrrecord").fetchone()[0] == 1
        for running in (web, worker):
            assert running.stop(timeout=10) <= 10
