-- Tenancy: tenants and platform operators.
CREATE SCHEMA tenancy;
GRANT USAGE ON SCHEMA tenancy TO tenantflow_app;

CREATE TABLE tenancy.tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    version     integer NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenancy.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenancy.tenants FORCE ROW LEVEL SECURITY;
-- A tenant row is its own tenant's data: visible only inside that tenant.
CREATE POLICY tenant_isolation ON tenancy.tenants
    USING (id = platform.current_tenant()) WITH CHECK (id = platform.current_tenant());
-- The owner role runs the SECURITY DEFINER functions below; FORCE applies RLS
-- to it too, so it gets its own read policy. The application role never has it.
CREATE POLICY definer_read ON tenancy.tenants FOR SELECT TO tenantflow_owner USING (true);
GRANT SELECT, INSERT, UPDATE ON tenancy.tenants TO tenantflow_app;

-- Operators live outside every tenant; the application role cannot read them.
CREATE TABLE tenancy.operators (
    id          uuid PRIMARY KEY DEFAULT platform.uuid7(),
    name        text NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE tenancy.operators ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenancy.operators FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_only ON tenancy.operators TO tenantflow_owner USING (true) WITH CHECK (true);

-- Narrow cross-tenant reads, each SECURITY DEFINER with a fixed search_path.
CREATE FUNCTION tenancy.operator_by_token(p_hash bytea)
RETURNS TABLE (id uuid, name text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT o.id, o.name FROM tenancy.operators o WHERE o.token_hash = p_hash $$;

CREATE FUNCTION tenancy.tenant_by_slug(p_slug text)
RETURNS TABLE (id uuid, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT t.id, t.status FROM tenancy.tenants t WHERE t.slug = p_slug $$;

-- Operator listing, keyset-paged by id.
CREATE FUNCTION tenancy.list_tenants(p_after uuid, p_limit integer)
RETURNS SETOF tenancy.tenants
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM tenancy.tenants t
  WHERE p_after IS NULL OR t.id > p_after
  ORDER BY t.id LIMIT least(greatest(p_limit, 1), 201)
$$;

-- Whether a slug is taken, so creation can answer 409 instead of failing on
-- a unique violation it cannot see through RLS.
CREATE FUNCTION tenancy.slug_taken(p_slug text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM tenancy.tenants t WHERE t.slug = p_slug) $$;

REVOKE ALL ON FUNCTION tenancy.operator_by_token(bytea), tenancy.tenant_by_slug(text),
    tenancy.list_tenants(uuid, integer), tenancy.slug_taken(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenancy.operator_by_token(bytea), tenancy.tenant_by_slug(text),
    tenancy.list_tenants(uuid, integer), tenancy.slug_taken(text) TO tenantflow_app;
