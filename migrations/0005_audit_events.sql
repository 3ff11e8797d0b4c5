-- Audit records and the event outbox: written in the same transaction as the
-- change they describe. The application role may only insert and read.
CREATE SCHEMA audit;
GRANT USAGE ON SCHEMA audit TO tenantflow_app;

CREATE TABLE audit.records (
    tenant_id     uuid NOT NULL,
    id            uuid NOT NULL DEFAULT platform.uuid7(),
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    actor_type    text NOT NULL,
    actor_id      text,
    action        text NOT NULL,
    resource_type text NOT NULL,
    resource_id   text NOT NULL,
    request_id    text,
    client_ip     text,
    changes       jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX records_time ON audit.records (tenant_id, occurred_at, id);

CREATE SCHEMA events;
GRANT USAGE ON SCHEMA events TO tenantflow_app;

CREATE TABLE events.outbox (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL DEFAULT platform.uuid7(),
    type        text NOT NULL,
    subject_id  text,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_type  text NOT NULL,
    actor_id    text,
    data        jsonb NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit.records', 'events.outbox'] LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (tenant_id = '
                       'platform.current_tenant()) WITH CHECK (tenant_id = platform.current_tenant())', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT ON audit.records, events.outbox TO tenantflow_app;
