/*
 * Tenancy module: tenants and platform operators.
 */
#ifndef TENANTFLOW_TENANCY_H
#define TENANTFLOW_TENANCY_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "tenantflow/db.h"
#include "tenantflow/http.h"

typedef struct tenancy_tenant {
    char id[37];
    char slug[64];
    char status[16]; /* "active" | "suspended" */
    char name[808];  /* up to 200 code points; empty from tenancy_by_slug */
} tenancy_tenant;

/* Registers the operator routes and the operator credential resolver. */
bool tenancy_register(tf_router *r, char *err, size_t errsz) TF_MUST_CHECK;

/* The tenant of the transaction (by its app.tenant_id), or false with a 401
 * problem when it does not exist. */
bool tenancy_current(tf_tx *tx, tenancy_tenant *out, tf_problem *p) TF_MUST_CHECK;
/* The statement tenancy_current() runs (no parameters), for callers that
 * prefetch it with BEGIN. */
tf_stmt *tenancy_current_stmt(void);
/* Looks a tenant up by slug across tenants (login). False when unknown,
 * without setting p unless the database failed. */
bool tenancy_by_slug(tf_tx *tx, const char *slug, tenancy_tenant *out, tf_problem *p)
    TF_MUST_CHECK;

/* Creates an operator and prints its token once; conn is the owner role. */
bool tenancy_operator_create(PGconn *conn, const char *name, char *err, size_t errsz)
    TF_MUST_CHECK;

#endif
