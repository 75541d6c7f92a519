-- Hold extension (POST /events/{id}/seats/extend): how many times a Postgres hold was extended;
-- its lifetime is counted from created_at.
ALTER TABLE holds ADD COLUMN renewals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE holds ADD CONSTRAINT holds_renewals_not_negative CHECK (renewals >= 0);
