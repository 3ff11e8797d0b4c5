-- Reporting: exact percentiles without sorting the whole range.
--
-- percentile_cont(p) over n values is the linear interpolation between the
-- order statistics k = floor(p(n-1)) and k+1 (0-based). To find the k-th
-- value of a range we need only (1) how many values of the range fall in
-- each duration bin, and (2) the raw values of the one bin that holds rank
-- k. So:
--
--   dur_bin(v)   a bin number for a duration v (float8 seconds, the value the
--                percentile orders by): the float's sign, exponent and top 6
--                mantissa bits, 64 log-scale bins per doubling. It is
--                monotone by construction (the IEEE bit pattern of a
--                non-negative double orders like its value), so every value
--                of bin b sorts before every value of bin b+1.
--   facts        gain two stored generated columns: stay_bin (the stay this
--                fact ended) and lead_bin (lead time, terminal facts only),
--                and two indexes that read one bin of one series over a
--                time range, index-only.
--   rollup_hist  per tenant, workflow, block of UTC days, series ('' for lead
--                time, else the state whose stays it counts) and octave (64
--                bins): an array of counts subscripted by bin number. Blocks
--                come in five sizes, 4^lvl days (1, 4, 16, 64, 256), aligned
--                on 1970-01-01, so any range of whole days is a handful of
--                blocks (at most 3 of each size at each end). Maintained like
--                rollup_hour: the roll-up job folds [watermark, this hour)
--                and a late fact adds itself, so a block wholly below the
--                watermark is exact.
--
-- The summary counts each bin over the range (blocks for whole days below the
-- watermark, raw facts for the cut edges and the open tail), finds the bin
-- and the offset of each needed rank, reads that bin's values in the range,
-- and interpolates exactly as percentile_cont does. Over one million facts a
-- 90-day summary reads ~500 histogram rows, the facts of the two cut days,
-- and ~1,000 facts per needed bin, instead of sorting ~250,000 durations.

-- NULL for NULL. Not declared STRICT so that it is inlined (ten times
-- cheaper per fact written).
CREATE FUNCTION reporting.dur_bin(v float8) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN v > 0 THEN (('x' || encode(float8send(v), 'hex'))::bit(64)::bigint >> 46)::integer
                WHEN v < 0 THEN (-1 - (('x' || encode(float8send(-v), 'hex'))::bit(64)::bigint >> 46))::integer
                WHEN v = 0 THEN 0 END
$$;

-- Days since 1970-01-01 UTC.
CREATE FUNCTION reporting.day_no(t timestamptz) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT (timezone('UTC', t))::date - date '1970-01-01' $$;

ALTER TABLE reporting.facts
    ADD COLUMN stay_bin integer
        GENERATED ALWAYS AS (reporting.dur_bin(date_part('epoch', at - entered_at))) STORED,
    ADD COLUMN lead_bin integer
        GENERATED ALWAYS AS (CASE WHEN to_terminal
                                  THEN reporting.dur_bin(date_part('epoch', at - created_at)) END) STORED;

-- The time index also carries the bins, so the raw edges are counted index-only.
DROP INDEX reporting.facts_time;
CREATE INDEX facts_time ON reporting.facts (tenant_id, workflow_key, at)
    INCLUDE (from_state, to_terminal, entered_at, due_at, created_at, stay_bin, lead_bin);
-- One bin of one series over a time range, index-only.
CREATE INDEX facts_stay_bin ON reporting.facts (tenant_id, workflow_key, from_state, stay_bin, at)
    INCLUDE (entered_at) WHERE from_state IS NOT NULL;
CREATE INDEX facts_lead_bin ON reporting.facts (tenant_id, workflow_key, lead_bin, at)
    INCLUDE (created_at) WHERE to_terminal;

CREATE TABLE reporting.rollup_hist (
    tenant_id    uuid NOT NULL,
    workflow_key text NOT NULL,
    lvl          smallint NOT NULL,   -- block of 4^lvl days
    block        integer NOT NULL,    -- day_no >> (2 * lvl)
    state        text NOT NULL,       -- '' lead time, else stays in this state
    octave       integer NOT NULL,    -- bin >> 6: the 64 bins of one doubling
    counts       bigint[] NOT NULL,   -- counts[bin]: subscripts are bin numbers, NULL is 0
    PRIMARY KEY (tenant_id, workflow_key, lvl, block, state, octave)
);
ALTER TABLE reporting.rollup_hist ENABLE ROW LEVEL SECURITY;
ALTER TABLE reporting.rollup_hist FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON reporting.rollup_hist USING (tenant_id = platform.current_tenant())
    WITH CHECK (tenant_id = platform.current_tenant());
-- detach_partitions_before (run by the owner) takes detached facts out.
CREATE POLICY definer_all ON reporting.rollup_hist TO tenantflow_owner USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE ON reporting.rollup_hist TO tenantflow_app;

-- a[bin] += n, growing the array either way (gaps are NULL).
CREATE FUNCTION reporting.hist_put(a bigint[], bin integer, n bigint) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF bin IS NOT NULL AND n IS NOT NULL THEN
        a[bin] := coalesce(a[bin], 0) + n;
    END IF;
    RETURN a;
