-- The summary with exact percentiles from duration histograms (see
-- 0062_reporting_histograms.sql). Counts, sums and SLA tallies are read as
-- before: rollup_hour for whole UTC hours below the watermark, raw facts for
-- the cut edges and the open tail.

-- [ds, de): the whole UTC days of [p_from, p_to) that rollup_hist covers (all
-- below the watermark), as day numbers, and their bounds [hs, he). Empty
-- (ds = de, hs = he = p_to) when no whole day qualifies.
CREATE FUNCTION reporting.hist_span(p_workflow text, p_from timestamptz, p_to timestamptz,
    OUT ds integer, OUT de integer, OUT hs timestamptz, OUT he timestamptz)
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    wm timestamptz;
BEGIN
    SELECT watermark INTO wm FROM reporting.watermarks
     WHERE tenant_id = platform.current_tenant() AND workflow_key = p_workflow;
    IF wm IS NULL OR NOT isfinite(p_from) OR NOT isfinite(p_to) THEN
        ds := 0; de := 0; hs := p_to; he := p_to;
        RETURN;
    END IF;
    ds := reporting.day_no(p_from);
    IF timezone('UTC', (date '1970-01-01' + ds)::timestamp) < p_from THEN
        ds := ds + 1;
    END IF;
    de := reporting.day_no(least(p_to, wm));
    IF de <= ds THEN
        ds := 0; de := 0; hs := p_to; he := p_to;
        RETURN;
    END IF;
    hs := timezone('UTC', (date '1970-01-01' + ds)::timestamp);
    he := timezone('UTC', (date '1970-01-01' + de)::timestamp);
END $$;

