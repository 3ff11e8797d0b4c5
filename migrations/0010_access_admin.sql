-- Access: serve the "who holds this role" lookups (the last-admin rule and
-- the cascade when a role is deleted) from an index instead of a scan.
CREATE INDEX user_roles_by_role ON access.user_roles (tenant_id, role_id);
