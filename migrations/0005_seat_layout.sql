-- Where a seat is in the hall, for seat maps (and later, best-available choices): an optional row
-- label ("A", "Balcony 2") and seat number within the row. Seats created without them are laid
-- out in creation order.
ALTER TABLE seats ADD COLUMN row_label TEXT;
ALTER TABLE seats ADD COLUMN seat_number INTEGER;
ALTER TABLE seats ADD CONSTRAINT seats_row_label_length
    CHECK (row_label IS NULL OR char_length(row_label) BETWEEN 1 AND 16);
ALTER TABLE seats ADD CONSTRAINT seats_number_positive
    CHECK (seat_number IS NULL OR seat_number BETWEEN 1 AND 100000);
