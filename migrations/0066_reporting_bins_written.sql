-- Report facts: the duration bins are written by add_fact instead of being
-- generated columns.
--
-- Measured: PostgreSQL plans a stored generated column's expression again for
-- every INSERT statement it starts (the plan of the inlined dur_bin() is not
-- cached with the statement), which cost about 45 us of the 100 us of every
-- fact written, i.e. of every item created or transitioned. Computed in
-- add_fact's INSERT, the expression is planned once per connection.

ALTER TABLE reporting.facts ALTER COLUMN stay_bin DROP EXPRESSION,
                            ALTER COLUMN lead_bin DROP EXPRESSION;

CREATE OR REPLACE FUNCTION reporting.add_fact(f reporting.facts) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE wm timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(reporting.lock_key(f.workflow_key));
    SELECT watermark INTO wm FROM reporting.watermarks
     WHERE tenant_id = f.tenant_id AND workflow_key = f.workflow_key;
    INSERT INTO reporting.facts (tenant_id, workflow_key, item_id, at, from_state, to_state,
        to_terminal, entered_at, due_at, created_at, stay_bin, lead_bin)
    VALUES (f.tenant_id, f.workflow_key, f.item_id, f.at, f.from_state, f.to_state,
        f.to_terminal, f.entered_at, f.due_at, f.created_at,
        reporting.dur_bin(date_part('epoch', f.at - f.entered_at)),
        CASE WHEN f.to_terminal THEN reporting.dur_bin(date_part('epoch', f.at - f.created_at)) END);
    IF wm IS NULL THEN
        INSERT INTO reporting.watermarks VALUES (f.tenant_id, f.workflow_key,
            date_trunc('hour', now(), 'UTC')) ON CONFLICT DO NOTHING;
        SELECT watermark INTO wm FROM reporting.watermarks
         WHERE tenant_id = f.tenant_id AND workflow_key = f.workflow_key;
    END IF;
    IF f.at < wm THEN
        PERFORM reporting.add_to_rollup(f);
        PERFORM reporting.add_to_hist(f);
    END IF;
END $$;

-- New partitions are plain copies; rows moved out of the default partition
-- keep their bins.
CREATE OR REPLACE FUNCTION reporting.ensure_partition(t timestamptz) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo timestamptz := date_trunc('month', t, 'UTC');
    hi timestamptz := (date_trunc('month', t AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'facts_' || to_char(t AT TIME ZONE 'UTC', 'YYYYMM');
    cols text := 'tenant_id, workflow_key, item_id, at, from_state, to_state, to_terminal,'
                 ' entered_at, due_at, created_at, stay_bin, lead_bin';
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('reporting:partitions', 0));
    IF to_regclass('reporting.' || name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE reporting.%I (LIKE reporting.facts INCLUDING DEFAULTS)', name);
    EXECUTE format('ALTER TABLE reporting.%I ENABLE ROW LEVEL SECURITY', name);
    EXECUTE format('ALTER TABLE reporting.%I FORCE ROW LEVEL SECURITY', name);
    EXECUTE format('CREATE POLICY tenant_isolation ON reporting.%I USING (tenant_id = '
                   'platform.current_tenant()) WITH CHECK (tenant_id = platform.current_tenant())', name);
    EXECUTE format('CREATE POLICY definer_all ON reporting.%I TO tenantflow_owner USING (true) WITH CHECK (true)', name);
    EXECUTE format('WITH m AS (DELETE FROM reporting.facts_default WHERE at >= %L AND at < %L RETURNING *)'
                   ' INSERT INTO reporting.%I (%s) SELECT %s FROM m', lo, hi, name, cols, cols);
    EXECUTE format('ALTER TABLE reporting.facts ATTACH PARTITION reporting.%I FOR VALUES FROM (%L) TO (%L)',
                   name, lo, hi);
    RETURN true;
END $$;
