-- Figures for /metrics, across tenants, through one narrow definer function:
-- events waiting for a feed position and webhook messages waiting to go out.
CREATE FUNCTION events.metrics(OUT unsequenced bigint, OUT sequencer_lag_seconds double precision,
                               OUT pending_messages bigint,
                               OUT delivery_lag_seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT (SELECT count(*) FROM events.outbox WHERE position IS NULL),
         coalesce(extract(epoch FROM now() - (SELECT occurred_at FROM events.outbox
                                               WHERE position IS NULL ORDER BY id LIMIT 1)), 0),
         (SELECT count(*) FROM events.messages WHERE status = 'pending'),
         coalesce(extract(epoch FROM now() - (SELECT next_attempt_at FROM events.messages
                                               WHERE status = 'pending' AND next_attempt_at <= now()
                                               ORDER BY next_attempt_at LIMIT 1)), 0)
$$;
REVOKE ALL ON FUNCTION events.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION events.metrics() TO tenantflow_app;
