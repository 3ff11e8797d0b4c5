/*
 * Structured logging: one JSON object per line on stderr, so journald and
 * log shippers can parse it. Thread-safe (one write per line).
 */
#ifndef TENANTFLOW_LOG_H
#define TENANTFLOW_LOG_H

#include <jansson.h>
#include <stdbool.h>

#include "tenantflow/alloc.h"

typedef enum { TF_LOG_DEBUG, TF_LOG_INFO, TF_LOG_WARN, TF_LOG_ERROR } tf_log_level;

void tf_log_set_level(tf_log_level level);
/* Whether a line at level would be written (to skip building one that would not). */
bool tf_log_enabled(tf_log_level level);
/* Logs {"ts","level","msg"} plus the members of fields (stolen, may be NULL). */
void tf_log_json(tf_log_level level, const char *msg, json_t *fields);
void tf_log(tf_log_level level, const char *fmt, ...) TF_PRINTF(2, 3);

#endif
