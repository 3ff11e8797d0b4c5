-- The audit sealer and the event sequencer read only what is new.
--
-- Measured under load (make bench, about a million audit records and events):
-- each sealer round scanned every audit record ever written, because its
-- watermark was a join filter rather than an index bound (0.6-2.9 s per
-- round, growing with the table); each sequencer round walked the dead
-- entries that numbering leaves in the partial index of unnumbered events
-- until VACUUM removed them (about 5 ms per round, a hundred rounds a
-- second). Together they took more than one of two CPU cores from the
-- requests.

-- Sealer: the watermark comes from scalar subqueries, which PostgreSQL turns
-- into an index condition on records_seal_order.
CREATE OR REPLACE FUNCTION audit.pending(p_limit integer)
RETURNS TABLE (tenant_id uuid, id uuid, xid xid8, occurred_at text, actor_type text,
               actor_id text, action text, resource_type text, resource_id text,
               request_id text, client_ip text, changes text, head_seq bigint, head_hash bytea)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.tenant_id, r.id, r.xid, platform.rfc3339(r.occurred_at), r.actor_type, r.actor_id,
           r.action, r.resource_type, r.resource_id, r.request_id, r.client_ip, r.changes::text,
           h.seq, h.hash
      FROM audit.records r
      LEFT JOIN audit.chain_heads h ON h.tenant_id = r.tenant_id
     WHERE (r.xid, r.id) > ((SELECT s.last_xid FROM audit.sealer_state s),
                            (SELECT s.last_id FROM audit.sealer_state s))
       AND r.xid < pg_snapshot_xmin(pg_current_snapshot())
     ORDER BY r.xid, r.id
     LIMIT p_limit
$$;

-- The primary key (tenant_id, id) already serves "newest first" by scanning
-- backwards; this copy only cost every audit insert one more index entry.
DROP INDEX audit.records_by_id;

-- Sequencer: every event remembers its transaction, and the sequencer the
-- oldest transaction that may still add events (low_xid). A round reads only
-- unnumbered events at or above low_xid, so the scan starts past the dead
-- index entries of everything numbered before.
ALTER TABLE events.outbox ADD COLUMN xid xid8;
UPDATE events.outbox SET xid = '0' WHERE position IS NULL;
ALTER TABLE events.outbox ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
DROP INDEX events.outbox_unnumbered;
CREATE INDEX outbox_unnumbered ON events.outbox (xid) WHERE position IS NULL;

ALTER TABLE events.sequencer_state ADD COLUMN low_xid xid8 NOT NULL DEFAULT '0';

-- As before (0041), numbers the committed events nobody numbered yet, in the
-- order of their ids, after every position handed out before. Then, when the
-- round took everything it could see, moves low_xid up to the oldest
-- transaction still running: every transaction below it had ended before the
-- numbering statement took its snapshot, so all of its events were numbered,
-- and any transaction that writes an event later gets a transaction id at or
-- above it.
CREATE OR REPLACE FUNCTION events.assign_positions(p_limit integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE base bigint; low xid8; horizon xid8; n integer;
BEGIN
    SELECT last_position, low_xid INTO base, low FROM events.sequencer_state FOR UPDATE;
    horizon := pg_snapshot_xmin(pg_current_snapshot());
    WITH pick AS (
        SELECT o.tenant_id, o.id, row_number() OVER (ORDER BY o.id) AS rn
          FROM events.outbox o WHERE o.position IS NULL AND o.xid >= low
         ORDER BY o.id LIMIT p_limit)
    UPDATE events.outbox o SET position = base + pick.rn
      FROM pick WHERE o.tenant_id = pick.tenant_id AND o.id = pick.id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        UPDATE events.sequencer_state SET last_position = base + n;
        PERFORM pg_notify('tenantflow_events', 'sequenced');
    END IF;
    IF n < p_limit AND horizon > low THEN
        UPDATE events.sequencer_state SET low_xid = horizon;
    END IF;
    RETURN n;
END $$;
