-- Idempotency-Key store (src/platform/idem.c): the stored outcome of a keyed
-- POST/PUT/PATCH, written in the same transaction as the request's effect.
--
-- Tenant principals' keys live in idem.keys, scoped by tenant and principal,
-- RLS-forced on platform.current_tenant() like every tenant table. Platform
-- operators act outside any tenant, so their keys live in idem.operator_keys,
-- visible only to a transaction bound to no tenant (tenant transactions can
-- never read or write them) and scoped by the operator principal in the key.
-- The application role may insert, read and update (to fill in the outcome of
-- its own claim); only the purge function, owned by tenantflow_owner, deletes.
CREATE SCHEMA idem;
GRANT USAGE ON SCHEMA idem TO tenantflow_app;

CREATE TABLE idem.keys (
    tenant_id    uuid NOT NULL,
    principal    text NOT NULL,               -- "user:<id>", "api_key:<id>"
    key          text NOT NULL CHECK (key ~ '^[!-~]{1,255}$'),
    fingerprint  bytea NOT NULL CHECK (length(fingerprint) = 32), -- BLAKE2b(method, path, body)
    status       smallint CHECK (status BETWEEN 200 AND 599),      -- NULL only while claimed
    content_type text,
    headers      jsonb NOT NULL DEFAULT '{}', -- {"Location": ..., "ETag": ...}
    body         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, principal, key)
);
CREATE INDEX keys_created ON idem.keys (created_at);

CREATE TABLE idem.operator_keys (
    principal    text NOT NULL CHECK (principal LIKE 'operator:%'),
    key          text NOT NULL CHECK (key ~ '^[!-~]{1,255}$'),
    fingerprint  bytea NOT NULL CHECK (length(fingerprint) = 32),
    status       smallint CHECK (status BETWEEN 200 AND 599),
    content_type text,
    headers      jsonb NOT NULL DEFAULT '{}',
    body         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
CREATE INDEX operator_keys_created ON idem.operator_keys (created_at);

ALTER TABLE idem.keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idem.keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idem.keys
    USING (tenant_id = platform.current_tenant())
    WITH CHECK (tenant_id = platform.current_tenant());

ALTER TABLE idem.operator_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idem.operator_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON idem.operator_keys
    USING (platform.current_tenant() IS NULL)
    WITH CHECK (platform.current_tenant() IS NULL);

-- The purge function runs as the owner; FORCE applies RLS to it too, so it
-- gets read and delete policies of its own. The application role never has them.
CREATE POLICY definer_read ON idem.keys FOR SELECT TO tenantflow_owner USING (true);
CREATE POLICY definer_purge ON idem.keys FOR DELETE TO tenantflow_owner USING (true);
CREATE POLICY definer_read ON idem.operator_keys FOR SELECT TO tenantflow_owner USING (true);
CREATE POLICY definer_purge ON idem.operator_keys FOR DELETE TO tenantflow_owner USING (true);

GRANT SELECT, INSERT, UPDATE ON idem.keys, idem.operator_keys TO tenantflow_app;

-- Deletes records older than p_retention_s seconds, at most p_batch from each
-- table per call (short transactions; the job calls again while it deletes a
-- full batch). Returns how many rows went.
CREATE FUNCTION idem.purge(p_retention_s integer, p_batch integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    m bigint;
BEGIN
    IF p_retention_s < 86400 THEN
        RAISE EXCEPTION 'idempotency keys are kept at least 24 hours';
    END IF;
    DELETE FROM idem.keys k WHERE (k.tenant_id, k.principal, k.key) IN (
        SELECT o.tenant_id, o.principal, o.key FROM idem.keys o
        WHERE o.created_at < now() - make_interval(secs => p_retention_s)
        LIMIT p_batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM idem.operator_keys k WHERE (k.principal, k.key) IN (
        SELECT o.principal, o.key FROM idem.operator_keys o
        WHERE o.created_at < now() - make_interval(secs => p_retention_s)
        LIMIT p_batch);
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END
$$;
REVOKE ALL ON FUNCTION idem.purge(integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION idem.purge(integer, integer) TO tenantflow_app;
