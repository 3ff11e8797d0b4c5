/*
 * Gauges read from the database: one statement returns one row of numbers,
 * one gauge per column. tf_dbgauge_job refreshes them every two seconds in
 * the background; a scrape reads the cached row and never waits for the
 * database.
 */
#ifndef TENANTFLOW_DBGAUGE_H
#define TENANTFLOW_DBGAUGE_H

#include "tenantflow/db.h"
#include "tenantflow/jobs.h"

typedef struct tf_dbgauge_column {
    const char *name; /* metric name */
    const char *help;
} tf_dbgauge_column;

/* Registers one gauge per column of stmt's single result row. stmt and
 * columns must be static. */
void tf_dbgauge_add(tf_pool *pool, tf_stmt *stmt, const tf_dbgauge_column *columns,
                    int ncolumns);

/* The refresh job; add it to the server's jobs once, after the sources. */
extern const tf_job tf_dbgauge_job;

#endif
