-- Access: users, roles, role assignments and API keys, all tenant data.
CREATE SCHEMA access;
GRANT USAGE ON SCHEMA access TO tenantflow_app;

-- The form of an email used for uniqueness and login: trimmed, NFC, lower case.
CREATE FUNCTION access.email_key(p_email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT lower(normalize(btrim(p_email), NFC)) $$;

CREATE TABLE access.users (
    tenant_id     uuid NOT NULL,
    id            uuid NOT NULL DEFAULT platform.uuid7(),
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash text NOT NULL,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    version       integer NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX users_email_key ON access.users (tenant_id, access.email_key(email));

CREATE TABLE access.roles (
    tenant_id    uuid NOT NULL,
    id           uuid NOT NULL DEFAULT platform.uuid7(),
    name         text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'),
    permissions  text[] NOT NULL DEFAULT '{}',
    builtin      boolean NOT NULL DEFAULT false,
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX roles_name_key ON access.roles (tenant_id, lower(name));

CREATE TABLE access.user_roles (
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    role_id   uuid NOT NULL,
    PRIMARY KEY (tenant_id, user_id, role_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES access.users ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, role_id) REFERENCES access.roles ON DELETE CASCADE
);

CREATE TABLE access.api_keys (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL DEFAULT platform.uuid7(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    secret_hash bytea NOT NULL UNIQUE,
    roles       text[] NOT NULL DEFAULT '{}',
    expires_at  timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'roles', 'user_roles', 'api_keys'] LOOP
        EXECUTE format('ALTER TABLE access.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE access.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON access.%I USING (tenant_id = '
                       'platform.current_tenant()) WITH CHECK (tenant_id = platform.current_tenant())', t);
    END LOOP;
END $$;

GRANT SELECT, INSERT, UPDATE ON access.users, access.roles, access.api_keys TO tenantflow_app;
GRANT DELETE ON access.roles TO tenantflow_app;
GRANT SELECT, INSERT, DELETE ON access.user_roles TO tenantflow_app;

-- An API key names its tenant: the one cross-tenant read of this schema, run
-- by the owner role through the definer function below.
CREATE POLICY definer_read ON access.api_keys FOR SELECT TO tenantflow_owner USING (true);
CREATE FUNCTION access.api_key_by_secret(p_hash bytea)
RETURNS TABLE (tenant_id uuid, id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT k.tenant_id, k.id FROM access.api_keys k WHERE k.secret_hash = p_hash $$;
REVOKE ALL ON FUNCTION access.api_key_by_secret(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access.api_key_by_secret(bytea) TO tenantflow_app;
GRANT EXECUTE ON FUNCTION access.email_key(text) TO tenantflow_app;
