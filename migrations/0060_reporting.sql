-- Reporting: KPI facts learned from domain events, kept in the reporting
-- schema only (the module never reads workflow tables).
--
--   states      a copy of each published workflow version's states (terminal, sla)
--   items       each item's current stay (for WIP and open SLA breaches)
--   facts       one row per creation or transition, partitioned by month on `at`
--   rollup_hour per tenant, workflow, UTC hour and state: counts and sums of the
--               facts of that hour, for hours below the workflow's watermark
--   watermarks  per tenant and workflow: every fact with at < watermark is in
--               rollup_hour; facts at or after it are read raw
--
-- Exactness at any moment: a fact writer holds a shared advisory lock on its
-- (tenant, workflow) while it reads the watermark; the roll-up job holds the
-- exclusive one while it folds hours and moves the watermark. A fact that
-- arrives for an hour already folded (a transaction that began in that hour
-- and committed late, or a test fact with a chosen time) adds itself to its
-- rollup row in the same transaction. So rollup(< watermark) + raw(>= watermark)
-- always equals a computation over the raw facts.
--
-- Percentiles cannot be summed, so p50/p90 are always read from raw facts
-- (through a covering index); counts, sums, SLA tallies come from rollups.
CREATE SCHEMA reporting;
GRANT USAGE ON SCHEMA reporting TO tenantflow_app;

CREATE TABLE reporting.states (
    tenant_id    uuid NOT NULL,
    workflow_key text NOT NULL,
    version      integer NOT NULL,
    position     integer NOT NULL,
    state        text NOT NULL,
    terminal     boolean NOT NULL,
    sla          interval,
    PRIMARY KEY (tenant_id, workflow_key, version, state)
);

CREATE TABLE reporting.items (
    tenant_id        uuid NOT NULL,
    id               uuid NOT NULL,
    workflow_key     text NOT NULL,
    workflow_version integer NOT NULL,
    state            text NOT NULL,
    terminal         boolean NOT NULL,
    created_at       timestamptz NOT NULL,
    state_entered_at timestamptz NOT NULL,
    due_at           timestamptz,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX items_open ON reporting.items (tenant_id, workflow_key, state) WHERE NOT terminal;
CREATE INDEX items_open_due ON reporting.items (tenant_id, workflow_key, due_at)
    WHERE NOT terminal AND due_at IS NOT NULL;

-- from_state NULL: the item's creation. entered_at/due_at describe the stay
-- in from_state that this transition ended.
CREATE TABLE reporting.facts (
    tenant_id    uuid NOT NULL,
    workflow_key text NOT NULL,
    item_id      uuid NOT NULL,
    at           timestamptz NOT NULL,
    from_state   text,
    to_state     text NOT NULL,
    to_terminal  boolean NOT NULL,
    entered_at   timestamptz,
    due_at       timestamptz,
    created_at   timestamptz NOT NULL
) PARTITION BY RANGE (at);
-- Serves every report read of the open tail and the percentiles (index-only).
CREATE INDEX facts_time ON reporting.facts (tenant_id, workflow_key, at)
    INCLUDE (from_state, to_terminal, entered_at, due_at, created_at);
CREATE TABLE reporting.facts_default PARTITION OF reporting.facts DEFAULT;

CREATE TABLE reporting.rollup_hour (
    tenant_id    uuid NOT NULL,
    workflow_key text NOT NULL,
    hour         timestamptz NOT NULL,
    state        text NOT NULL,          -- '' for workflow-wide figures
    created      bigint NOT NULL DEFAULT 0,
    transitions  bigint NOT NULL DEFAULT 0,
    completed    bigint NOT NULL DEFAULT 0,
    lead_us      numeric NOT NULL DEFAULT 0,  -- sum of lead times, microseconds
    stays        bigint NOT NULL DEFAULT 0,   -- stays in `state` that ended
    stay_us      numeric NOT NULL DEFAULT 0,
    sla_met      bigint NOT NULL DEFAULT 0,
    sla_breached bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, workflow_key, hour, state)
);

