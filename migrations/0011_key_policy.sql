-- Caller policy of API keys (issue 23): the sales channels a key is in (a presale partner
-- holds seats allocated to its channel) and whether its holds skip admission from a waiting
-- room (a box office, a partner's own queue). Admin keys are stored with skips_admission true.

ALTER TABLE api_keys ADD COLUMN channels TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE api_keys ADD COLUMN skips_admission BOOLEAN NOT NULL DEFAULT false;

-- Existing admin keys skip admission, as every admin does.
UPDATE api_keys SET skips_admission = true WHERE role = 'admin';

ALTER TABLE api_keys ADD CONSTRAINT api_keys_channels_count
    CHECK (cardinality(channels) <= 20);
-- Each code is 1-64 of A-Z a-z 0-9 . _ - (none NULL); codes hold no comma, so the joined list
-- is checked in one pattern.
ALTER TABLE api_keys ADD CONSTRAINT api_keys_channels_valid
    CHECK (array_position(channels, NULL) IS NULL
           AND (cardinality(channels) = 0
                OR array_to_string(channels, ',') ~ '^[A-Za-z0-9._-]{1,64}(,[A-Za-z0-9._-]{1,64})*$'));
