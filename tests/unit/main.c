/*
 * Runs every Check suite (see suites.h) in one runner. The last line Check
 * prints ("100%: Checks: N, Failures: F, Errors: E") is what scripts/test.sh
 * reads to count unit results.
 */
#include <stdio.h>
#include <stdlib.h>

#include "suites.h"

const char *tf_test_testdata(void)
{
    const char *d = getenv("TF_TESTDATA");
    return d && *d ? d : "../shared/testdata";
}

int main(void)
{
    SRunner *sr = srunner_create(NULL);
#define TF_ADD_SUITE(name) srunner_add_suite(sr, name##_suite());
    TF_UNIT_SUITES(TF_ADD_SUITE)
    /* Needs the PostgreSQL that make test starts; said aloud when absent. */
    const char *db = getenv("TENANTFLOW_DATABASE_URL");
    if (db && *db)
        srunner_add_suite(sr, db_suite());
    else
        fprintf(stderr, "db suite not run: TENANTFLOW_DATABASE_URL is not set (make test sets it)\n");
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