CREATE TABLE reporting.watermarks (
    tenant_id    uuid NOT NULL,
    workflow_key text NOT NULL,
    watermark    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, workflow_key)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['states', 'items', 'facts', 'facts_default', 'rollup_hour',
                             'watermarks'] LOOP
        EXECUTE format('ALTER TABLE reporting.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE reporting.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON reporting.%I USING (tenant_id = '
                       'platform.current_tenant()) WITH CHECK (tenant_id = platform.current_tenant())', t);
    END LOOP;
END $$;
-- The definer functions below (partition upkeep, the roll-up queue) run as
-- the owner, which FORCE subjects to RLS: give it what those need.
CREATE POLICY definer_all ON reporting.facts_default TO tenantflow_owner USING (true) WITH CHECK (true);
CREATE POLICY definer_read ON reporting.watermarks FOR SELECT TO tenantflow_owner USING (true);

-- The application reads and writes through the parents only; it has no
-- privilege on any partition.
GRANT SELECT, INSERT ON reporting.facts, reporting.states TO tenantflow_app;
GRANT SELECT, INSERT, UPDATE ON reporting.items, reporting.rollup_hour, reporting.watermarks
    TO tenantflow_app;

CREATE FUNCTION reporting.lock_key(p_workflow text) RETURNS bigint
LANGUAGE sql STABLE
AS $$ SELECT hashtextextended('reporting:' || platform.current_tenant() || ':' || p_workflow, 0) $$;

-- Adds one fact to its hour's rollup rows (used for late facts and by roll_up).
CREATE FUNCTION reporting.add_to_rollup(f reporting.facts) RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO reporting.rollup_hour AS r (tenant_id, workflow_key, hour, state, created,
        transitions, completed, lead_us)
    VALUES (f.tenant_id, f.workflow_key, date_trunc('hour', f.at, 'UTC'), '',
        (f.from_state IS NULL)::int, (f.from_state IS NOT NULL)::int, f.to_terminal::int,
        CASE WHEN f.to_terminal THEN extract(epoch FROM f.at - f.created_at) * 1000000 ELSE 0 END)
    ON CONFLICT (tenant_id, workflow_key, hour, state) DO UPDATE SET
        created = r.created + excluded.created, transitions = r.transitions + excluded.transitions,
        completed = r.completed + excluded.completed, lead_us = r.lead_us + excluded.lead_us;
    INSERT INTO reporting.rollup_hour AS r (tenant_id, workflow_key, hour, state, stays,
        stay_us, sla_met, sla_breached)
    SELECT f.tenant_id, f.workflow_key, date_trunc('hour', f.at, 'UTC'), f.from_state, 1,
        extract(epoch FROM f.at - f.entered_at) * 1000000,
        (f.due_at IS NOT NULL AND f.at <= f.due_at)::int,
        (f.due_at IS NOT NULL AND f.at > f.due_at)::int
    WHERE f.from_state IS NOT NULL
    ON CONFLICT (tenant_id, workflow_key, hour, state) DO UPDATE SET
        stays = r.stays + 1, stay_us = r.stay_us + excluded.stay_us,
        sla_met = r.sla_met + excluded.sla_met, sla_breached = r.sla_breached + excluded.sla_breached;
$$;

-- Records one fact for the current tenant: rows in facts, the late-fact
-- rollup update when its hour is already folded.
CREATE FUNCTION reporting.add_fact(f reporting.facts) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE wm timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(reporting.lock_key(f.workflow_key));
    SELECT watermark INTO wm FROM reporting.watermarks
     WHERE tenant_id = f.tenant_id AND workflow_key = f.workflow_key;
    INSERT INTO reporting.facts SELECT f.*;
    IF wm IS NULL THEN
        INSERT INTO reporting.watermarks VALUES (f.tenant_id, f.workflow_key,
            date_trunc('hour', now(), 'UTC')) ON CONFLICT DO NOTHING;
        SELECT watermark INTO wm FROM reporting.watermarks
         WHERE tenant_id = f.tenant_id AND workflow_key = f.workflow_key;
    END IF;
    IF f.at < wm THEN
        PERFORM reporting.add_to_rollup(f);
    END IF;
END $$;

-- item.created (also the test-only path: a superuser sets app.tenant_id and
-- calls this with a chosen created_at).
CREATE FUNCTION reporting.item_created(p_id uuid, p_workflow text, p_version integer,
    p_state text, p_created_at timestamptz, p_due_at timestamptz) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    term boolean;
