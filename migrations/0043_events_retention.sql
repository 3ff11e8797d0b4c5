-- Retention of the event feed and webhook history. events.purge(days), run by
-- a background job, deletes what is older than the retention and no longer
-- needed: delivery attempts, finished messages, and events that the webhook
-- fan-out has passed and that no pending message still refers to. The feed
-- then starts at the oldest retained event.
CREATE POLICY background ON events.attempts TO tenantflow_owner USING (true) WITH CHECK (true);
CREATE INDEX attempts_age ON events.attempts (at);
CREATE INDEX outbox_age ON events.outbox (occurred_at) WHERE position IS NOT NULL;

CREATE FUNCTION events.purge(p_days integer) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cutoff timestamptz := now() - make_interval(days => greatest(p_days, 1));
    fanned_out bigint;
    n bigint := 0;
    c bigint;
BEGIN
    SELECT last_position INTO fanned_out FROM events.dispatch_state;
    DELETE FROM events.attempts WHERE at < cutoff;
    GET DIAGNOSTICS c = ROW_COUNT;
    n := n + c;
    DELETE FROM events.messages WHERE status <> 'pending' AND next_attempt_at < cutoff;
    GET DIAGNOSTICS c = ROW_COUNT;
    n := n + c;
    DELETE FROM events.outbox o
     WHERE o.position IS NOT NULL AND o.position <= fanned_out AND o.occurred_at < cutoff
       AND NOT EXISTS (SELECT 1 FROM events.messages m
                        WHERE m.event_id = o.id AND m.status = 'pending');
    GET DIAGNOSTICS c = ROW_COUNT;
    RETURN n + c;
END $$;
REVOKE ALL ON FUNCTION events.purge(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION events.purge(integer) TO tenantflow_app;
