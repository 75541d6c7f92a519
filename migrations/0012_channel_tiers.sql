-- Tier units allocated to sales channels (issue 23): a channel's allocation of a tier is held
-- only by callers in the channel. A hold or booking of units keeps which channels' allocations
-- its units came from (`channel_units`, "presale=3,vip=1"; '' when all were open units), so
-- each allocation's use can be counted again after Redis lost it. The tier's capacity stays the
-- guard (tiers_sold_within_capacity): channels only decide who may take which units.

CREATE TABLE channel_tiers (
    event_id   BIGINT  NOT NULL,
    channel    TEXT    NOT NULL,
    tier_code  TEXT    NOT NULL,
    quantity   INTEGER NOT NULL,
    CONSTRAINT channel_tiers_pkey PRIMARY KEY (event_id, channel, tier_code),
    CONSTRAINT channel_tiers_channel_fkey FOREIGN KEY (event_id, channel)
        REFERENCES event_channels (event_id, channel) ON DELETE CASCADE,
    CONSTRAINT channel_tiers_tier_fkey FOREIGN KEY (event_id, tier_code)
        REFERENCES tiers (event_id, tier_code),
    CONSTRAINT channel_tiers_quantity_positive CHECK (quantity > 0)
);

ALTER TABLE held_tiers ADD COLUMN channel_units TEXT NOT NULL DEFAULT '';
ALTER TABLE booking_tiers ADD COLUMN channel_units TEXT NOT NULL DEFAULT '';
