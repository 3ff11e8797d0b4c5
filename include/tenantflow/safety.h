/*
 * Checks made before serving: the application role must not be able to see
 * past Row-Level Security, and every tenant table must be protected by it.
 */
#ifndef TENANTFLOW_SAFETY_H
#define TENANTFLOW_SAFETY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/alloc.h"

/* False with a message naming the rule and the object when one is broken. */
bool tf_db_check_safety(PGconn *conn, char *err, size_t errsz) TF_MUST_CHECK;

#endif