END $$;

-- Element-wise a + b.
CREATE FUNCTION reporting.hist_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    IF b IS NOT NULL AND cardinality(b) > 0 THEN
        FOR i IN array_lower(b, 1) .. array_upper(b, 1) LOOP
            IF b[i] IS NOT NULL THEN
                a[i] := coalesce(a[i], 0) + b[i];
            END IF;
        END LOOP;
    END IF;
    RETURN a;
END $$;

-- hist_agg(bin, n): the counts array of a set of (bin, n).
CREATE AGGREGATE reporting.hist_agg(integer, bigint) (
    SFUNC = reporting.hist_put, STYPE = bigint[], INITCOND = '{}'
);

-- The blocks that tile the days [ds, de), largest first where aligned.
CREATE FUNCTION reporting.hist_blocks(ds integer, de integer)
RETURNS TABLE (lvl smallint, block integer)
LANGUAGE plpgsql IMMUTABLE STRICT ROWS 12
AS $$
DECLARE
    x integer := ds;
    l integer;
BEGIN
    WHILE x < de LOOP
        l := 4;
        WHILE l > 0 AND (x % (1 << (2 * l)) <> 0 OR x + (1 << (2 * l)) > de) LOOP
            l := l - 1;
        END LOOP;
        lvl := l;
        block := x >> (2 * l);
        RETURN NEXT;
        x := x + (1 << (2 * l));
    END LOOP;
END $$;

-- Adds one fact to the histograms (late facts; roll_up folds in bulk).
CREATE FUNCTION reporting.add_to_hist(f reporting.facts) RETURNS void
LANGUAGE sql
AS $$
    INSERT INTO reporting.rollup_hist AS r (tenant_id, workflow_key, lvl, block, state, octave,
        counts)
    SELECT f.tenant_id, f.workflow_key, l, reporting.day_no(f.at) >> (2 * l), s.state, s.bin >> 6,
           reporting.hist_put('{}', s.bin, 1)
      FROM (VALUES ('', CASE WHEN f.to_terminal
                             THEN reporting.dur_bin(date_part('epoch', f.at - f.created_at)) END),
                   (f.from_state, reporting.dur_bin(date_part('epoch', f.at - f.entered_at))))
           s(state, bin),
           generate_series(0, 4) l
     WHERE s.state IS NOT NULL AND s.bin IS NOT NULL
    ON CONFLICT (tenant_id, workflow_key, lvl, block, state, octave) DO UPDATE SET
        counts = reporting.hist_add(r.counts, excluded.counts);
$$;

-- Facts now have generated columns: writers name the stored ones.
CREATE OR REPLACE FUNCTION reporting.add_fact(f reporting.facts) RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE wm timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(reporting.lock_key(f.workflow_key));
    SELECT watermark INTO wm FROM reporting.watermarks
     WHERE tenant_id = f.tenant_id AND workflow_key = f.workflow_key;
    INSERT INTO reporting.facts (tenant_id, workflow_key, item_id, at, from_state, to_state,
        to_terminal, entered_at, due_at, created_at)
    VALUES (f.tenant_id, f.workflow_key, f.item_id, f.at, f.from_state, f.to_state,
        f.to_terminal, f.entered_at, f.due_at, f.created_at);
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

CREATE OR REPLACE FUNCTION reporting.item_created(p_id uuid, p_workflow text, p_version integer,
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
        NULL, p_state, term, NULL, NULL, p_created_at, NULL, NULL)::reporting.facts);
END $$;

CREATE OR REPLACE FUNCTION reporting.item_transitioned(p_id uuid, p_to text, p_at timestamptz,
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
        i.state_entered_at, i.due_at, i.created_at, NULL, NULL)::reporting.facts);
    UPDATE reporting.items SET state = p_to, terminal = term, state_entered_at = p_at,
        due_at = p_due_at WHERE tenant_id = i.tenant_id AND id = i.id;
END $$;

-- roll_up as before, plus the histograms of the folded facts.
CREATE OR REPLACE FUNCTION reporting.roll_up(p_workflow text) RETURNS bigint
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
    ), d AS (
        SELECT reporting.day_no(f.at) AS day, x.state, x.bin, count(*) AS n
          FROM f CROSS JOIN LATERAL (VALUES ('', f.lead_bin), (f.from_state, f.stay_bin)) x(state, bin)
         WHERE x.state IS NOT NULL AND x.bin IS NOT NULL
         GROUP BY 1, 2, 3
    ), h AS (
        INSERT INTO reporting.rollup_hist AS r (tenant_id, workflow_key, lvl, block, state, octave,
            counts)
        SELECT platform.current_tenant(), p_workflow, b.lvl, b.block, b.state, b.bin >> 6,
               reporting.hist_agg(b.bin, b.n)
          FROM (SELECT l AS lvl, d.day >> (2 * l) AS block, d.state, d.bin, sum(d.n)::bigint AS n
                  FROM d, generate_series(0, 4) l GROUP BY 1, 2, 3, 4) b
         GROUP BY 3, 4, 5, 6
        ON CONFLICT (tenant_id, workflow_key, lvl, block, state, octave) DO UPDATE SET
            counts = reporting.hist_add(r.counts, excluded.counts)
        RETURNING 1
    )
    SELECT count(*) INTO n FROM f;
    UPDATE reporting.watermarks SET watermark = upto
     WHERE tenant_id = platform.current_tenant() AND workflow_key = p_workflow;
    RETURN n;
