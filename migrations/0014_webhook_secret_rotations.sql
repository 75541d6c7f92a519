-- Every secret a rotation retired keeps signing for its own 24 h (issue 22: "for 24 h after a
-- rotation, messages carry both signatures"). With one `previous_secret`, a second rotation
-- within the day dropped the first secret before its 24 h were up, and a receiver still on it
-- refused every message. `retired` holds the retired secrets still signing, newest first, each
-- with the end of its overlap: [{"secret": "whsec_...", "until": "<timestamptz>"}, ...] (at most
-- the 4 latest; see store/postgres/webhooks.rs). `previous_secret` and `previous_until` are
-- still written (the latest retired secret) for instances of the version before, during a
-- rolling upgrade; this version reads `retired` only.

ALTER TABLE webhook_endpoints ADD COLUMN retired JSONB NOT NULL DEFAULT '[]';
UPDATE webhook_endpoints
   SET retired = jsonb_build_array(jsonb_build_object('secret', previous_secret,
                                                      'until', previous_until))
 WHERE previous_secret IS NOT NULL AND previous_until > now();
