-- A webhook subscription can now be changed (PATCH /v1/webhooks/{id}), so it
-- carries a version like every other changeable resource: its ETag, checked
-- against If-Match. A 410 that disables it is a change too.
ALTER TABLE events.webhooks ADD COLUMN version integer NOT NULL DEFAULT 1;
