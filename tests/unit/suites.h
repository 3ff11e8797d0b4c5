/* Every Check suite of the unit tests; tests/unit/main.c runs them all. */
#ifndef TENANTFLOW_TEST_SUITES_H
#define TENANTFLOW_TEST_SUITES_H

#include <check.h>

#define TF_UNIT_SUITES(X) \
    X(alloc)              \
    X(problem)            \
    X(json)               \
    X(crypto)             \
    X(token)              \
    X(router)             \
    X(tokencache)         \
    X(reporting)          \
    X(audit_events)       \
    X(ops)                \
    X(idem)               \
    X(access)             \
    X(workflows)

#define TF_DECLARE_SUITE(name) Suite *name##_suite(void);
TF_UNIT_SUITES(TF_DECLARE_SUITE)
/* Transactions against a real PostgreSQL; main.c runs it when
 * TENANTFLOW_DATABASE_URL is set. */
Suite *db_suite(void);

/* Directory of ../shared/testdata, from TF_TESTDATA or the default. */
const char *tf_test_testdata(void);

#endif
