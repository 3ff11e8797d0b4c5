-- Platform: shared SQL helpers and the schema version for /readyz.
-- Runs as tenantflow_owner. The application role (tenantflow_app) gets only
-- what it needs; every tenant table below is RLS-forced on
-- platform.current_tenant(), which reads the transaction-local app.tenant_id.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

GRANT USAGE ON SCHEMA platform TO tenantflow_app;

-- The tenant of the current transaction, or NULL when none is set (RLS then
-- shows nothing). set_config(..., true) makes the setting vanish at commit.
CREATE FUNCTION platform.current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

-- Time-ordered UUID (version 7): B-tree inserts stay local.
CREATE FUNCTION platform.uuid7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE
AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) PLACING
           substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
           FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;

-- Highest applied migration; the application role cannot read the table.
CREATE FUNCTION platform.schema_version() RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(max(version), 0) FROM platform.migrations $$;

REVOKE ALL ON FUNCTION platform.schema_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION platform.schema_version() TO tenantflow_app;
GRANT EXECUTE ON FUNCTION platform.current_tenant(), platform.uuid7() TO tenantflow_app;

-- Timestamps in responses: RFC 3339, UTC, with "Z".
CREATE FUNCTION platform.rfc3339(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;
GRANT EXECUTE ON FUNCTION platform.rfc3339(timestamptz) TO tenantflow_app;
