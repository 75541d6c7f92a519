-- Holds kept in Postgres (the fallback during a Redis outage, and the Postgres-only mode), and
-- stored responses for Idempotency-Key.

CREATE TABLE holds (
    event_id       BIGINT      NOT NULL,
    hold_group_id  UUID        NOT NULL,
    user_id        TEXT        NOT NULL,
    seat_codes     TEXT[]      NOT NULL,
    held_until     TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT holds_pkey PRIMARY KEY (event_id, hold_group_id),
    CONSTRAINT holds_event_fkey FOREIGN KEY (event_id) REFERENCES events (event_id)
);
CREATE INDEX holds_held_until_idx ON holds (held_until);

-- One row per seat held in Postgres. A row whose held_until has passed is ignored at once and
-- swept later; the confirm guard refuses a seat with a live row of another hold.
CREATE TABLE held_seats (
    event_id       BIGINT      NOT NULL,
    seat_code      TEXT        NOT NULL,
    hold_group_id  UUID        NOT NULL,
    held_until     TIMESTAMPTZ NOT NULL,
    CONSTRAINT held_seats_pkey PRIMARY KEY (event_id, seat_code),
    CONSTRAINT held_seats_seat_fkey FOREIGN KEY (event_id, seat_code)
        REFERENCES seats (event_id, seat_code)
);
CREATE INDEX held_seats_held_until_idx ON held_seats (held_until);

CREATE TABLE idempotency_keys (
    event_id         BIGINT      NOT NULL,
    user_id          TEXT        NOT NULL,
    route            TEXT        NOT NULL,
    idempotency_key  TEXT        NOT NULL,
    fingerprint      TEXT        NOT NULL,
    -- NULL while the first request is in flight; its lease ends at locked_until.
    status_code      INTEGER,
    response_body    BYTEA,
    locked_until     TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (event_id, user_id, route, idempotency_key),
    CONSTRAINT idempotency_keys_key_length CHECK (length(idempotency_key) BETWEEN 1 AND 255)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
