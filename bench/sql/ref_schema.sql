-- Postgres-only REFERENCE (not seatlock): the hold table of a plain SELECT ... FOR UPDATE
-- design, created in the benchmark database only (never in migrations/). One row per held
-- seat; a hold is alive while expires_at > now(). Used by bench/sql/ref_*.sql when the binary
-- has no Postgres-only hold backend (APP__HOLDS__BACKEND=postgres) to benchmark.
CREATE TABLE IF NOT EXISTS bench_ref_holds (
    event_id       BIGINT      NOT NULL,
    seat_code      TEXT        NOT NULL,
    hold_group_id  UUID        NOT NULL,
    user_id        TEXT        NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (event_id, seat_code)
);
