#!/usr/bin/env bash
# onlineocr set-up and run, in one place.
#   ./start.sh            install what is missing, migrate, serve on http://$HOST:$PORT (uWSGI alone:
#                         its HTTP router, static files through WhiteNoise; SQLite, OCR in-process)
#   ./start.sh dev        the same with Django's development server instead (reloads on code changes)
#   ./start.sh test [ARGS] install what is missing (tests too), then run ruff and the whole pytest suite
#   ./start.sh test-image [ARGS]  build dockerfile_base and dockerfile_product with podman and test the
#                         image and docker-compose.yml's services as a container engine runs them (root)
#   ./start.sh serve      production: migrate, collectstatic, uWSGI + nginx in the foreground on $PORT (8080)
#   ./start.sh worker     a Celery worker for queued OCR jobs (needs CELERY_BROKER_URL and OCR_ASYNC=1)
#   ./start.sh install    install only (Debian packages when root, Python packages into $VENV)
# Environment: HOST (127.0.0.1), PORT (9999; 8080 for serve), VENV (.venv), plus the settings in the README.
set -euo pipefail
cd "$(dirname "$0")"

HOST=${HOST:-127.0.0.1}
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

log() { printf '==> %s\n' "$*" >&2; }

# Debian packages: Tesseract's language packs (OCR_TESSERACT_LANGS, Tesseract's names; osd, its page
# orientation and script model, always), then fonts and a browser for the tests.
OCR_TESSERACT_LANGS=${OCR_TESSERACT_LANGS:-eng chi_sim chi_tra jpn kor fra deu spa ita por rus nld}
SYSTEM_PACKAGES=(tesseract-ocr tesseract-ocr-osd)
for lang in $OCR_TESSERACT_LANGS; do SYSTEM_PACKAGES+=("tesseract-ocr-${lang//_/-}"); done
# A C compiler for the one wheel-less requirement (uWSGI builds from source), installed only when
# pip has to run; nginx for `serve`.
BUILD_PACKAGES=(gcc libc6-dev)
SERVE_PACKAGES=(nginx-light)
TEST_PACKAGES=(fonts-dejavu-core fonts-noto-cjk chromium "${SERVE_PACKAGES[@]}")
# test-image builds the Dockerfiles with podman on a Debian made by debootstrap.
IMAGE_TEST_PACKAGES=(podman debootstrap)

install_system() {
  local wanted=("$@") missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "missing Debian packages: ${missing[*]} (install them, or run as root to let start.sh do it)"
  fi
}

