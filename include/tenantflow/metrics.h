/*
 * Process metrics in the Prometheus text format 0.0.4, served at GET /metrics.
 *
 * Any module may register its own series at start-up (before the server
 * starts): counters, gauges, and callback gauges whose value is computed when
 * a scrape happens (for example an age read from the database). A series name
 * may carry a fixed label set, `tf_webhook_failures_total{reason="timeout"}`;
 * the HELP and TYPE lines are written once per family (the part before '{').
 * Names follow Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]*, counters end in _total.
 *
 * Ownership: handles live until the process exits; registering the same
 * name twice returns the same handle. Updating a counter or gauge is
 * thread-safe and lock-free.
 */
#ifndef TENANTFLOW_METRICS_H
#define TENANTFLOW_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tenantflow/http.h"

typedef struct tf_metric tf_metric;

/* A monotonically increasing count. Aborts on a malformed name (a
 * programming error caught at start-up). */
tf_metric *tf_metrics_counter(const char *name, const char *help);
void tf_metrics_inc(tf_metric *counter, uint64_t n);

/* A value that goes up and down. */
tf_metric *tf_metrics_gauge(const char *name, const char *help);
void tf_metrics_set(tf_metric *gauge, double value);

/* A gauge computed at scrape time. fn returns false to leave the sample out
 * of this scrape (say, the database is unreachable): a missing sample is
 * honest, a made-up zero is not. fn runs on an HTTP worker thread. */
typedef bool (*tf_metrics_fn)(void *arg, double *value);
void tf_metrics_gauge_fn(const char *name, const char *help, tf_metrics_fn fn, void *arg);

/* The HTTP layer reports every finished request: route is the matched
 * template ("/v1/items/{id}") or NULL when no route matched. */
void tf_metrics_observe_request(const char *method, const char *route, int status,
                                double seconds);

/* The whole exposition (malloc'd, caller frees). */
char *tf_metrics_render(size_t *len);

/* GET /metrics on an address of its own (TENANTFLOW_METRICS_LISTEN), plain
 * HTTP and nothing else served there; NULL with err set when it cannot
 * listen. Stopping NULL does nothing. */
typedef struct tf_metrics_listener tf_metrics_listener;
tf_metrics_listener *tf_metrics_listen(const char *host, int port, char *err, size_t errsz);
void tf_metrics_listener_stop(tf_metrics_listener *l);

/* Adds GET /metrics (public, like /healthz). */
bool tf_metrics_register(tf_router *r, char *err, size_t errsz) TF_MUST_CHECK;

#endif
