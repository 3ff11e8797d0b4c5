-- Bucket starts are re-aligned with date_trunc after every step. Stepping a
-- day (or month) from a local midnight that does not exist (America/Havana and
-- America/Sao_Paulo change clocks at 00:00) lands on 01:00 and every later
-- step stayed there, so those buckets no longer matched the events' own
-- date_trunc keys and their counts were lost. Truncating each step puts every
-- bucket back on local midnight (or the hour, Monday, the 1st).

-- How many buckets [p_from, p_to) holds in tz (at most p_cap + 1 counted).
CREATE OR REPLACE FUNCTION reporting.bucket_count(p_bucket text, p_from timestamptz, p_to timestamptz,
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
    SELECT count(DISTINCT date_trunc(p_bucket, g)) INTO n
      FROM generate_series(date_trunc(p_bucket, p_from), p_to - interval '1 microsecond', step) g;
    PERFORM set_config('TimeZone', old, true);
    RETURN n;
END $$;

-- The time series of metric (created, completed, transitions) in buckets of
-- p_bucket aligned in p_tz; NULL when the workflow is unknown.
CREATE OR REPLACE FUNCTION reporting.timeseries(p_workflow text, p_metric text, p_bucket text,
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
      FROM (SELECT DISTINCT date_trunc(p_bucket, g) AS b
              FROM generate_series(date_trunc(p_bucket, p_from), p_to - interval '1 microsecond',
                                   step) g) s;
    IF NOT coalesce(aligned, false) THEN
        sp.rs := p_to;
        sp.re := p_to;
    END IF;
    WITH b AS (
        SELECT DISTINCT date_trunc(p_bucket, g) AS start
          FROM generate_series(date_trunc(p_bucket, p_from), p_to - interval '1 microsecond',
                               step) g
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
