-- Postgres-only REFERENCE, workload (b): hot-seat storm. Every transaction asks for the same two
-- seats (S1, S2) of a small event; all but one per TTL are refused, each after waiting its turn
-- for the seat row locks (that queue is the cost a Redis front avoids).
-- Same shape as ref_hold_random.sql. Variables: event, ttl (seconds).
\set hid random(1, 9223372036854775806)
BEGIN;
SELECT seat_code FROM seats
  WHERE event_id = :event AND seat_code = ANY(ARRAY['S1', 'S2'])
  ORDER BY seat_code FOR UPDATE;
INSERT INTO bench_ref_holds AS h (event_id, seat_code, hold_group_id, user_id, expires_at)
  SELECT :event, c, md5(:hid::text)::uuid, 'storm', now() + make_interval(secs => :ttl)
  FROM unnest(ARRAY['S1', 'S2']) AS c
  WHERE NOT EXISTS (SELECT 1 FROM bench_ref_holds x WHERE x.event_id = :event
                      AND x.seat_code = ANY(ARRAY['S1', 'S2']) AND x.expires_at > now())
    AND NOT EXISTS (SELECT 1 FROM booking_seats b WHERE b.event_id = :event
                      AND b.seat_code = ANY(ARRAY['S1', 'S2']) AND b.active)
  ON CONFLICT (event_id, seat_code) DO UPDATE
    SET hold_group_id = EXCLUDED.hold_group_id, user_id = EXCLUDED.user_id,
        expires_at = EXCLUDED.expires_at;
COMMIT;
