/*
 * Start-up refusal: the server will not serve through a database role that
 * could see past Row-Level Security, or against a schema where some tenant
 * table is not protected by it. Each rule is one query; any row it returns is
 * a reason to stop, named in the message. Partitions are checked like any
 * table: a query may name a partition directly, and then only the
 * partition's own policies apply.
 */
#include <stdio.h>
#include <string.h>

#include "tenantflow/safety.h"

static const struct {
    const char *why;
    const char *sql;
} rules[] = {
    {"the database role is a superuser or has BYPASSRLS",
     "SELECT rolname FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolbypassrls)"},
    {"the database role owns tables (owners bypass RLS unless forced; use a separate owner role)",
     "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relowner = "
     "(SELECT oid FROM pg_roles WHERE rolname = current_user) AND c.relkind IN ('r','p','v','m')"},
    {"a table in a tenant schema lacks forced row-level security or a policy",
     "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
     " WHERE n.nspname IN ('tenancy','access','workflow','audit','events','reporting','idem')"
     " AND c.relkind IN ('r','p')"
     " AND (NOT c.relrowsecurity OR NOT c.relforcerowsecurity"
     "      OR NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid))"},
    {"a view in a tenant schema lacks security_invoker",
     "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
     " WHERE n.nspname IN ('tenancy','access','workflow','audit','events','reporting','idem')"
     " AND c.relkind = 'v' AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)"
     " AND NOT coalesce('security_invoker=on' = ANY (c.reloptions), false)"},
};

bool tf_db_check_safety(PGconn *conn, char *err, size_t errsz)
{
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++) {
        PGresult *r = PQexec(conn, rules[i].sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            snprintf(err, errsz, "safety check failed: %s", PQerrorMessage(conn));
            PQclear(r);
            return false;
        }
        if (PQntuples(r) > 0) {
            snprintf(err, errsz, "refusing to serve: %s (%s)", rules[i].why, PQgetvalue(r, 0, 0));
            PQclear(r);
            return false;
        }
        PQclear(r);
    }
    return true;
}
