-- Core schema: events, their seats, and bookings.
-- Every table carries event_id and every key starts with it, so the data can be sharded by event.
-- Constraints are named so that store code can map a violation by name.

CREATE TABLE events (
    event_id     BIGINT GENERATED ALWAYS AS IDENTITY,
    name         TEXT        NOT NULL,
    starts_at    TIMESTAMPTZ NOT NULL,
    location     TEXT        NOT NULL,
    total_seats  INTEGER     NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (event_id),
    CONSTRAINT events_name_not_blank CHECK (btrim(name) <> ''),
    CONSTRAINT events_total_seats_positive CHECK (total_seats > 0)
);

CREATE TABLE seats (
    event_id     BIGINT  NOT NULL,
    seat_code    TEXT    NOT NULL,
    -- Position in the seat map, 1-based, so listings keep the order the event was created with.
    position     INTEGER NOT NULL,
    seat_type    TEXT    NOT NULL DEFAULT 'STANDARD',
    price_cents  BIGINT  NOT NULL DEFAULT 0,
    CONSTRAINT seats_pkey PRIMARY KEY (event_id, seat_code),
    CONSTRAINT seats_event_fkey FOREIGN KEY (event_id) REFERENCES events (event_id),
    CONSTRAINT seats_price_not_negative CHECK (price_cents >= 0)
);

CREATE TABLE bookings (
    event_id           BIGINT      NOT NULL,
    -- The holdGroupId of the hold this booking confirmed: one id from hold to booking.
    booking_group_id   UUID        NOT NULL,
    user_id            TEXT        NOT NULL,
    status             TEXT        NOT NULL DEFAULT 'CONFIRMED',
    total_price_cents  BIGINT      NOT NULL,
    confirmed_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    cancelled_at       TIMESTAMPTZ,
    CONSTRAINT bookings_pkey PRIMARY KEY (event_id, booking_group_id),
    CONSTRAINT bookings_event_fkey FOREIGN KEY (event_id) REFERENCES events (event_id),
    CONSTRAINT bookings_status_known CHECK (status IN ('CONFIRMED', 'CANCELLED')),
    CONSTRAINT bookings_cancelled_at_iff_cancelled
        CHECK ((status = 'CANCELLED') = (cancelled_at IS NOT NULL))
);

CREATE TABLE booking_seats (
    event_id          BIGINT  NOT NULL,
    booking_group_id  UUID    NOT NULL,
    seat_code         TEXT    NOT NULL,
    price_cents       BIGINT  NOT NULL,
    -- True while the booking is CONFIRMED; a cancel clears it and frees the seat.
    active            BOOLEAN NOT NULL DEFAULT TRUE,
    CONSTRAINT booking_seats_pkey PRIMARY KEY (event_id, booking_group_id, seat_code),
    CONSTRAINT booking_seats_booking_fkey FOREIGN KEY (event_id, booking_group_id)
        REFERENCES bookings (event_id, booking_group_id),
    CONSTRAINT booking_seats_seat_fkey FOREIGN KEY (event_id, seat_code)
        REFERENCES seats (event_id, seat_code)
);

-- The guard: at most one active (confirmed) booking per seat, whatever Redis says.
CREATE UNIQUE INDEX booking_seats_one_active_per_seat
    ON booking_seats (event_id, seat_code) WHERE active;
