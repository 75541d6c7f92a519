-- A booking's webhook messages continue the trace of the request that made the booking (issue
-- 25: one trace from the confirm to the webhook it caused). The confirm and cancel transactions
-- write the request's W3C `traceparent` beside their history rows (only while traces are
-- exported; NULL otherwise), the history flush carries it to the messages it queues, and each
-- delivery attempt's span is a child of it. Holds' messages come from the Redis stream and
-- carry none (a hold's script records no trace context).

ALTER TABLE seat_changes ADD COLUMN traceparent TEXT;
ALTER TABLE webhook_messages ADD COLUMN traceparent TEXT;
