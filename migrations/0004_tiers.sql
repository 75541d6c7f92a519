-- General admission: tiers sold by quantity (a standing floor, a day pass, "Tier 1"). Postgres is
-- the truth: a tier's `sold` can never pass its capacity (tiers_sold_within_capacity), whatever
-- Redis says; booking lines per tier; Postgres holds of tier units beside held_seats.

-- An event may have tiers only (no numbered seats).
ALTER TABLE events DROP CONSTRAINT events_total_seats_positive;
ALTER TABLE events ADD CONSTRAINT events_total_seats_not_negative CHECK (total_seats >= 0);

CREATE TABLE tiers (
    event_id     BIGINT  NOT NULL,
    tier_code    TEXT    NOT NULL,
    -- Creation order, 1-based.
    position     INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    price_cents  BIGINT  NOT NULL DEFAULT 0,
    capacity     INTEGER NOT NULL,
    sold         INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT tiers_pkey PRIMARY KEY (event_id, tier_code),
    CONSTRAINT tiers_event_fkey FOREIGN KEY (event_id) REFERENCES events (event_id),
    CONSTRAINT tiers_capacity_positive CHECK (capacity > 0),
    CONSTRAINT tiers_price_not_negative CHECK (price_cents >= 0),
    CONSTRAINT tiers_sold_not_negative CHECK (sold >= 0),
    -- The guard of general admission: never sold past capacity.
    CONSTRAINT tiers_sold_within_capacity CHECK (sold <= capacity)
);

CREATE TABLE booking_tiers (
    event_id          BIGINT  NOT NULL,
    booking_group_id  UUID    NOT NULL,
    tier_code         TEXT    NOT NULL,
    quantity          INTEGER NOT NULL,
    -- Unit price at the time of the sale.
    price_cents       BIGINT  NOT NULL,
    -- True while the booking is CONFIRMED; a cancel clears it and gives the units back.
    active            BOOLEAN NOT NULL DEFAULT TRUE,
    CONSTRAINT booking_tiers_pkey PRIMARY KEY (event_id, booking_group_id, tier_code),
    CONSTRAINT booking_tiers_booking_fkey FOREIGN KEY (event_id, booking_group_id)
        REFERENCES bookings (event_id, booking_group_id),
    CONSTRAINT booking_tiers_tier_fkey FOREIGN KEY (event_id, tier_code)
        REFERENCES tiers (event_id, tier_code),
    CONSTRAINT booking_tiers_quantity_positive CHECK (quantity > 0)
);

-- Tier units of Postgres holds (the fallback and the Postgres-only mode). A row past held_until is
-- ignored at once and swept later.
CREATE TABLE held_tiers (
    event_id       BIGINT      NOT NULL,
    hold_group_id  UUID        NOT NULL,
    tier_code      TEXT        NOT NULL,
    quantity       INTEGER     NOT NULL,
    held_until     TIMESTAMPTZ NOT NULL,
    CONSTRAINT held_tiers_pkey PRIMARY KEY (event_id, hold_group_id, tier_code),
    CONSTRAINT held_tiers_tier_fkey FOREIGN KEY (event_id, tier_code)
        REFERENCES tiers (event_id, tier_code),
    CONSTRAINT held_tiers_quantity_positive CHECK (quantity > 0)
);
CREATE INDEX held_tiers_tier_idx ON held_tiers (event_id, tier_code, held_until);
CREATE INDEX held_tiers_held_until_idx ON held_tiers (held_until);

-- A Postgres hold keeps its tier lines beside its seats (held_tiers has one row per tier line
-- too, for the availability sums).
ALTER TABLE holds ADD COLUMN tier_codes TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE holds ADD COLUMN tier_quantities INTEGER[] NOT NULL DEFAULT '{}';
