/*
 * Gauges read from the database at scrape time: one statement returns one
 * row of numbers, fetched at most once a second however many of its columns
 * are exported, so a scrape costs one query per source.
 */
#ifndef TENANTFLOW_DBGAUGE_H
#define TENANTFLOW_DBGAUGE_H

#include "tenantflow/db.h"

typedef struct tf_dbgauge_column {
    const char *name; /* metric name */
    const char *help;
} tf_dbgauge_column;

/* Registers one gauge per column of stmt's single result row. stmt and
 * columns must be static. */
void tf_dbgauge_add(tf_pool *pool, tf_stmt *stmt, const tf_dbgauge_column *columns,
                    int ncolumns);

#endif
