-- Pending SLA timers for /metrics, across tenants (counts only), served by the
-- partial index on pending timers.
CREATE FUNCTION workflow.timer_metrics(OUT pending bigint, OUT due bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT count(*), count(*) FILTER (WHERE due_at <= now())
  FROM workflow.items WHERE timeout_transition IS NOT NULL
$$;
REVOKE ALL ON FUNCTION workflow.timer_metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.timer_metrics() TO tenantflow_app;
