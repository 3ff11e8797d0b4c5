/*
 * Reporting module: KPI summaries and time series per workflow, computed from
 * facts it records itself from domain events (item.created,
 * item.transitioned, workflow.published), never from workflow tables.
 *
 * reporting_subscribe() hooks the module into events_publish(), so its facts
 * commit in the same transaction as the change they describe. The two jobs
 * keep storage in shape: month partitions created ahead, and closed hours
 * folded into rollups.
 */
#ifndef TENANTFLOW_REPORTING_H
#define TENANTFLOW_REPORTING_H

#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/http.h"
#include "tenantflow/jobs.h"

bool reporting_register(tf_router *r, char *err, size_t errsz) TF_MUST_CHECK;
/* Subscribes to domain events; call once at start-up, before serving. */
void reporting_subscribe(void);

/* Background jobs for tf_jobs_add (static, never freed). */
extern const tf_job reporting_partition_job; /* month partitions ahead */
extern const tf_job reporting_rollup_job;    /* folds closed hours into rollups */

/* CSV cell encoding (RFC 4180, with spreadsheet formula neutralisation):
 * appends the cell for value (NULL: empty cell) to buf. Exposed for tests. */
typedef struct reporting_buf {
    char *data; /* owned, NUL-terminated; free() it */
    size_t len, cap;
} reporting_buf;
void reporting_csv_cell(reporting_buf *b, const char *value);
void reporting_buf_append(reporting_buf *b, const char *s, size_t n);

#endif
