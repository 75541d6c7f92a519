-- Every seat's history (GET /events/{id}/changes), and signed webhooks delivered from an outbox.
--
-- A change row is written unnumbered (seq NULL) by the transaction that makes the change (confirm,
-- cancel, Postgres holds), or by the flush that copies a hold script's entries out of Redis; the
-- flush numbers rows per event (history_heads.last_seq) under a lock on the event's head row, so
-- readers see numbers appear in order and never a gap filled later.

CREATE TABLE seat_changes (
    change_id         BIGINT GENERATED ALWAYS AS IDENTITY,
    event_id          BIGINT      NOT NULL,
    -- NULL until the flush numbers it; per event, strictly increasing, never reused.
    seq               BIGINT,
    at                TIMESTAMPTZ NOT NULL,
    seat_code         TEXT,
    tier_code         TEXT,
    quantity          INTEGER,
    change            TEXT        NOT NULL,
    status            TEXT        NOT NULL,
    hold_group_id     UUID        NOT NULL,
    booking_group_id  UUID,
    user_id           TEXT        NOT NULL,
    expires_at        TIMESTAMPTZ,
    -- What it sold or gave back (booked and cancelled rows), for the webhook's totalPrice.
    price_cents       BIGINT      NOT NULL DEFAULT 0,
    CONSTRAINT seat_changes_pkey PRIMARY KEY (change_id),
    CONSTRAINT seat_changes_event_fkey FOREIGN KEY (event_id) REFERENCES events (event_id),
    CONSTRAINT seat_changes_one_seq_per_event UNIQUE (event_id, seq),
    CONSTRAINT seat_changes_seat_or_tier CHECK ((seat_code IS NULL) <> (tier_code IS NULL)),
    CONSTRAINT seat_changes_tier_quantity CHECK ((tier_code IS NULL) = (quantity IS NULL)),
    CONSTRAINT seat_changes_change_known
        CHECK (change IN ('HELD', 'EXTENDED', 'RELEASED', 'EXPIRED', 'BOOKED', 'CANCELLED')),
    CONSTRAINT seat_changes_status_known CHECK (status IN ('AVAILABLE', 'HELD', 'BOOKED'))
);
-- A seat's history, newest first.
CREATE INDEX seat_changes_seat_idx ON seat_changes (event_id, seat_code, seq) WHERE seq IS NOT NULL;
-- The rows the flush has yet to number.
CREATE INDEX seat_changes_unnumbered_idx ON seat_changes (event_id, change_id) WHERE seq IS NULL;
-- The retention sweep.
CREATE INDEX seat_changes_at_idx ON seat_changes (at);

-- Per event: the last number given, and how far the Redis stream was copied (its last entry id).
CREATE TABLE history_heads (
    event_id     BIGINT NOT NULL,
    last_seq     BIGINT NOT NULL DEFAULT 0,
    stream_pos   TEXT   NOT NULL DEFAULT '0-0',
    CONSTRAINT history_heads_pkey PRIMARY KEY (event_id),
    CONSTRAINT history_heads_event_fkey FOREIGN KEY (event_id) REFERENCES events (event_id)
);

-- Holds the history has recorded as taken and not yet as ended: the flush records their expiry
-- (Redis forgets an expired hold; nothing else would tell).
CREATE TABLE history_open_holds (
    event_id         BIGINT      NOT NULL,
    hold_group_id    UUID        NOT NULL,
    user_id          TEXT        NOT NULL,
    seat_codes       TEXT[]      NOT NULL,
    tier_codes       TEXT[]      NOT NULL,
    tier_quantities  INTEGER[]   NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    CONSTRAINT history_open_holds_pkey PRIMARY KEY (event_id, hold_group_id)
);
CREATE INDEX history_open_holds_expires_idx ON history_open_holds (expires_at);
CREATE INDEX history_open_holds_event_expires_idx ON history_open_holds (event_id, expires_at);

-- Webhook endpoints (Standard Webhooks). `types` / `event_ids` NULL mean all.
CREATE TABLE webhook_endpoints (
    endpoint_id        UUID        NOT NULL,
    url                TEXT        NOT NULL,
    types              TEXT[],
    event_ids          BIGINT[],
    description        TEXT        NOT NULL DEFAULT '',
    enabled            BOOLEAN     NOT NULL DEFAULT TRUE,
    disabled_reason    TEXT,
    -- The signing secret ("whsec_" + base64), and the one it replaced, still signed with until
    -- previous_until (24 h after a rotation).
    secret             TEXT        NOT NULL,
    previous_secret    TEXT,
    previous_until     TIMESTAMPTZ,
    -- Since when every attempt has failed (NULL after a success): past
    -- webhooks.disable_after_hours the endpoint is disabled.
    failing_since      TIMESTAMPTZ,
    -- While an instance delivers to the endpoint, the end of its lease: one instance at a time
    -- per endpoint, so its messages go in order and a 410 stops every delivery to it.
    busy_until         TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT webhook_endpoints_pkey PRIMARY KEY (endpoint_id)
);

-- One message to one endpoint: its body is made once (signed and sent the same on every retry
-- and replay); `message_id` is its webhook-id.
CREATE TABLE webhook_messages (
    endpoint_id      UUID        NOT NULL,
    message_id       TEXT        NOT NULL,
    event_id         BIGINT      NOT NULL,
    type             TEXT        NOT NULL,
    seq              BIGINT      NOT NULL,
    body             TEXT        NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'pending',
    attempts         INTEGER     NOT NULL DEFAULT 0,
    -- Attempts since it was last queued (a replay starts the retry schedule again).
    round_attempts   INTEGER     NOT NULL DEFAULT 0,
    -- When it is due; while an instance delivers it, the end of that instance's lease.
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT webhook_messages_pkey PRIMARY KEY (endpoint_id, message_id),
    CONSTRAINT webhook_messages_endpoint_fkey FOREIGN KEY (endpoint_id)
        REFERENCES webhook_endpoints (endpoint_id) ON DELETE CASCADE,
    CONSTRAINT webhook_messages_status_known CHECK (status IN ('pending', 'delivered', 'failed'))
);
CREATE INDEX webhook_messages_due_idx ON webhook_messages (endpoint_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_messages_endpoint_idx ON webhook_messages (endpoint_id, created_at DESC);
CREATE INDEX webhook_messages_created_idx ON webhook_messages (created_at);

CREATE TABLE webhook_attempts (
    endpoint_id  UUID        NOT NULL,
    message_id   TEXT        NOT NULL,
    attempt      INTEGER     NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER     NOT NULL,
    CONSTRAINT webhook_attempts_pkey PRIMARY KEY (endpoint_id, message_id, attempt),
    CONSTRAINT webhook_attempts_message_fkey FOREIGN KEY (endpoint_id, message_id)
        REFERENCES webhook_messages (endpoint_id, message_id) ON DELETE CASCADE
);
