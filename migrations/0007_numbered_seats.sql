-- Events created with totalSeats have the seats S1..S<total_seats> in that order: a cache rebuild
-- then makes their codes itself instead of reading (and sending) every one of them. False for
-- every other event, and for numbered events created before this column (they are read, as
-- before: correct, only slower).
ALTER TABLE events ADD COLUMN seats_numbered BOOLEAN NOT NULL DEFAULT false;
