-- Messages of a webhook that was deleted, or disabled by a 410, were left
-- pending: nothing delivers them, the pending gauge never fell, the delivery
-- lag grew without end and the purge kept their events forever. From now on
-- the delete and the disable fail them in the same statement; this fails
-- those already left behind.
UPDATE events.messages m SET status = 'failed'
  FROM events.webhooks w
 WHERE w.tenant_id = m.tenant_id AND w.id = m.webhook_id
   AND w.status <> 'active' AND m.status = 'pending';