BEGIN
    SELECT coalesce(bool_or(terminal), false) INTO term FROM reporting.states
     WHERE tenant_id = platform.current_tenant() AND workflow_key = p_workflow
       AND version = p_version AND state = p_state;
    INSERT INTO reporting.items VALUES (platform.current_tenant(), p_id, p_workflow, p_version,
        p_state, term, p_created_at, p_created_at, p_due_at);
    PERFORM reporting.add_fact(ROW(platform.current_tenant(), p_workflow, p_id, p_created_at,
        NULL, p_state, term, NULL, NULL, p_created_at)::reporting.facts);
END $$;

-- item.transitioned (and the test-only path, as above). Ignores an item it
-- never saw created (created before reporting existed).
CREATE FUNCTION reporting.item_transitioned(p_id uuid, p_to text, p_at timestamptz,
    p_due_at timestamptz) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    i reporting.items;
    term boolean;
BEGIN
    SELECT * INTO i FROM reporting.items
     WHERE tenant_id = platform.current_tenant() AND id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT coalesce(bool_or(terminal), false) INTO term FROM reporting.states
     WHERE tenant_id = i.tenant_id AND workflow_key = i.workflow_key
       AND version = i.workflow_version AND state = p_to;
    PERFORM reporting.add_fact(ROW(i.tenant_id, i.workflow_key, i.id, p_at, i.state, p_to, term,
        i.state_entered_at, i.due_at, i.created_at)::reporting.facts);
    UPDATE reporting.items SET state = p_to, terminal = term, state_entered_at = p_at,
        due_at = p_due_at WHERE tenant_id = i.tenant_id AND id = i.id;
END $$;

-- workflow.published: keeps a copy of the version's states.
CREATE FUNCTION reporting.workflow_published(p_key text, p_version integer, p_states jsonb)
RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO reporting.states
    SELECT platform.current_tenant(), p_key, p_version, s.n::integer, s.v->>'name',
           coalesce((s.v->>'terminal')::boolean, false), (s.v->>'sla')::interval
      FROM jsonb_array_elements(p_states) WITH ORDINALITY AS s(v, n)
    ON CONFLICT DO NOTHING;
$$;

-- Folds the closed hours [watermark, this hour) of one workflow of the
-- current tenant into rollup_hour and moves the watermark. Returns the
-- number of facts folded.
CREATE FUNCTION reporting.roll_up(p_workflow text) RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    wm timestamptz;
    upto timestamptz := date_trunc('hour', now(), 'UTC');
    n bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(reporting.lock_key(p_workflow));
    SELECT watermark INTO wm FROM reporting.watermarks
     WHERE tenant_id = platform.current_tenant() AND workflow_key = p_workflow FOR UPDATE;
    IF wm IS NULL OR wm >= upto THEN
        RETURN 0;
    END IF;
    WITH f AS (
        SELECT * FROM reporting.facts WHERE tenant_id = platform.current_tenant()
           AND workflow_key = p_workflow AND at >= wm AND at < upto
    ), w AS (
        INSERT INTO reporting.rollup_hour AS r (tenant_id, workflow_key, hour, state, created,
            transitions, completed, lead_us)
        SELECT platform.current_tenant(), p_workflow, date_trunc('hour', at, 'UTC'), '',
               count(*) FILTER (WHERE from_state IS NULL),
               count(*) FILTER (WHERE from_state IS NOT NULL),
               count(*) FILTER (WHERE to_terminal),
               coalesce(sum(extract(epoch FROM at - created_at) * 1000000)
                        FILTER (WHERE to_terminal), 0)
          FROM f GROUP BY 3
        ON CONFLICT (tenant_id, workflow_key, hour, state) DO UPDATE SET
            created = r.created + excluded.created,
            transitions = r.transitions + excluded.transitions,
            completed = r.completed + excluded.completed, lead_us = r.lead_us + excluded.lead_us
        RETURNING 1
    ), s AS (
        INSERT INTO reporting.rollup_hour AS r (tenant_id, workflow_key, hour, state, stays,
            stay_us, sla_met, sla_breached)
        SELECT platform.current_tenant(), p_workflow, date_trunc('hour', at, 'UTC'), from_state,
               count(*), sum(extract(epoch FROM at - entered_at) * 1000000),
               count(*) FILTER (WHERE due_at IS NOT NULL AND at <= due_at),
               count(*) FILTER (WHERE due_at IS NOT NULL AND at > due_at)
          FROM f WHERE from_state IS NOT NULL GROUP BY 3, 4
        ON CONFLICT (tenant_id, workflow_key, hour, state) DO UPDATE SET
            stays = r.stays + excluded.stays, stay_us = r.stay_us + excluded.stay_us,
            sla_met = r.sla_met + excluded.sla_met,
            sla_breached = r.sla_breached + excluded.sla_breached
        RETURNING 1
    )
    SELECT count(*) INTO n FROM f;
    UPDATE reporting.watermarks SET watermark = upto
     WHERE tenant_id = platform.current_tenant() AND workflow_key = p_workflow;
    RETURN n;
