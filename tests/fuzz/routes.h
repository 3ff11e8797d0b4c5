/*
 * The server's real route table for the targets that route requests
 * (fuzz_router, fuzz_request): every module registers its routes exactly as
 * `tenantflow routes` does, with no pool and no keys (no handler runs).
 */
#ifndef TENANTFLOW_FUZZ_ROUTES_H
#define TENANTFLOW_FUZZ_ROUTES_H

#include <stdio.h>
#include <stdlib.h>

#include "tenantflow/access.h"
#include "tenantflow/audit.h"
#include "tenantflow/docs.h"
#include "tenantflow/events.h"
#include "tenantflow/http.h"
#include "tenantflow/metrics.h"
#include "tenantflow/ops.h"
#include "tenantflow/reporting.h"
#include "tenantflow/tenancy.h"
#include "tenantflow/workflows.h"

/* The route table, built on first use and kept for the process. */
static inline tf_router *fuzz_routes(void)
{
    static tf_router *router;
    if (router)
        return router;
    router = tf_router_new();
    char err[256];
    if (!tf_ops_register(router, NULL, 0, err, sizeof err) ||
        !tf_docs_register(router, err, sizeof err) ||
        !tf_metrics_register(router, err, sizeof err) ||
        !tenancy_register(router, err, sizeof err) ||
        !access_register(router, NULL, 900, err, sizeof err) ||
        !workflows_register(router, err, sizeof err) || !audit_register(router, err, sizeof err) ||
        !events_register(router, err, sizeof err) ||
        !reporting_register(router, err, sizeof err)) {
        fprintf(stderr, "fuzz: cannot build the route table: %s\n", err);
        abort();
    }
    return router;
}

#endif
