#!/usr/bin/env bash
# Browser tests of the buyer page (tests/browser/buyer_page.py): Debian's chromium driven by
# Python playwright through its executable path (no browser download). Starts three seatlock
# processes (target/debug/seatlock, or $SEATLOCK_BIN) on free ports, sharing one database of their
# own and one Redis key prefix: MAIN with a 60 s hold TTL, SHORT with 2 s for the expiry case,
# TOKEN in token mode (buyers with JWTs).
# Installs playwright into .venv-browser/ on first use. Screenshots: target/browser/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
BIN="${SEATLOCK_BIN:-$ROOT/target/debug/seatlock}"
PLAYWRIGHT_VERSION="1.65.2"
CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
log() { echo "[browser] $*" >&2; }

[ -x "$BIN" ] || { log "build first: cargo build (no $BIN)"; exit 1; }
[ -n "$CHROMIUM" ] || { log "chromium not found (Debian: apt-get install chromium)"; exit 1; }
if ! .venv-browser/bin/python -c "import playwright, importlib.metadata as m; assert m.version('playwright') == '$PLAYWRIGHT_VERSION'" 2>/dev/null; then
  log "installing playwright $PLAYWRIGHT_VERSION into .venv-browser/ (the library only; chromium comes from Debian)"
  python3 -m venv .venv-browser
  .venv-browser/bin/pip install -q "playwright==$PLAYWRIGHT_VERSION"
fi

admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
server="${admin_url%/*}"
db="seatlock_browser_$$"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
main_port="$(free_port)"
short_port="$(free_port)"
token_port="$(free_port)"
token_secret="browser-test-secret-$$-0123456789abcdefghijklmnopqrstuvwxyz"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

mkdir -p target/browser
export DATABASE_URL="$server/$db"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export APP__REDIS__KEY_PREFIX="browser-$$"
export APP__LOG__LEVEL=warn
PORT="$main_port" APP__HOLDS__TTL_SECONDS=60 "$BIN" >target/browser/main.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$main_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
PORT="$short_port" APP__HOLDS__TTL_SECONDS=2 "$BIN" >target/browser/short.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$short_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
PORT="$token_port" APP__AUTH__MODE=token APP__AUTH__JWT__HS256_SECRET="$token_secret" "$BIN" >target/browser/token.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$token_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
log "seatlock on :$main_port (TTL 60 s), :$short_port (TTL 2 s) and :$token_port (token mode); chromium $("$CHROMIUM" --version 2>/dev/null | head -1)"
MAIN_URL="http://127.0.0.1:$main_port" SHORT_URL="http://127.0.0.1:$short_port" \
  TOKEN_URL="http://127.0.0.1:$token_port" TOKEN_SECRET="$token_secret" \
  CHROMIUM="$CHROMIUM" SHOTS_DIR="$ROOT/target/browser" \
  .venv-browser/bin/python tests/browser/buyer_page.py