END $$;

-- The roll-up job's queue, across tenants: workflows with closed hours not
-- yet folded. Tenant ids and keys only.
CREATE FUNCTION reporting.rollup_pending(p_limit integer) RETURNS TABLE (tenant_id uuid, workflow_key text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT w.tenant_id, w.workflow_key FROM reporting.watermarks w
     WHERE w.watermark < date_trunc('hour', now(), 'UTC')
     ORDER BY w.watermark LIMIT p_limit
$$;
REVOKE ALL ON FUNCTION reporting.rollup_pending(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reporting.rollup_pending(integer) TO tenantflow_app;

-- Creates the month partition holding t (moving any rows the default
-- partition caught for that month), with forced RLS and a policy like its
-- parent and no privilege for the application role.
CREATE FUNCTION reporting.ensure_partition(t timestamptz) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo timestamptz := date_trunc('month', t, 'UTC');
    hi timestamptz := (date_trunc('month', t AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'facts_' || to_char(t AT TIME ZONE 'UTC', 'YYYYMM');
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
                   ' INSERT INTO reporting.%I SELECT * FROM m', lo, hi, name);
    EXECUTE format('ALTER TABLE reporting.facts ATTACH PARTITION reporting.%I FOR VALUES FROM (%L) TO (%L)',
                   name, lo, hi);
    RETURN true;
END $$;
REVOKE ALL ON FUNCTION reporting.ensure_partition(timestamptz) FROM PUBLIC;

-- The upkeep job: this month and the next `ahead` months. Returns how many
-- partitions it created.
CREATE FUNCTION reporting.ensure_partitions(ahead integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE n integer := 0;
BEGIN
    FOR i IN 0 .. least(greatest(ahead, 0), 24) LOOP
        IF reporting.ensure_partition(now() + make_interval(months => i)) THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END $$;
REVOKE ALL ON FUNCTION reporting.ensure_partitions(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reporting.ensure_partitions(integer) TO tenantflow_app;

-- Operator tool (owner or superuser only): detaches every month partition
-- that ends at or before `before`, leaving it as a plain table to archive or
-- drop. Rollups keep their counts and sums; percentiles and raw reads over
-- those months no longer see the detached facts.
CREATE FUNCTION reporting.detach_partitions_before(before timestamptz) RETURNS SETOF text
LANGUAGE plpgsql
AS $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.relname
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'reporting.facts'::regclass AND c.relname ~ '^facts_[0-9]{6}$'
    LOOP
        IF ((to_date(substr(r.relname, 7), 'YYYYMM') + interval '1 month') AT TIME ZONE 'UTC')
           <= before THEN
            EXECUTE format('ALTER TABLE reporting.facts DETACH PARTITION reporting.%I', r.relname);
            RETURN NEXT r.relname;
        END IF;
    END LOOP;
END $$;
REVOKE ALL ON FUNCTION reporting.detach_partitions_before(timestamptz) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION reporting.lock_key(text), reporting.add_to_rollup(reporting.facts),
    reporting.add_fact(reporting.facts),
    reporting.item_created(uuid, text, integer, text, timestamptz, timestamptz),
    reporting.item_transitioned(uuid, text, timestamptz, timestamptz),
    reporting.workflow_published(text, integer, jsonb), reporting.roll_up(text)
    TO tenantflow_app;

SELECT reporting.ensure_partitions(3);
