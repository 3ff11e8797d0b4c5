-- Audit trail: append-only enforcement and the per-tenant hash chain.
--
-- Records are never updated. The chain lives beside them in audit.seals (one
-- row per sealed record: its position in the tenant's chain and its hash),
-- written by the background sealer after the record's transaction committed
-- (see src/modules/audit/sealer.c for the design). Writers only INSERT a
-- record, so unrelated writes of one tenant never wait on each other.
--
-- Every record remembers the top-level transaction that inserted it (xid).
-- The sealer only takes records whose xid is below the oldest transaction
-- still running (pg_snapshot_xmin), so a transaction that began earlier and
-- commits later can never have its record slip in before an already sealed one.

ALTER TABLE audit.records ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX records_seal_order ON audit.records (xid, id);
CREATE INDEX records_by_id ON audit.records (tenant_id, id DESC);
CREATE INDEX records_by_actor ON audit.records (tenant_id, actor_id, id DESC);
CREATE INDEX records_by_action ON audit.records (tenant_id, action, id DESC);
CREATE INDEX records_by_resource ON audit.records (tenant_id, resource_type, resource_id, id DESC);

CREATE TABLE audit.seals (
    tenant_id  uuid NOT NULL,
    seq        bigint NOT NULL CHECK (seq > 0),
    record_id  uuid NOT NULL,
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    sealed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, seq),
    UNIQUE (tenant_id, record_id)
);

-- The last link of each tenant's chain, so a truncated tail is detected.
CREATE TABLE audit.chain_heads (
    tenant_id uuid PRIMARY KEY,
    seq       bigint NOT NULL,
    hash      bytea NOT NULL
);

-- Where the sealer stopped: every record with (xid, id) <= (last_xid, last_id)
-- is sealed. One row; no tenant data, readable by the owner only.
CREATE TABLE audit.sealer_state (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_xid xid8 NOT NULL DEFAULT '0',
    last_id  uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000'
);
INSERT INTO audit.sealer_state DEFAULT VALUES;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['audit.seals', 'audit.chain_heads'] LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (tenant_id = '
                       'platform.current_tenant()) WITH CHECK (tenant_id = platform.current_tenant())', t);
        EXECUTE format('CREATE POLICY sealer ON %s TO tenantflow_owner USING (true) WITH CHECK (true)', t);
    END LOOP;
END $$;
ALTER TABLE audit.sealer_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit.sealer_state FORCE ROW LEVEL SECURITY;
CREATE POLICY sealer ON audit.sealer_state TO tenantflow_owner USING (true) WITH CHECK (true);
CREATE POLICY sealer_read ON audit.records FOR SELECT TO tenantflow_owner USING (true);

-- The application role reads the chain (verify) and may only insert records.
REVOKE UPDATE, DELETE, TRUNCATE ON audit.records FROM tenantflow_app;
GRANT SELECT ON audit.seals, audit.chain_heads TO tenantflow_app;

-- Append-only, for every role: UPDATE, DELETE and TRUNCATE of records and seals
-- are refused. The single exception is a superuser who states the intent in
-- the session (SET tenantflow.audit_tamper = 'on'): that is how the tests
-- play an attacker with full database access, which the chain must expose.
CREATE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('tenantflow.audit_tamper', true) = 'on'
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RAISE EXCEPTION 'audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON audit.records
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON audit.records
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON audit.seals
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON audit.seals
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- The next records to seal, across tenants, in seal order, each with its
-- tenant's chain head as of now. One SQL statement, so the horizon and the
-- rows come from the same snapshot: every xid below the horizon has ended,
-- and those that committed are visible here.
CREATE FUNCTION audit.pending(p_limit integer)
RETURNS TABLE (tenant_id uuid, id uuid, xid xid8, occurred_at text, actor_type text,
               actor_id text, action text, resource_type text, resource_id text,
               request_id text, client_ip text, changes text, head_seq bigint, head_hash bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.tenant_id, r.id, r.xid, platform.rfc3339(r.occurred_at), r.actor_type, r.actor_id,
           r.action, r.resource_type, r.resource_id, r.request_id, r.client_ip, r.changes::text,
           h.seq, h.hash
      FROM audit.sealer_state s
      JOIN audit.records r ON (r.xid, r.id) > (s.last_xid, s.last_id)
       AND r.xid < pg_snapshot_xmin(pg_current_snapshot())
      LEFT JOIN audit.chain_heads h ON h.tenant_id = r.tenant_id
     ORDER BY r.xid, r.id
     LIMIT p_limit
$$;

-- Stores one batch of seals (computed by the sealer in C with libsodium),
-- moves the heads and the watermark.
CREATE FUNCTION audit.seal(p_tenants uuid[], p_ids uuid[], p_seqs bigint[], p_hashes text[],
                           p_last_xid xid8, p_last_id uuid)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n integer;
BEGIN
    INSERT INTO audit.seals (tenant_id, seq, record_id, hash)
    SELECT t, s, i, decode(x, 'hex') FROM unnest(p_tenants, p_seqs, p_ids, p_hashes) AS u(t, s, i, x);
    GET DIAGNOSTICS n = ROW_COUNT;
    INSERT INTO audit.chain_heads AS h (tenant_id, seq, hash)
    SELECT DISTINCT ON (t) t, s, decode(x, 'hex') FROM unnest(p_tenants, p_seqs, p_hashes) AS u(t, s, x)
     ORDER BY t, s DESC
    ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
     WHERE h.seq < excluded.seq;
    UPDATE audit.sealer_state SET last_xid = p_last_xid, last_id = p_last_id;
    RETURN n;
END $$;

REVOKE ALL ON FUNCTION audit.pending(integer), audit.seal(uuid[], uuid[], bigint[], text[], xid8, uuid)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.pending(integer),
    audit.seal(uuid[], uuid[], bigint[], text[], xid8, uuid) TO tenantflow_app;
