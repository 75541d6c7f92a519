# shellcheck shell=bash
# Sourced by scripts/run.sh and scripts/test.sh: makes sure a Postgres and a Redis answer at
# DATABASE_URL and REDIS_URL. Reachable ones are reused; otherwise throwaway ones are started from
# the installed binaries (data in a temp dir, stopped when the calling script exits); if the
# binaries are missing it says what to install and fails.

SEATLOCK_TMP="${SEATLOCK_TMP:-$(mktemp -d -t seatlock.XXXXXX)}"
chmod 755 "$SEATLOCK_TMP"
_seatlock_cleanups=()

seatlock_cleanup() {
  local c
  for c in "${_seatlock_cleanups[@]}"; do eval "$c" || true; done
  rm -rf "$SEATLOCK_TMP" 2>/dev/null || true
}
trap seatlock_cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

log() { echo "[seatlock] $*" >&2; }

postgres_answers() {
  command -v psql >/dev/null 2>&1 || return 1
  PGCONNECT_TIMEOUT=3 psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1
}

pg_bin_dir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  command -v pg_ctl >/dev/null 2>&1 && dirname "$(command -v pg_ctl)" && return 0
  return 1
}

# ensure_postgres URL -> exports DATABASE_URL (the given one, or a throwaway server's).
ensure_postgres() {
  local url="$1"
  if postgres_answers "$url"; then
    log "postgres: reusing $url"
    export DATABASE_URL="$url"
    return 0
  fi
  local bin
  if ! bin="$(pg_bin_dir)"; then
    log "postgres is not reachable at $url and its binaries are missing."
    log "install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL to a running server."
    return 1
  fi
  local port dir run_as=()
  port="$(free_port)"
  dir="$SEATLOCK_TMP/pg"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root; use the postgres account the package creates.
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$dir"
    run_as=(runuser -u postgres --)
  fi
  log "postgres: not reachable at $url; starting a throwaway server on port $port"
  "${run_as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$SEATLOCK_TMP/initdb.log" 2>&1 \
    || { cat "$SEATLOCK_TMP/initdb.log" >&2; return 1; }
  "${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null \
    || { cat "$dir/server.log" >&2; return 1; }
  _seatlock_cleanups+=("${run_as[*]} $bin/pg_ctl -D $dir/data -m immediate stop >/dev/null 2>&1")
  local db="${url##*/}"
  db="${db%%\?*}"
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/${db:-postgres}"
}

redis_answers() {
  command -v redis-cli >/dev/null 2>&1 || return 1
  [ "$(timeout 3 redis-cli -u "$1" PING 2>/dev/null)" = "PONG" ]
}

# ensure_redis URL -> exports REDIS_URL (the given one, or a throwaway server's).
ensure_redis() {
  local url="$1"
  if redis_answers "$url"; then
    log "redis: reusing $url"
    export REDIS_URL="$url"
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    log "redis is not reachable at $url and redis-server is missing."
    log "install it (Debian/Ubuntu: apt-get install redis-server) or set REDIS_URL to a running server."
    return 1
  fi
  local port
  port="$(free_port)"
  log "redis: not reachable at $url; starting a throwaway server on port $port"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
    --pidfile "$SEATLOCK_TMP/redis.pid" --logfile "$SEATLOCK_TMP/redis.log" >/dev/null
  local i
  for i in $(seq 50); do redis_answers "redis://127.0.0.1:$port" && break; sleep 0.1; done
  _seatlock_cleanups+=("kill \$(cat $SEATLOCK_TMP/redis.pid) 2>/dev/null")
  export REDIS_URL="redis://127.0.0.1:$port"
}
