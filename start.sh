#!/usr/bin/env bash
# onlineocr set-up and run, in one place.
#   ./start.sh            install what is missing, migrate, serve on http://$HOST:$PORT (SQLite, OCR in-process)
#   ./start.sh test [ARGS] install what is missing (tests too), then run ruff and the whole pytest suite
# Environment: HOST (127.0.0.1), PORT (9999), VENV (.venv), plus the settings in the README.
set -euo pipefail
cd "$(dirname "$0")"

HOST=${HOST:-127.0.0.1}
PORT=${PORT:-9999}
VENV=${VENV:-.venv}
PY="$VENV/bin/python"

log() { printf '==> %s\n' "$*" >&2; }

# Debian packages: the Tesseract binary with English and Chinese packs; fonts for the tests.
SYSTEM_PACKAGES=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim)
TEST_PACKAGES=(fonts-dejavu-core fonts-noto-cjk)

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

install_python() {
  if [ ! -x "$PY" ]; then
    log "creating virtual environment in $VENV"
    python3 -m venv "$VENV"
  fi
  # Reinstall only when requirements.txt changed since the last install.
  local stamp="$VENV/.requirements.sha256" want
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "pip install -r requirements.txt"
    "$PY" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    "$PY" -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
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

cmd=${1:-dev}
[ $# -gt 0 ] && shift
case "$cmd" in
  dev)
    install_system "${SYSTEM_PACKAGES[@]}"
    install_python
    prepare_django
    log "serving on http://$HOST:$PORT/ (API docs at /docs/)"
    exec "$PY" manage.py runserver "$HOST:$PORT"
    ;;
  test)
    install_system "${SYSTEM_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    install_python
    ensure_secret_key
    "$PY" manage.py collectstatic --noinput -v 0
    log "ruff"
    "$VENV/bin/ruff" check .
    log "pytest on ${DATABASE_URL:-SQLite (db/)}"
    exec "$VENV/bin/pytest" "$@"
    ;;
  *)
    echo "usage: $0 [dev|test [pytest args]]" >&2
    exit 2
    ;;
esac
