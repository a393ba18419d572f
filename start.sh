#!/usr/bin/env bash
# onlineocr set-up and run, in one place.
#   ./start.sh            install what is missing, migrate, serve on http://$HOST:$PORT (SQLite, OCR in-process)
#   ./start.sh test [ARGS] install what is missing (tests too), then run ruff and the whole pytest suite
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

# Debian packages: the Tesseract binary with English and Chinese packs; fonts and a browser for the tests.
SYSTEM_PACKAGES=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim)
# nginx, and a C compiler for the one wheel-less requirement (uWSGI builds from source).
SERVE_PACKAGES=(nginx-light gcc libc6-dev)
TEST_PACKAGES=(fonts-dejavu-core fonts-noto-cjk chromium "${SERVE_PACKAGES[@]}")

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
  # Reinstall only when either requirements file changed since the last install of $file.
  local stamp="$VENV/.${file%.txt}.sha256" want
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "pip install -r $file"
    "$PY" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    "$PY" -m pip install -q --disable-pip-version-check -r "$file" 2>&1 | grep -v '^WARNING: Location' || true
    "$PY" -c "import django, rest_framework, rapidocr, ddddocr, pytesseract" || { log "pip install failed"; exit 1; }
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

serve() {
  PORT=${PORT:-8080}
  RUN_DIR=${RUN_DIR:-$(mktemp -d /tmp/onlineocr-run.XXXXXX)}
  mkdir -p "$RUN_DIR"
  export UWSGI_SOCKET=${UWSGI_SOCKET:-127.0.0.1:8001}
  export UWSGI_HARAKIRI=${UWSGI_HARAKIRI:-120}
  export DJANGO_STATIC_ROOT=${DJANGO_STATIC_ROOT:-$PWD/staticfiles}
  export DJANGO_MEDIA_ROOT=${DJANGO_MEDIA_ROOT:-$PWD/media}
  # Production posture: TLS ends at the load balancer in front of nginx, which forwards
  # X-Forwarded-Proto; cookies are Secure, plain http is redirected, HSTS is on.
  export DJANGO_DEBUG=${DJANGO_DEBUG:-0}
  export DJANGO_BEHIND_TLS_PROXY=${DJANGO_BEHIND_TLS_PROXY:-1}
  export DJANGO_SECURE_COOKIES=${DJANGO_SECURE_COOKIES:-1}
  export DJANGO_SECURE_SSL_REDIRECT=${DJANGO_SECURE_SSL_REDIRECT:-1}
  export DJANGO_HSTS_SECONDS=${DJANGO_HSTS_SECONDS:-31536000}
  # nginx appends the address it saw to X-Forwarded-For: count throttles by that entry.
  export OCR_NUM_PROXIES=${OCR_NUM_PROXIES:-1}
  prepare_django
  "$PY" manage.py check --deploy --fail-level WARNING
  MAX_BODY_BYTES=$("$PY" manage.py shell -v 0 -c "from django.conf import settings; print(settings.OCR_MAX_REQUEST_BYTES)")
  render_nginx_conf "$RUN_DIR/nginx.conf"

  "$VENV/bin/uwsgi" --ini uwsgi.ini &
  local uwsgi_pid=$!
  nginx -e stderr -c "$RUN_DIR/nginx.conf" &
  local nginx_pid=$!
  log "serving on http://0.0.0.0:$PORT/ (nginx pid $nginx_pid, uWSGI pid $uwsgi_pid on $UWSGI_SOCKET)"
  # SIGTERM/SIGINT: stop both (uWSGI dies on TERM, nginx shuts down fast on TERM).
  local status=0 stopping=0
  trap 'stopping=1' TERM INT
  wait -n "$uwsgi_pid" "$nginx_pid" || status=$?
  kill -TERM "$uwsgi_pid" "$nginx_pid" 2>/dev/null || true
  wait "$uwsgi_pid" "$nginx_pid" 2>/dev/null || true
  if [ "$stopping" -eq 1 ]; then status=0; fi
  log "stopped (status $status)"
  exit "$status"
}

cmd=${1:-dev}
[ $# -gt 0 ] && shift
case "$cmd" in
  install)
    install_system "${SYSTEM_PACKAGES[@]}" "${SERVE_PACKAGES[@]}"
    install_python
    ;;
  dev)
    PORT=${PORT:-9999}
    install_system "${SYSTEM_PACKAGES[@]}"
    install_python
    prepare_django
    log "serving on http://$HOST:$PORT/ (API docs at /docs/)"
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
    echo "usage: $0 [dev|serve|worker|install|test [pytest args]]" >&2
    exit 2
    ;;
esac