END $$;

-- New partitions copy the generated columns; moved rows name the stored ones.
CREATE OR REPLACE FUNCTION reporting.ensure_partition(t timestamptz) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo timestamptz := date_trunc('month', t, 'UTC');
    hi timestamptz := (date_trunc('month', t AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'facts_' || to_char(t AT TIME ZONE 'UTC', 'YYYYMM');
    cols text := 'tenant_id, workflow_key, item_id, at, from_state, to_state, to_terminal,'
                 ' entered_at, due_at, created_at';
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('reporting:partitions', 0));
    IF to_regclass('reporting.' || name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE reporting.%I (LIKE reporting.facts INCLUDING DEFAULTS'
                   ' INCLUDING GENERATED)', name);
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

-- Detaching a month also takes its facts out of the histograms, so
-- percentiles stay those of the facts still attached.
CREATE OR REPLACE FUNCTION reporting.detach_partitions_before(before timestamptz) RETURNS SETOF text
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
            EXECUTE format($q$
                WITH d AS (
                    SELECT f.tenant_id, f.workflow_key, reporting.day_no(f.at) AS day, x.state,
                           x.bin, count(*) AS n
                      FROM reporting.%I f
                      JOIN reporting.watermarks w USING (tenant_id, workflow_key)
                     CROSS JOIN LATERAL (VALUES ('', f.lead_bin), (f.from_state, f.stay_bin)) x(state, bin)
                     WHERE f.at < w.watermark AND x.state IS NOT NULL AND x.bin IS NOT NULL
                     GROUP BY 1, 2, 3, 4, 5
                ), s AS (
                    SELECT tenant_id, workflow_key, lvl, block, state, bin >> 6 AS octave,
                           reporting.hist_agg(bin, -n) AS c
                      FROM (SELECT tenant_id, workflow_key, l AS lvl, day >> (2 * l) AS block,
                                   state, bin, sum(n)::bigint AS n
                              FROM d, generate_series(0, 4) l GROUP BY 1, 2, 3, 4, 5, 6) x
                     GROUP BY 1, 2, 3, 4, 5, 6
                )
                UPDATE reporting.rollup_hist h SET counts = reporting.hist_add(h.counts, s.c) FROM s
                 WHERE h.tenant_id = s.tenant_id AND h.workflow_key = s.workflow_key
                   AND h.lvl = s.lvl AND h.block = s.block AND h.state = s.state
                   AND h.octave = s.octave
                $q$, r.relname);
            EXECUTE format('ALTER TABLE reporting.facts DETACH PARTITION reporting.%I', r.relname);
            RETURN NEXT r.relname;
        END IF;
    END LOOP;
END $$;

-- Histograms of the facts already rolled up, tenant by tenant.
DO $$
DECLARE w record;
BEGIN
    FOR w IN SELECT tenant_id, workflow_key, watermark FROM reporting.watermarks LOOP
        PERFORM set_config('app.tenant_id', w.tenant_id::text, true);
        WITH d AS (
            SELECT reporting.day_no(f.at) AS day, x.state, x.bin, count(*) AS n
              FROM reporting.facts f
             CROSS JOIN LATERAL (VALUES ('', f.lead_bin), (f.from_state, f.stay_bin)) x(state, bin)
             WHERE f.tenant_id = w.tenant_id AND f.workflow_key = w.workflow_key
               AND f.at < w.watermark AND x.state IS NOT NULL AND x.bin IS NOT NULL
             GROUP BY 1, 2, 3
        )
        INSERT INTO reporting.rollup_hist (tenant_id, workflow_key, lvl, block, state, octave,
            counts)
        SELECT w.tenant_id, w.workflow_key, b.lvl, b.block, b.state, b.bin >> 6,
               reporting.hist_agg(b.bin, b.n)
          FROM (SELECT l AS lvl, d.day >> (2 * l) AS block, d.state, d.bin, sum(d.n)::bigint AS n
                  FROM d, generate_series(0, 4) l GROUP BY 1, 2, 3, 4) b
         GROUP BY 3, 4, 5, 6;
    END LOOP;
    PERFORM set_config('app.tenant_id', '', true);
END $$;

GRANT EXECUTE ON FUNCTION reporting.dur_bin(float8), reporting.day_no(timestamptz),
    reporting.hist_put(bigint[], integer, bigint), reporting.hist_add(bigint[], bigint[]),
    reporting.hist_agg(integer, bigint), reporting.hist_blocks(integer, integer),
    reporting.add_to_hist(reporting.facts)
    TO tenantflow_app;
