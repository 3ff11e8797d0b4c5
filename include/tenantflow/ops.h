/*
 * Operational endpoints: /healthz, /readyz.
 */
#ifndef TENANTFLOW_OPS_H
#define TENANTFLOW_OPS_H

#include <stdbool.h>

#include "tenantflow/http.h"

/* expected_schema: the highest migration this binary's files define. */
bool tf_ops_register(tf_router *r, tf_pool *pool, int expected_schema, char *err, size_t errsz)
    TF_MUST_CHECK;

#endif
