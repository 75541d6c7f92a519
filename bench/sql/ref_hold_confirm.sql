-- Postgres-only REFERENCE, workload (c): a hold + confirm pair per script run.
-- The hold is ref_hold_random.sql (its insert wrapped to count the rows it wrote); when it
-- succeeded, the confirm deletes the live hold row of this user and then runs the same
-- guarded-confirm statements as seatlock (bench/sql/confirm_ceiling.sql, here without
-- ON CONFLICT on the seat: the hold made the seat ours). Pairs are counted afterwards as the
-- bookings of the event. Variables: event, nseats, ttl (seconds).
\set seat random(1, :nseats)
\set hid random(1, 9223372036854775806)
BEGIN;
SELECT seat_code FROM seats
  WHERE event_id = :event AND seat_code = ANY(ARRAY['S' || :seat::text])
  ORDER BY seat_code FOR UPDATE;
WITH ins AS (
  INSERT INTO bench_ref_holds AS h (event_id, seat_code, hold_group_id, user_id, expires_at)
    SELECT :event, c, md5(:hid::text)::uuid, 'pair-' || :client_id::text,
           now() + make_interval(secs => :ttl)
    FROM unnest(ARRAY['S' || :seat::text]) AS c
    WHERE NOT EXISTS (SELECT 1 FROM bench_ref_holds x WHERE x.event_id = :event
                        AND x.seat_code = ANY(ARRAY['S' || :seat::text]) AND x.expires_at > now())
      AND NOT EXISTS (SELECT 1 FROM booking_seats b WHERE b.event_id = :event
                        AND b.seat_code = ANY(ARRAY['S' || :seat::text]) AND b.active)
    ON CONFLICT (event_id, seat_code) DO UPDATE
      SET hold_group_id = EXCLUDED.hold_group_id, user_id = EXCLUDED.user_id,
          expires_at = EXCLUDED.expires_at
    RETURNING 1)
SELECT count(*) AS got FROM ins \gset
COMMIT;
\if :got
BEGIN;
DELETE FROM bench_ref_holds
  WHERE event_id = :event AND seat_code = ANY(ARRAY['S' || :seat::text])
    AND hold_group_id = md5(:hid::text)::uuid AND user_id = 'pair-' || :client_id::text
    AND expires_at > now();
INSERT INTO bookings (event_id, booking_group_id, user_id, total_price_cents)
  SELECT :event, md5(:hid::text)::uuid, 'pair-' || :client_id::text,
         COALESCE(sum(price_cents), 0)::bigint
  FROM seats WHERE event_id = :event AND seat_code = ANY(ARRAY['S' || :seat::text])
  ON CONFLICT ON CONSTRAINT bookings_pkey DO NOTHING;
INSERT INTO booking_seats (event_id, booking_group_id, seat_code, price_cents)
  SELECT :event, md5(:hid::text)::uuid, seat_code, price_cents FROM seats
  WHERE event_id = :event AND seat_code = ANY(ARRAY['S' || :seat::text]) ORDER BY seat_code;
SELECT user_id, status, total_price_cents, confirmed_at, cancelled_at FROM bookings
  WHERE event_id = :event AND booking_group_id = md5(:hid::text)::uuid;
SELECT b.seat_code, s.seat_type, b.price_cents FROM booking_seats b
  JOIN seats s ON s.event_id = b.event_id AND s.seat_code = b.seat_code
  WHERE b.event_id = :event AND b.booking_group_id = md5(:hid::text)::uuid ORDER BY s.position;
COMMIT;
\endif
