# seatlock container image: a Rust builder stage and a slim Debian runtime.
#
#   docker build -t seatlock .
#   docker compose up --build        (the whole stack; see docs/observability.md)

# ---------------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /build

# Dependency layer: compile every dependency against a placeholder crate that has the real
# manifest and lockfile. This layer is rebuilt only when Cargo.toml or Cargo.lock change, so an
# edit under src/ recompiles seatlock alone, not the ~250 crates beneath it.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# The crate itself. config/default.toml, lua/*.lua, migrations/ and the buyer page in web/ are
# compiled in (include_str!/include_bytes! and sqlx::migrate!), so they are needed here as well
# as src/.
COPY src ./src
COPY config ./config
COPY lua ./lua
COPY migrations ./migrations
COPY web ./web
# COPY keeps the files' own mtimes, which can be older than the placeholder's build artefacts;
# dropping those artefacts makes cargo rebuild the crate instead of trusting a stale fingerprint.
RUN rm -rf target/release/.fingerprint/seatlock-* \
           target/release/deps/seatlock-* \
           target/release/deps/libseatlock-* \
    && cargo build --release --locked --bin seatlock \
    && cp target/release/seatlock /usr/local/bin/seatlock

# ---------------------------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime

# The binary links only glibc and libgcc_s, both in the base image. It speaks plain TCP to
# Postgres and Redis; its one TLS client (rustls, compiled in) is for webhook receivers on https,
# which it verifies against the system's certificate authorities: ca-certificates is the one
# package installed.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 seatlock \
    && useradd --system --uid 10001 --gid seatlock --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin seatlock

# The service reads config/{APP_ENV}.toml relative to its working directory, so config/ sits
# next to where it runs. default.toml is also compiled in; the copy documents the defaults and
# is where an environment file (config/production.toml, ...) would be mounted.
WORKDIR /app
COPY --from=builder /usr/local/bin/seatlock /usr/local/bin/seatlock
COPY config ./config

# Numeric, so orchestrators can verify runAsNonRoot without reading /etc/passwd.
USER 10001:10001
# APP_ENV picks the optional config/{APP_ENV}.toml layer; without it the service would look for
# config/local.toml, a developer's file. No production.toml ships: the defaults plus environment
# variables (DATABASE_URL, REDIS_URL, PORT, APP__SECTION__KEY) configure the container.
# mimalloc (the service's allocator) gives freed memory back at once and commits its arenas as
# used, instead of keeping the peak of the last big request (creating a 100,000-seat event of
# rows: 37 MB peak instead of 78 MB; the hold path frees few whole pages, see README "Memory").
ENV APP_ENV=production \
    PORT=8080 \
    MIMALLOC_PURGE_DELAY=0 \
    MIMALLOC_ARENA_EAGER_COMMIT=0
EXPOSE 8080

# Health check without curl: bash (part of the base image) opens the TCP connection itself via
# /dev/tcp and sends a bare HTTP/1.0 request; the check passes only on a "200" status line.
# Installing curl would add ~10 MB and a dozen libraries (libcurl, OpenSSL, nghttp2, ...) to an
# image that otherwise installs nothing, for a single GET. /readyz (not /healthz) is used so
# that "healthy" means Postgres and Redis both answer, which is what `depends_on:
# condition: service_healthy` in docker-compose.yml waits for.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8080} && printf 'GET /readyz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

# SIGTERM starts a graceful drain of up to server.shutdown_grace_seconds (20 s by default);
# give `docker stop` a longer timeout than that (compose sets stop_grace_period: 25s).
STOPSIGNAL SIGTERM
CMD ["seatlock"]
