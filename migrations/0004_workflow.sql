-- Workflows: versioned definitions, items and their transition history.
CREATE SCHEMA workflow;
GRANT USAGE ON SCHEMA workflow TO tenantflow_app;

CREATE TABLE workflow.definitions (
    tenant_id   uuid NOT NULL,
    key         text NOT NULL CHECK (key ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    version     integer NOT NULL CHECK (version >= 1),
    name        text NOT NULL,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key, version)
);

CREATE TABLE workflow.items (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL DEFAULT platform.uuid7(),
    workflow_key     text NOT NULL,
    workflow_version integer NOT NULL,
    state            text NOT NULL,
    title            text NOT NULL,
    attributes       jsonb NOT NULL DEFAULT '{}',
    external_ref     text,
    version          integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    state_entered_at timestamptz NOT NULL DEFAULT now(),
    due_at           timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, workflow_key, workflow_version) REFERENCES workflow.definitions
);
CREATE UNIQUE INDEX items_external_ref ON workflow.items (tenant_id, workflow_key, external_ref)
    WHERE external_ref IS NOT NULL;
CREATE INDEX items_list ON workflow.items (tenant_id, workflow_key, state, created_at, id);
CREATE INDEX items_created ON workflow.items (tenant_id, created_at, id);

CREATE TABLE workflow.history (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL DEFAULT platform.uuid7(),
    item_id     uuid NOT NULL,
    transition  text,
    from_state  text,
    to_state    text NOT NULL,
    actor_type  text NOT NULL,
    actor_id    text,
    at          timestamptz NOT NULL DEFAULT now(),
    comment     text,
    request_id  text,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, item_id) REFERENCES workflow.items
);
CREATE INDEX history_item ON workflow.history (tenant_id, item_id, at, id);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['definitions', 'items', 'history'] LOOP
        EXECUTE format('ALTER TABLE workflow.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE workflow.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON workflow.%I USING (tenant_id = '
                       'platform.current_tenant()) WITH CHECK (tenant_id = platform.current_tenant())', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT ON workflow.definitions, workflow.history TO tenantflow_app;
GRANT SELECT, INSERT, UPDATE ON workflow.items TO tenantflow_app;
