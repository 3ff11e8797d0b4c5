-- Reporting reads: the summary and the time series, each reading rollups for
-- whole UTC hours below the watermark and raw facts for everything else (the
-- range's cut edges and the open tail). Percentiles always read raw facts.
-- All run as the application role under RLS.

-- An RFC 3339 timestamp, or a date (local midnight in tz); NULL if invalid.
CREATE FUNCTION reporting.parse_time(p text, p_tz text) RETURNS timestamptz
LANGUAGE plpgsql STABLE
AS $$
BEGIN
    IF p IS NULL THEN
        RETURN NULL;
    END IF;
    IF length(p) = 10 THEN
        RETURN p::date::timestamp AT TIME ZONE p_tz;
    END IF;
    RETURN p::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;

-- The non-terminal states of every version of a workflow, in definition order.
CREATE FUNCTION reporting.open_states(p_workflow text)
RETURNS TABLE (state text, pos bigint)
LANGUAGE sql STABLE
AS $$
    SELECT state, row_number() OVER (ORDER BY min(version), min(position))
      FROM reporting.states
     WHERE tenant_id = platform.current_tenant() AND workflow_key = p_workflow
     GROUP BY state HAVING bool_or(NOT terminal)
$$;

-- [rs, re): the whole UTC hours of [p_from, p_to) that rollups cover.
CREATE FUNCTION reporting.rolled_span(p_workflow text, p_from timestamptz, p_to timestamptz,
    OUT rs timestamptz, OUT re timestamptz)
LANGUAGE plpgsql STABLE
AS $$
DECLARE wm timestamptz;
BEGIN
    SELECT watermark INTO wm FROM reporting.watermarks
     WHERE tenant_id = platform.current_tenant() AND workflow_key = p_workflow;
    rs := date_trunc('hour', p_from, 'UTC');
    IF rs < p_from THEN
        rs := rs + interval '1 hour';
    END IF;
    re := least(date_trunc('hour', p_to, 'UTC'), coalesce(wm, '-infinity'));
    IF re < rs THEN
        re := rs;
    END IF;
END $$;

-- The summary of [p_from, p_to), or NULL when the workflow is unknown.
CREATE FUNCTION reporting.summary(p_workflow text, p_from timestamptz, p_to timestamptz)
RETURNS json
LANGUAGE plpgsql STABLE SET work_mem = '64MB'
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
    -- percentiles: raw facts of the whole range, index-only, float8 seconds
    pr AS NOT MATERIALIZED (
        SELECT at, from_state, to_terminal, entered_at, created_at FROM reporting.facts WHERE tenant_id = t AND workflow_key = p_workflow
           AND at >= p_from AND at < p_to
    ),
    lp AS (
        SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP
               (ORDER BY date_part('epoch', at - created_at)) AS p
          FROM pr WHERE to_terminal
    ),
    sq AS (
        SELECT from_state AS state, percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP
               (ORDER BY date_part('epoch', at - entered_at)) AS p
          FROM pr WHERE from_state IS NOT NULL GROUP BY from_state
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
            'p50', (SELECT p[1] FROM lp), 'p90', (SELECT p[2] FROM lp)),
        'time_in_state', coalesce((SELECT json_object_agg(st.state, json_build_object(
            'avg', CASE WHEN s.stays > 0 THEN (s.stay_us / s.stays / 1000000)::float8 END,
            'p50', sq.p[1], 'p90', sq.p[2]) ORDER BY st.pos)
            FROM st LEFT JOIN s USING (state) LEFT JOIN sq USING (state)), '{}'::json),
        'sla', json_build_object('met', sla.met, 'breached', sla.breached,
            'breach_rate', CASE WHEN sla.met + sla.breached > 0
                                THEN (sla.breached::numeric / (sla.met + sla.breached))::float8 END))
      INTO res FROM w, sla;
    RETURN res;
END $$;

-- How many buckets [p_from, p_to) holds in tz (at most p_cap + 1 counted).
CREATE FUNCTION reporting.bucket_count(p_bucket text, p_from timestamptz, p_to timestamptz,
    p_tz text, p_cap integer) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    step interval := ('1 ' || p_bucket)::interval;
    n bigint;
    old text := current_setting('TimeZone');