# install_python [FILE]: requirements.txt (runtime, what the product image carries) by default;
# `test` passes requirements-dev.txt (runtime + pytest, playwright, moto, schemathesis, ruff).
install_python() {
  local file=${1:-requirements.txt}
  if [ ! -x "$PY" ]; then
    log "creating virtual environment in $VENV"
    python3 -m venv "$VENV"
  fi
  # Reinstall only when a file $file reads (requirements.txt and itself) changed since its last
  # install. The product image carries requirements.txt alone.
  local stamp="$VENV/.${file%.txt}.sha256" want
  want=$(sort -u <(echo requirements.txt) <(echo "$file") | xargs cat | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    install_system "${BUILD_PACKAGES[@]}"  # only to build: an installed venv (the image's) needs none
    log "pip install -r $file"
    "$PY" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    "$PY" -m pip install -q --disable-pip-version-check -r "$file" 2>&1 | grep -v '^WARNING: Location' || true
    "$PY" -c "import django, rest_framework, rapidocr, ddddocr, tesserocr" || { log "pip install failed"; exit 1; }
    echo "$want" >"$stamp"
  fi
}

# A secret key that survives restarts without ever being committed: db/ is git-ignored.
ensure_secret_key() {
  if [ -z "${DJANGO_SECRET_KEY:-}" ]; then
    local file=db/.secret_key
    if [ ! -s "$file" ]; then
      (umask 077 && "$PY" -c "import secrets; print(secrets.token_urlsafe(50))" >"$file")
    fi
    DJANGO_SECRET_KEY=$(cat "$file")
    export DJANGO_SECRET_KEY
  fi
}

prepare_django() {
  ensure_secret_key
  "$PY" manage.py migrate --noinput -v 0
  "$PY" manage.py collectstatic --noinput -v 0
}

# nginx.conf names every machine-specific value as @NAME@; fill them from the environment.
render_nginx_conf() {
  local out=$1
  sed -e "s|@PORT@|$PORT|g" \
      -e "s|@RUN_DIR@|$RUN_DIR|g" \
      -e "s|@UWSGI_SOCKET@|$UWSGI_SOCKET|g" \
      -e "s|@STATIC_ROOT@|$DJANGO_STATIC_ROOT|g" \
      -e "s|@MEDIA_ROOT@|$DJANGO_MEDIA_ROOT|g" \
      -e "s|@MAX_BODY_BYTES@|$MAX_BODY_BYTES|g" \
      -e "s|@READ_TIMEOUT@|$((UWSGI_HARAKIRI + 10))|g" \
      nginx.conf >"$out"
  if grep -v '^ *#' "$out" | grep -q '@[A-Z_]*@'; then log "unfilled placeholder in $out"; exit 1; fi
}

# As root, nginx's and uWSGI's workers run as $SERVE_USER. Refuse to start when that user
# cannot reach what they serve: a checkout under /root (0700) would answer 403 for every
# static file and image, and its workers could not even import the code.
# check_serve_user PATH:r|w ...: every folder on the way to PATH must let the user in, and
# PATH itself be readable (r) or writable (w) by it; checked as that user, after setuid().
check_serve_user() {
  "$PY" - "$SERVE_USER" "$@" <<'PYTHON'
import grp, os, pwd, stat, sys

user, specs = sys.argv[1], [spec.rpartition(":")[::2] for spec in sys.argv[2:]]
account = pwd.getpwnam(user)
chains = {path: [] for path, _ in specs}
for path in chains:
    step = os.path.abspath(path)
    while True:
        chains[path].insert(0, step)
        if step == "/":
            break
        step = os.path.dirname(step)


def described(path):
    info = os.stat(path)
    owner, group = pwd.getpwuid(info.st_uid).pw_name, grp.getgrgid(info.st_gid).gr_name
    return f"{stat.filemode(info.st_mode)} {owner} {group}"


modes = {path: described(path) for chain in chains.values() for path in chain}  # as root
os.initgroups(user, account.pw_gid)
os.setgid(account.pw_gid)
os.setuid(account.pw_uid)
for path, mode in specs:
    for step in chains[path] if os.path.isdir(path) else chains[path][:-1]:
        if not os.access(step, os.X_OK):
            sys.exit(
                f"{user} cannot enter {step} ({modes[step]}), so nginx's and uWSGI's workers, which"
                f" run as {user}, cannot reach {path}. Let {user} in (chmod o+x {step}), move"
                f" {path} where it can go, or set SERVE_USER to a user who can."
            )
    if not os.access(path, os.W_OK if mode == "w" else os.R_OK):
        verb = "write to" if mode == "w" else "read"
        sys.exit(f"{user} cannot {verb} {path} ({modes[path]}); nginx's and uWSGI's workers run as {user}.")
PYTHON
}

# Started as root: uWSGI (uwsgi.ini's uid and gid) and nginx's workers drop to SERVE_USER, who
# is given the media folder and the SQLite database, with its folder (SQLite writes its WAL
# beside the file); the code, the venv and the static files need only be readable by it.
drop_privileges() {
  local database=$1 group
  SERVE_USER=${SERVE_USER:-www-data}
  group=$(id -gn "$SERVE_USER" 2>/dev/null) || { log "SERVE_USER=$SERVE_USER: no such user"; exit 1; }
  export UWSGI_UID=$SERVE_USER UWSGI_GID=$group
  NGINX_USER=(-g "user $SERVE_USER $group;")
  mkdir -p "$DJANGO_MEDIA_ROOT"
  find "$DJANGO_MEDIA_ROOT" ! -user "$SERVE_USER" -exec chown "$SERVE_USER:$group" {} +
  local python paths
  python=$("$PY" -c "import sys; print(sys.base_prefix)")  # the standard library uWSGI loads
  paths=("$PWD:r" "$VENV:r" "$python:r" "$DJANGO_STATIC_ROOT:r" "$RUN_DIR:r" "$DJANGO_MEDIA_ROOT:w")
  if [ -n "$database" ]; then
    chown "$SERVE_USER:$group" "$(dirname "$database")"
    find "$(dirname "$database")" -maxdepth 1 -name "$(basename "$database")*" ! -user "$SERVE_USER" \
      -exec chown "$SERVE_USER:$group" {} +
    paths+=("$database:w")
  fi
  check_serve_user "${paths[@]}" || exit 1
  if [ "$SERVE_USER" = root ]; then
    log "WARNING: SERVE_USER=root: uWSGI and nginx's workers run as root"
  else
    log "uWSGI and nginx's workers run as $SERVE_USER"
  fi
}

serve() {
  PORT=${PORT:-8080}
  if [ -z "${RUN_DIR:-}" ]; then
    RUN_DIR=$(mktemp -d /tmp/onlineocr-run.XXXXXX)
    chmod 755 "$RUN_DIR"  # nginx's workers keep large request bodies under it
  fi
  mkdir -p "$RUN_DIR"
  export UWSGI_SOCKET=${UWSGI_SOCKET:-127.0.0.1:8001}
  export UWSGI_HARAKIRI=${UWSGI_HARAKIRI:-120}
  export DJANGO_STATIC_ROOT=${DJANGO_STATIC_ROOT:-$PWD/staticfiles}
  export DJANGO_MEDIA_ROOT=${DJANGO_MEDIA_ROOT:-$PWD/media}
  # Production posture: TLS ends at the load balancer in front of nginx, which forwards
  # X-Forwarded-Proto; cookies are Secure, plain http is redirected, HSTS is on.
  # DJANGO_PLAIN_HTTP=1 says this deployment is plain http on purpose: all four default off.
  export DJANGO_DEBUG=${DJANGO_DEBUG:-0}
  local tls=1 hsts=31536000
  if [ "${DJANGO_PLAIN_HTTP:-0}" = 1 ]; then tls=0 hsts=0; fi
  export DJANGO_BEHIND_TLS_PROXY=${DJANGO_BEHIND_TLS_PROXY:-$tls}
  export DJANGO_SECURE_COOKIES=${DJANGO_SECURE_COOKIES:-$tls}
  export DJANGO_SECURE_SSL_REDIRECT=${DJANGO_SECURE_SSL_REDIRECT:-$tls}
  export DJANGO_HSTS_SECONDS=${DJANGO_HSTS_SECONDS:-$hsts}
  # nginx appends the address it saw to X-Forwarded-For: count throttles by that entry.
  export OCR_NUM_PROXIES=${OCR_NUM_PROXIES:-1}
  prepare_django
  if ! "$PY" manage.py check --deploy --fail-level WARNING; then
    log "check --deploy failed. To serve plain http on purpose (loopback, or a network you trust," \
      "no TLS proxy in front), set DJANGO_PLAIN_HTTP=1 rather than turning the TLS settings off one by one."
    exit 1
  fi
  if [ "${DJANGO_PLAIN_HTTP:-0}" = 1 ]; then
    log "WARNING: DJANGO_PLAIN_HTTP=1: plain http, no HTTPS redirect, no HSTS, cookies without Secure:" \
      "passwords, tokens and images cross the network in the clear. Only on loopback or a network you trust."
  fi
  local facts
  facts=$("$PY" manage.py shell -v 0 -c "from django.conf import settings as s; db = s.DATABASES['default']
print(s.OCR_MAX_REQUEST_BYTES, db['NAME'] if db['ENGINE'].endswith('sqlite3') else '')")
  MAX_BODY_BYTES=${facts%% *}
  NGINX_USER=()
  if [ "$(id -u)" -eq 0 ]; then drop_privileges "${facts#* }"; fi
  render_nginx_conf "$RUN_DIR/nginx.conf"

  # nginx opens its access log, /dev/stdout, by name, which a user who does not own the
  # stdout it inherits may not do: a container engine's pipe is root's when the image runs as
  # its USER. Then hand it a pipe of this user's own, which cat copies to the real stdout.
  if ! /usr/bin/test -w /dev/stdout; then exec > >(exec cat); fi

  local status=0 stopping=0
  trap 'stopping=1' TERM INT
  "$VENV/bin/uwsgi" --ini uwsgi.ini &
  local uwsgi_pid=$!
  nginx -e stderr "${NGINX_USER[@]}" -c "$RUN_DIR/nginx.conf" &
  local nginx_pid=$!
  log "serving on http://0.0.0.0:$PORT/ (nginx pid $nginx_pid, uWSGI pid $uwsgi_pid on $UWSGI_SOCKET)"
  # Until SIGTERM/SIGINT or either one ends (nginx refusing its config ends at once): then stop
  # both (uWSGI dies on TERM, nginx shuts down fast on TERM), so a half-started stack never
  # lingers unhealthy. Polled, as `wait -n` misses a job that ended before it was called.
  while [ "$stopping" -eq 0 ] && kill -0 "$uwsgi_pid" 2>/dev/null && kill -0 "$nginx_pid" 2>/dev/null; do
    sleep 1 &
    wait $! 2>/dev/null || true  # a trapped signal ends this wait at once
  done
  local pid
  for pid in "$uwsgi_pid" "$nginx_pid"; do
    if ! kill -0 "$pid" 2>/dev/null && [ "$status" -eq 0 ]; then
      wait "$pid" 2>/dev/null || status=$?
      [ "$status" -eq 0 ] && status=1  # a server that ends by itself is a failure
      log "$([ "$pid" = "$uwsgi_pid" ] && echo uWSGI || echo nginx) exited by itself"
    fi
  done
  kill -TERM "$uwsgi_pid" "$nginx_pid" 2>/dev/null || true
  wait "$uwsgi_pid" "$nginx_pid" 2>/dev/null || true
  if [ "$stopping" -eq 1 ]; then status=0; fi
  log "stopped (status $status)"
  exit "$status"
}

# The default: uWSGI with no nginx in front, its own HTTP router on $HOST:$PORT ([embedded] in
# uwsgi.ini; the workers are serve's: one process per core, engines warmed after fork). Plain
# http on loopback, DEBUG off, as whoever started it (no SERVE_USER: a newcomer's checkout and
# Python may be under a private /root). exec: Ctrl-C and SIGTERM reach uWSGI's master itself.
embedded() {
  export HOST PORT
  log "serving on http://$HOST:$PORT/ (uWSGI, ${UWSGI_PROCESSES:-$(nproc)} processes; API docs at /docs/)"
  exec "$VENV/bin/uwsgi" --ini uwsgi.ini:embedded
}

cmd=${1:-run}
[ $# -gt 0 ] && shift
case "$cmd" in
  install)
    install_system "${SYSTEM_PACKAGES[@]}" "${SERVE_PACKAGES[@]}"
    install_python
    ;;
  run)
    PORT=${PORT:-9999}
    install_system "${SYSTEM_PACKAGES[@]}"
    install_python
    prepare_django
    embedded
    ;;
  dev)
    PORT=${PORT:-9999}
    install_system "${SYSTEM_PACKAGES[@]}"
    install_python
    prepare_django
    log "serving on http://$HOST:$PORT/ with Django's development server (API docs at /docs/)"
    exec "$PY" manage.py runserver "$HOST:$PORT"
    ;;
  test)
    install_system "${SYSTEM_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    install_python requirements-dev.txt
    ensure_secret_key
    "$PY" manage.py collectstatic --noinput -v 0
    log "ruff"
    "$VENV/bin/ruff" check .
    log "pytest on ${DATABASE_URL:-SQLite (db/)}"
    exec "$VENV/bin/pytest" "$@"
    ;;
  test-image)
    install_system "${SYSTEM_PACKAGES[@]}" "${TEST_PACKAGES[@]}" "${IMAGE_TEST_PACKAGES[@]}"
    install_python requirements-dev.txt
    ensure_secret_key
    "$PY" manage.py collectstatic --noinput -v 0
    log "pytest -m image (app/tests/image.py)"
    status=0
    ONLINEOCR_IMAGE_TEST=1 "$VENV/bin/pytest" -m image "$@" || status=$?
    if [ -f artifacts/image-test.json ]; then log "figures"; cat artifacts/image-test.json; echo; fi
    exit "$status"
    ;;
  serve)
    install_system "${SYSTEM_PACKAGES[@]}" "${SERVE_PACKAGES[@]}"
    install_python
    serve
    ;;
  worker)
    install_system "${SYSTEM_PACKAGES[@]}"
    install_python
    ensure_secret_key
    : "${CELERY_BROKER_URL:?set CELERY_BROKER_URL, e.g. redis://127.0.0.1:6379/0}"
    export OCR_ASYNC=1 OCR_ENGINE_THREADS=1 OMP_THREAD_LIMIT=1
    # One process per core, one job each at a time (OCR is CPU-bound), fair scheduling.
    exec "$VENV/bin/celery" -A onlineocr worker --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-$(nproc)}" --prefetch-multiplier 1 -O fair "$@"
    ;;
  *)
    echo "usage: $0 [run|dev|serve|worker|install|test [pytest args]|test-image [pytest args]]" >&2
    exit 2
    ;;
esac
