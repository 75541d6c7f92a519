-- Who may buy what, and when (issue 23): sales windows on the event and on its channels, the
-- Queue-it event an admission token names, and channels that own seats.

-- The event's sales window: open from sales_start (inclusive) until sales_end (exclusive); a
-- bound left out is open-ended.
ALTER TABLE events ADD COLUMN sales_start TIMESTAMPTZ;
ALTER TABLE events ADD COLUMN sales_end TIMESTAMPTZ;
ALTER TABLE events ADD COLUMN queueit_event_id TEXT;
-- Bumped by every change of the window, the Queue-it id or the channels: the Redis copy of the
-- policy is written only from a newer version than it holds.
ALTER TABLE events ADD COLUMN policy_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE events ADD CONSTRAINT events_sales_window_ordered
    CHECK (sales_start IS NULL OR sales_end IS NULL OR sales_end > sales_start);
ALTER TABLE events ADD CONSTRAINT events_queueit_event_id_valid
    CHECK (queueit_event_id IS NULL OR queueit_event_id ~ '^[A-Za-z0-9._-]{1,100}$');

-- A sales channel of an event (a presale, a partner): its own window, each bound it leaves out
-- taken from the event's.
CREATE TABLE event_channels (
    event_id     BIGINT      NOT NULL,
    channel      TEXT        NOT NULL,
    position     INTEGER     NOT NULL,
    sales_start  TIMESTAMPTZ,
    sales_end    TIMESTAMPTZ,
    CONSTRAINT event_channels_pkey PRIMARY KEY (event_id, channel),
    CONSTRAINT event_channels_event_fkey FOREIGN KEY (event_id)
        REFERENCES events (event_id) ON DELETE CASCADE,
    CONSTRAINT event_channels_code_valid CHECK (channel ~ '^[A-Za-z0-9._-]{1,64}$'),
    CONSTRAINT event_channels_window_ordered
        CHECK (sales_start IS NULL OR sales_end IS NULL OR sales_end > sales_start)
);

-- A seat allocated to a channel is held only by a caller in it; NULL: open to everyone.
ALTER TABLE seats ADD COLUMN channel TEXT;
ALTER TABLE seats ADD CONSTRAINT seats_channel_fkey FOREIGN KEY (event_id, channel)
    REFERENCES event_channels (event_id, channel) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX seats_channel_idx ON seats (event_id, channel) WHERE channel IS NOT NULL;

-- The admission a Postgres hold was taken under (a waiting room's buyer): its live holds are
-- counted against admission.max_live_holds.
ALTER TABLE holds ADD COLUMN admission TEXT;
CREATE INDEX holds_event_admission_idx ON holds (event_id, admission) WHERE admission IS NOT NULL;