BEGIN
    -- Cheap bound first, so a huge range never generates a huge series.
    IF extract(epoch FROM p_to - p_from) / (CASE p_bucket WHEN 'hour' THEN 3600
        WHEN 'day' THEN 82800 WHEN 'week' THEN 601200 ELSE 2415600 END) > p_cap + 2 THEN
        RETURN p_cap + 1;
    END IF;
    PERFORM set_config('TimeZone', p_tz, true);
    SELECT count(*) INTO n FROM generate_series(date_trunc(p_bucket, p_from),
                                                p_to - interval '1 microsecond', step);
    PERFORM set_config('TimeZone', old, true);
    RETURN n;
END $$;

-- The time series of metric (created, completed, transitions) in buckets of
-- p_bucket aligned in p_tz; NULL when the workflow is unknown.
CREATE FUNCTION reporting.timeseries(p_workflow text, p_metric text, p_bucket text,
    p_from timestamptz, p_to timestamptz, p_tz text) RETURNS json
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    t uuid := platform.current_tenant();
    step interval := ('1 ' || p_bucket)::interval;
    old text := current_setting('TimeZone');
    sp record;
    aligned boolean;
    res json;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM reporting.states WHERE tenant_id = t AND workflow_key = p_workflow) THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('TimeZone', p_tz, true);
    SELECT * INTO sp FROM reporting.rolled_span(p_workflow, p_from, p_to);
    -- Rollup hours serve only when every bucket boundary is a UTC hour
    -- (not so for hour buckets in zones offset by :30 or :45).
    SELECT bool_and(date_trunc('hour', b, 'UTC') = b) INTO aligned
      FROM generate_series(date_trunc(p_bucket, p_from), p_to - interval '1 microsecond', step) b;
    IF NOT coalesce(aligned, false) THEN
        sp.rs := p_to;
        sp.re := p_to;
    END IF;
    WITH b AS (
        SELECT g AS start FROM generate_series(date_trunc(p_bucket, p_from),
                                               p_to - interval '1 microsecond', step) g
    ),
    v AS (
        SELECT date_trunc(p_bucket, hour) AS start,
               sum(CASE p_metric WHEN 'created' THEN created WHEN 'completed' THEN completed
                   ELSE transitions END) AS n
          FROM reporting.rollup_hour
         WHERE tenant_id = t AND workflow_key = p_workflow AND state = ''
           AND hour >= sp.rs AND hour < sp.re
         GROUP BY 1
        UNION ALL
        SELECT date_trunc(p_bucket, at), count(*)
          FROM (SELECT at, from_state, to_terminal FROM reporting.facts
                 WHERE tenant_id = t AND workflow_key = p_workflow
                   AND at >= p_from AND at < least(sp.rs, p_to)
                UNION ALL
                SELECT at, from_state, to_terminal FROM reporting.facts
                 WHERE tenant_id = t AND workflow_key = p_workflow
                   AND at >= greatest(sp.re, p_from) AND at < p_to) f
         WHERE CASE p_metric WHEN 'created' THEN from_state IS NULL
                             WHEN 'completed' THEN to_terminal
                             ELSE from_state IS NOT NULL END
         GROUP BY 1
    )
    SELECT coalesce(json_agg(json_build_object('bucket_start', platform.rfc3339(b.start),
                                               'value', coalesce(x.n, 0)::bigint) ORDER BY b.start),
                    '[]'::json)
      INTO res
      FROM b LEFT JOIN (SELECT start, sum(n) AS n FROM v GROUP BY start) x USING (start);
    PERFORM set_config('TimeZone', old, true);
    RETURN res;
END $$;

GRANT EXECUTE ON FUNCTION reporting.parse_time(text, text), reporting.open_states(text),
    reporting.rolled_span(text, timestamptz, timestamptz),
    reporting.summary(text, timestamptz, timestamptz),
    reporting.bucket_count(text, timestamptz, timestamptz, text, integer),
    reporting.timeseries(text, text, text, timestamptz, timestamptz, text) TO tenantflow_app;
