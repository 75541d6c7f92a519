-- Blocked seats (POST /events/{id}/seats/block): held back from sale (the production,
-- wheelchair places, a promoter), with why. A blocked seat can be neither held nor sold; blocking
-- is refused while a seat is held or booked, so a blocked seat is never in an active booking.
ALTER TABLE seats ADD COLUMN blocked_reason TEXT;
ALTER TABLE seats ADD CONSTRAINT seats_blocked_reason_length
    CHECK (blocked_reason IS NULL OR length(blocked_reason) BETWEEN 1 AND 200);

-- The history records blocks and unblocks too.
ALTER TABLE seat_changes DROP CONSTRAINT seat_changes_change_known;
ALTER TABLE seat_changes ADD CONSTRAINT seat_changes_change_known
    CHECK (change IN ('HELD', 'EXTENDED', 'RELEASED', 'EXPIRED', 'BOOKED', 'CANCELLED',
                      'BLOCKED', 'UNBLOCKED'));
ALTER TABLE seat_changes DROP CONSTRAINT seat_changes_status_known;
ALTER TABLE seat_changes ADD CONSTRAINT seat_changes_status_known
    CHECK (status IN ('AVAILABLE', 'HELD', 'BOOKED', 'BLOCKED'));
