/*
 * Workflows module: state-machine definitions, items and transitions.
 */
#ifndef TENANTFLOW_WORKFLOWS_H
#define TENANTFLOW_WORKFLOWS_H

#include <stdbool.h>

#include "tenantflow/http.h"

bool workflows_register(tf_router *r, char *err, size_t errsz) TF_MUST_CHECK;

#endif
