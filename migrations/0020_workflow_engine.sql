-- Workflow engine: what the list filters, the SLA timers and their indexes need.
--
-- timeout_transition is the on_timeout transition of the item's current state
-- (NULL when that state has none); it is rewritten on every state change, so
-- a pending timer is exactly "timeout_transition IS NOT NULL", and a timer for
-- a state the item has left no longer exists. open is false once the item is
-- in a terminal state.
ALTER TABLE workflow.items ADD COLUMN timeout_transition text;
ALTER TABLE workflow.items ADD COLUMN open boolean NOT NULL DEFAULT true;

-- Backfill rows written before this migration (FORCE RLS hides them from the
-- owner otherwise).
ALTER TABLE workflow.items NO FORCE ROW LEVEL SECURITY;
UPDATE workflow.items i
   SET timeout_transition = CASE WHEN i.due_at IS NULL THEN NULL ELSE s.value->>'on_timeout' END,
       open = NOT coalesce((s.value->>'terminal')::boolean, false)
  FROM workflow.definitions d, jsonb_array_elements(d.definition->'states') s
 WHERE d.tenant_id = i.tenant_id AND d.key = i.workflow_key AND d.version = i.workflow_version
   AND s.value->>'name' = i.state;
ALTER TABLE workflow.items FORCE ROW LEVEL SECURITY;

-- GET /v1/items, newest first on (created_at, id); each filter has its index:
--   no filter, created_after/before   items_created (0004)
--   workflow                           items_workflow
--   workflow + state                   items_list (0004)
--   state                              items_state
--   open=true                          items_open (partial: open items only)
--   attributes (containment @>)        items_attributes (GIN jsonb_path_ops)
--   q (lower(title) LIKE %q%)          items_title_trgm (GIN trigram, expression)
CREATE INDEX items_workflow ON workflow.items (tenant_id, workflow_key, created_at, id);
CREATE INDEX items_state ON workflow.items (tenant_id, state, created_at, id);
CREATE INDEX items_open ON workflow.items (tenant_id, created_at, id) WHERE open;
CREATE INDEX items_attributes ON workflow.items USING gin (attributes jsonb_path_ops);
CREATE INDEX items_title_trgm ON workflow.items USING gin (lower(title) gin_trgm_ops);

-- Pending timers only: the timer job's scans (global by due_at, then per tenant).
CREATE INDEX items_timers ON workflow.items (due_at, tenant_id)
    WHERE timeout_transition IS NOT NULL;

-- The timer job learns which tenants have due timers through this narrow
-- definer function (tenant ids only); it then locks and fires the items inside
-- each tenant's own RLS context.
CREATE POLICY definer_read ON workflow.items FOR SELECT TO tenantflow_owner USING (true);

CREATE FUNCTION workflow.tenants_with_due_timers(n integer) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
  SELECT DISTINCT d.tenant_id FROM (
    SELECT tenant_id FROM workflow.items
     WHERE timeout_transition IS NOT NULL AND due_at <= now()
     ORDER BY due_at LIMIT n) d
$$;
REVOKE ALL ON FUNCTION workflow.tenants_with_due_timers(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.tenants_with_due_timers(integer) TO tenantflow_app;