-- Exact percentile_cont(0.5) and (0.9) of lead time ('') and of the stays in
-- each state over [p_from, p_to): {state: [p50, p90]}.
CREATE FUNCTION reporting.percentiles(p_workflow text, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (state text, p float8[])
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    t uuid := platform.current_tenant();
    hp record;
BEGIN
    SELECT * INTO hp FROM reporting.hist_span(p_workflow, p_from, p_to);
    RETURN QUERY
    WITH hb AS (
        SELECT * FROM reporting.hist_blocks(hp.ds, hp.de)
    ),
    -- how many values of each series fall in each bin: histogram blocks for
    -- the whole days, raw facts for the rest
    cnt AS (
        SELECT h.state, array_lower(h.counts, 1) + u.o::integer - 1 AS bin, u.c AS n
          FROM hb JOIN reporting.rollup_hist h
            ON h.tenant_id = t AND h.workflow_key = p_workflow AND h.lvl = hb.lvl
           AND h.block = hb.block
         CROSS JOIN LATERAL unnest(h.counts) WITH ORDINALITY u(c, o)
         WHERE u.c <> 0
        UNION ALL
        SELECT x.state, x.bin, 1
          FROM (SELECT from_state, stay_bin, lead_bin FROM reporting.facts
                 WHERE tenant_id = t AND workflow_key = p_workflow
                   AND at >= p_from AND at < hp.hs
                UNION ALL
                SELECT from_state, stay_bin, lead_bin FROM reporting.facts
                 WHERE tenant_id = t AND workflow_key = p_workflow
                   AND at >= hp.he AND at < p_to) f
         CROSS JOIN LATERAL (VALUES ('', f.lead_bin), (f.from_state, f.stay_bin)) x(state, bin)
         WHERE x.state IS NOT NULL AND x.bin IS NOT NULL
    ),
    hg AS (
        SELECT c.state, c.bin, sum(c.n)::bigint AS n FROM cnt c GROUP BY 1, 2 HAVING sum(c.n) > 0
    ),
    hc AS MATERIALIZED (
        SELECT hg.state, hg.bin, hg.n, sum(hg.n) OVER (PARTITION BY hg.state ORDER BY hg.bin) AS cum
          FROM hg
    ),
    tot AS (
        SELECT hg.state, sum(hg.n)::bigint AS n FROM hg GROUP BY 1
    ),
    -- each rank percentile_cont needs: k = floor(pos) and ceil(pos), pos = p(n-1)
    need AS (
        SELECT tot.state, ps.i, ks.j, q.pos, b.bin, ks.k - b.before AS off
          FROM tot
         CROSS JOIN (VALUES (1, 0.5::float8), (2, 0.9::float8)) ps(i, p)
         CROSS JOIN LATERAL (SELECT ps.p * (tot.n - 1) AS pos) q
         CROSS JOIN LATERAL (VALUES (1, floor(q.pos)::bigint), (2, ceil(q.pos)::bigint)) ks(j, k)
         CROSS JOIN LATERAL (SELECT hc.bin, hc.cum - hc.n AS before FROM hc
                              WHERE hc.state = tot.state AND hc.cum > ks.k
                              ORDER BY hc.bin LIMIT 1) b
    ),
    -- the sorted values of each bin that holds a needed rank
    vals AS (
        SELECT nb.state, nb.bin, CASE WHEN nb.state = '' THEN
                 (SELECT array_agg(date_part('epoch', f.at - f.created_at)
                                   ORDER BY date_part('epoch', f.at - f.created_at))
                    FROM reporting.facts f
                   WHERE f.tenant_id = t AND f.workflow_key = p_workflow AND f.to_terminal
                     AND f.lead_bin = nb.bin AND f.at >= p_from AND f.at < p_to)
               ELSE
                 (SELECT array_agg(date_part('epoch', f.at - f.entered_at)
                                   ORDER BY date_part('epoch', f.at - f.entered_at))
                    FROM reporting.facts f
                   WHERE f.tenant_id = t AND f.workflow_key = p_workflow
                     AND f.from_state = nb.state AND f.stay_bin = nb.bin
                     AND f.at >= p_from AND f.at < p_to)
               END AS v
          FROM (SELECT DISTINCT need.state, need.bin FROM need) nb
    ),
    kth AS (
        SELECT need.state, need.i, need.pos,
               max(vals.v[(need.off + 1)::integer]) FILTER (WHERE need.j = 1) AS lo,
               max(vals.v[(need.off + 1)::integer]) FILTER (WHERE need.j = 2) AS hi
          FROM need JOIN vals USING (state, bin)
         GROUP BY 1, 2, 3
    )
    -- float8_lerp, as percentile_cont computes it
    SELECT kth.state, array_agg(kth.lo + ((kth.pos - floor(kth.pos)) * (kth.hi - kth.lo))
                                ORDER BY kth.i)
      FROM kth GROUP BY 1;
END $$;

-- The summary of [p_from, p_to), or NULL when the workflow is unknown.
CREATE OR REPLACE FUNCTION reporting.summary(p_workflow text, p_from timestamptz, p_to timestamptz)
RETURNS json
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    t uuid := platform.current_tenant();
    sp record;
    res json;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM reporting.states WHERE tenant_id = t AND workflow_key = p_workflow) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO sp FROM reporting.rolled_span(p_workflow, p_from, p_to);
    WITH st AS (SELECT * FROM reporting.open_states(p_workflow)),
    raw AS (
        SELECT * FROM reporting.facts WHERE tenant_id = t AND workflow_key = p_workflow
           AND at >= p_from AND at < least(sp.rs, p_to)
        UNION ALL
        SELECT * FROM reporting.facts WHERE tenant_id = t AND workflow_key = p_workflow
           AND at >= greatest(sp.re, p_from) AND at < p_to
    ),
    -- counts and sums, workflow-wide: rollups + raw edges
    w AS (
        SELECT sum(created) AS created, sum(completed) AS completed, sum(lead_us) AS lead_us
          FROM (SELECT created, completed, lead_us FROM reporting.rollup_hour
                 WHERE tenant_id = t AND workflow_key = p_workflow AND state = ''
                   AND hour >= sp.rs AND hour < sp.re
                UNION ALL
                SELECT (from_state IS NULL)::int, to_terminal::int,
                       CASE WHEN to_terminal THEN extract(epoch FROM at - created_at) * 1000000 ELSE 0 END
                  FROM raw) x
    ),
    -- stays that ended in range, per state: rollups + raw edges
    s AS (
        SELECT state, sum(stays) AS stays, sum(stay_us) AS stay_us, sum(sla_met) AS met,
               sum(sla_breached) AS breached
          FROM (SELECT state, stays, stay_us, sla_met, sla_breached FROM reporting.rollup_hour
                 WHERE tenant_id = t AND workflow_key = p_workflow AND state <> ''
                   AND hour >= sp.rs AND hour < sp.re
                UNION ALL
                SELECT from_state, 1, extract(epoch FROM at - entered_at) * 1000000,
                       (due_at IS NOT NULL AND at <= due_at)::int,
                       (due_at IS NOT NULL AND at > due_at)::int
                  FROM raw WHERE from_state IS NOT NULL) x
         GROUP BY state
    ),
    -- exact p50/p90: histograms locate each rank's bin, one bin's raw values
    pc AS (
        SELECT * FROM reporting.percentiles(p_workflow, p_from, p_to)
    ),
    wip AS (
        SELECT state, count(*) AS n FROM reporting.items
         WHERE tenant_id = t AND workflow_key = p_workflow AND NOT terminal GROUP BY state
    ),
    open_breached AS (
        SELECT count(*) AS n FROM reporting.items
         WHERE tenant_id = t AND workflow_key = p_workflow AND NOT terminal
           AND due_at IS NOT NULL AND due_at >= p_from AND due_at < p_to AND due_at < now()
    ),
    sla AS (
        SELECT coalesce((SELECT sum(met) FROM s), 0)::bigint AS met,
               (coalesce((SELECT sum(breached) FROM s), 0) + (SELECT n FROM open_breached))::bigint
                   AS breached
    )
    SELECT json_build_object(
        'workflow', p_workflow,
        'from', platform.rfc3339(p_from),
        'to', platform.rfc3339(p_to),
        'wip', coalesce((SELECT json_object_agg(st.state, coalesce(wip.n, 0) ORDER BY st.pos)
                           FROM st LEFT JOIN wip USING (state)), '{}'::json),
        'created', coalesce(w.created, 0)::bigint,
        'completed', coalesce(w.completed, 0)::bigint,
        'throughput_per_day', (coalesce(w.completed, 0)
                               / (extract(epoch FROM p_to - p_from) / 86400))::float8,
        'lead_time', json_build_object(
            'avg', CASE WHEN w.completed > 0 THEN (w.lead_us / w.completed / 1000000)::float8 END,
            'p50', (SELECT p[1] FROM pc WHERE state = ''), 'p90', (SELECT p[2] FROM pc WHERE state = '')),
        'time_in_state', coalesce((SELECT json_object_agg(st.state, json_build_object(
            'avg', CASE WHEN s.stays > 0 THEN (s.stay_us / s.stays / 1000000)::float8 END,
            'p50', pc.p[1], 'p90', pc.p[2]) ORDER BY st.pos)
            FROM st LEFT JOIN s USING (state) LEFT JOIN pc USING (state)), '{}'::json),
        'sla', json_build_object('met', sla.met, 'breached', sla.breached,
            'breach_rate', CASE WHEN sla.met + sla.breached > 0
                                THEN (sla.breached::numeric / (sla.met + sla.breached))::float8 END))
      INTO res FROM w, sla;
    RETURN res;
END $$;

GRANT EXECUTE ON FUNCTION reporting.hist_span(text, timestamptz, timestamptz),
    reporting.percentiles(text, timestamptz, timestamptz) TO tenantflow_app;
