-- Event feed positions and webhooks.
--
-- An event gets its feed position only after its transaction committed: the
-- sequencer (src/modules/events/sequencer.c) numbers committed, unnumbered
-- events, one batch at a time under an advisory lock, so positions become
-- visible in increasing order and a consumer paging by position never misses
-- an event whose transaction began earlier and committed later.

ALTER TABLE events.outbox ADD COLUMN position bigint;
CREATE UNIQUE INDEX outbox_feed ON events.outbox (tenant_id, position) WHERE position IS NOT NULL;
CREATE INDEX outbox_feed_type ON events.outbox (tenant_id, type, position) WHERE position IS NOT NULL;
CREATE INDEX outbox_unnumbered ON events.outbox (id) WHERE position IS NULL;
CREATE UNIQUE INDEX outbox_position ON events.outbox (position) WHERE position IS NOT NULL;

-- The representation of an event, for the feed and webhook bodies alike.
CREATE FUNCTION events.render(o events.outbox) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT jsonb_build_object('id', o.id, 'type', o.type,
             'occurred_at', platform.rfc3339(o.occurred_at),
             'actor', jsonb_build_object('type', o.actor_type, 'id', o.actor_id),
             'data', o.data)::text
$$;
GRANT EXECUTE ON FUNCTION events.render(events.outbox) TO tenantflow_app;

CREATE TABLE events.sequencer_state (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_position bigint NOT NULL DEFAULT 0
);
INSERT INTO events.sequencer_state DEFAULT VALUES;

CREATE TABLE events.dispatch_state (
    one           boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_position bigint NOT NULL DEFAULT 0
);
INSERT INTO events.dispatch_state DEFAULT VALUES;

CREATE TABLE events.webhooks (
    tenant_id       uuid NOT NULL,
    id              uuid NOT NULL DEFAULT platform.uuid7(),
    url             text NOT NULL,
    event_types     text[] NOT NULL,
    secret_box      bytea NOT NULL,  -- nonce || XChaCha20-Poly1305(secret), AD = id
    secret_key_id   bytea NOT NULL,  -- fingerprint of the key that sealed it
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'deleted')),
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- One message per (webhook, event): its id is the webhook-id header, the same
-- on every attempt, so a receiver can drop duplicates.
CREATE TABLE events.messages (
    tenant_id       uuid NOT NULL,
    id              uuid NOT NULL DEFAULT platform.uuid7(),
    webhook_id      uuid NOT NULL,
    event_id        uuid NOT NULL,
    position        bigint NOT NULL,
    subject_id      text,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX messages_due ON events.messages (next_attempt_at, position) WHERE status = 'pending';
CREATE INDEX messages_subject ON events.messages (webhook_id, subject_id, position)
    WHERE status = 'pending';

CREATE TABLE events.attempts (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL DEFAULT platform.uuid7(),
    webhook_id  uuid NOT NULL,
    message_id  uuid NOT NULL,
    event_id    uuid NOT NULL,
    attempt     integer NOT NULL,
    status_code integer,
    error       text,
    duration_ms integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX attempts_by_webhook ON events.attempts (tenant_id, webhook_id, id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['events.webhooks', 'events.messages', 'events.attempts'] LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (tenant_id = '
                       'platform.current_tenant()) WITH CHECK (tenant_id = platform.current_tenant())', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['events.sequencer_state', 'events.dispatch_state'] LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['events.outbox', 'events.sequencer_state', 'events.dispatch_state',
                             'events.webhooks', 'events.messages'] LOOP
        EXECUTE format('CREATE POLICY background ON %s TO tenantflow_owner USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT, UPDATE ON events.webhooks, events.messages TO tenantflow_app;
GRANT SELECT, INSERT ON events.attempts TO tenantflow_app;

-- Numbers the committed events nobody numbered yet (up to p_limit), in the
-- order of their ids, after every position handed out before. Only one
-- sequencer runs at a time (the caller holds an advisory lock); the batch
-- commits atomically, so readers see positions appear in increasing order.
CREATE FUNCTION events.assign_positions(p_limit integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE base bigint; n integer;
BEGIN
    SELECT last_position INTO base FROM events.sequencer_state FOR UPDATE;
    WITH pick AS (
        SELECT o.tenant_id, o.id, row_number() OVER (ORDER BY o.id) AS rn
          FROM events.outbox o WHERE o.position IS NULL ORDER BY o.id LIMIT p_limit)
    UPDATE events.outbox o SET position = base + pick.rn
      FROM pick WHERE o.tenant_id = pick.tenant_id AND o.id = pick.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        UPDATE events.sequencer_state SET last_position = base + n;
        PERFORM pg_notify('tenantflow_events', 'sequenced');
    END IF;
    RETURN n;
END $$;

-- Turns numbered events into webhook messages for every active subscription
-- of the event's tenant whose filter matches, then moves the watermark. Run by
-- the one active dispatcher; a crash before commit simply repeats it.
CREATE FUNCTION events.fan_out(p_limit integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE last bigint; upto bigint; n integer;
BEGIN
    SELECT last_position INTO last FROM events.dispatch_state FOR UPDATE;
    SELECT max(position) INTO upto FROM (
        SELECT position FROM events.outbox WHERE position > last ORDER BY position LIMIT p_limit) x;
    IF upto IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO events.messages (tenant_id, webhook_id, event_id, position, subject_id)
    SELECT o.tenant_id, w.id, o.id, o.position, o.subject_id
      FROM events.outbox o
      JOIN events.webhooks w ON w.tenant_id = o.tenant_id AND w.status = 'active'
       AND (o.type = ANY (w.event_types) OR '*' = ANY (w.event_types))
       AND o.occurred_at >= w.created_at
     WHERE o.position > last AND o.position <= upto
    ON CONFLICT (webhook_id, event_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE events.dispatch_state SET last_position = upto;
    RETURN n;
END $$;

-- Messages due now, oldest position first, at most one per (webhook, subject):
-- a later event of an item waits until the earlier one is delivered or failed.
CREATE FUNCTION events.due_messages(p_limit integer)
RETURNS TABLE (tenant_id uuid, id uuid, webhook_id uuid, event_id uuid, attempts integer,
               url text, secret_box bytea, secret_key_id bytea, body text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.tenant_id, m.id, m.webhook_id, m.event_id, m.attempts, w.url, w.secret_box,
           w.secret_key_id, events.render(o)
      FROM events.messages m
      JOIN events.webhooks w ON w.tenant_id = m.tenant_id AND w.id = m.webhook_id
       AND w.status = 'active'
      JOIN events.outbox o ON o.tenant_id = m.tenant_id AND o.id = m.event_id
     WHERE m.status = 'pending' AND m.next_attempt_at <= now()
       AND NOT EXISTS (SELECT 1 FROM events.messages e
                        WHERE e.webhook_id = m.webhook_id AND e.status = 'pending'
                          AND e.subject_id = m.subject_id AND e.position < m.position)
     ORDER BY m.position
     LIMIT p_limit
$$;

REVOKE ALL ON FUNCTION events.assign_positions(integer), events.fan_out(integer),
    events.due_messages(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION events.assign_positions(integer), events.fan_out(integer),
    events.due_messages(integer) TO tenantflow_app;
