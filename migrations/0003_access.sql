-- Who may do what: API keys for checkout backends and admins. Only a SHA-256 digest of each key
-- is kept; the key itself is shown once, when it is created.

CREATE TABLE api_keys (
    key_digest    BYTEA       NOT NULL,
    name          TEXT        NOT NULL,
    role          TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Written at most once a minute per key and instance.
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    CONSTRAINT api_keys_pkey PRIMARY KEY (key_digest),
    CONSTRAINT api_keys_digest_length CHECK (length(key_digest) = 32),
    CONSTRAINT api_keys_role_known CHECK (role IN ('service', 'admin')),
    CONSTRAINT api_keys_name_valid CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$')
);

-- A name names one live key; a revoked key's name may be given to a new key.
CREATE UNIQUE INDEX api_keys_live_name ON api_keys (name) WHERE revoked_at IS NULL;

-- The per-buyer caps count a buyer's holds and bookings of one event.
CREATE INDEX bookings_event_user_idx ON bookings (event_id, user_id);
CREATE INDEX holds_event_user_idx ON holds (event_id, user_id);
