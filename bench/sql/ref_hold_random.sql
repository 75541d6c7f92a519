-- Postgres-only REFERENCE, workload (a): hold 1 random seat of a big event for a random user.
-- hold = BEGIN; lock the seat rows (SELECT ... FOR UPDATE, code order); insert/refresh the hold
-- rows only if none of the seats is held (unexpired) or booked; COMMIT. A refusal commits
-- having written nothing (like a 409: no error, the caller is told the seat is taken).
-- Variables: event, nseats, ttl (seconds).
\set seat random(1, :nseats)
\set hid random(1, 9223372036854775806)
\set user random(1, 1000000)
BEGIN;
SELECT seat_code FROM seats
  WHERE event_id = :event AND seat_code = ANY(ARRAY['S' || :seat::text])
  ORDER BY seat_code FOR UPDATE;
INSERT INTO bench_ref_holds AS h (event_id, seat_code, hold_group_id, user_id, expires_at)
  SELECT :event, c, md5(:hid::text)::uuid, 'u' || :user::text, now() + make_interval(secs => :ttl)
  FROM unnest(ARRAY['S' || :seat::text]) AS c
  WHERE NOT EXISTS (SELECT 1 FROM bench_ref_holds x WHERE x.event_id = :event
                      AND x.seat_code = ANY(ARRAY['S' || :seat::text]) AND x.expires_at > now())
    AND NOT EXISTS (SELECT 1 FROM booking_seats b WHERE b.event_id = :event
                      AND b.seat_code = ANY(ARRAY['S' || :seat::text]) AND b.active)
  ON CONFLICT (event_id, seat_code) DO UPDATE
    SET hold_group_id = EXCLUDED.hold_group_id, user_id = EXCLUDED.user_id,
        expires_at = EXCLUDED.expires_at;
COMMIT;
