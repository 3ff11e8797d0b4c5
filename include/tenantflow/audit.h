/*
 * Audit module: the append-only, tamper-evident trail of every change.
 *
 * Every module records its changes through audit_record(), with the same
 * transaction handle as the change itself, so the change and its record
 * commit or roll back together: if the record cannot be written, the change
 * fails. Never put secrets (passwords, key or webhook secrets, tokens) into
 * before/after.
 *
 * Records are sealed into a per-tenant hash chain shortly after they commit,
 * by a background job (audit_jobs_add); see src/modules/audit/sealer.c.
 */
#ifndef TENANTFLOW_AUDIT_H
#define TENANTFLOW_AUDIT_H

#include <jansson.h>
#include <stdbool.h>

#include "tenantflow/auth.h"
#include "tenantflow/db.h"
#include "tenantflow/http.h"
#include "tenantflow/jobs.h"

typedef struct audit_entry {
    const char *action;        /* "<resource>.<verb>", e.g. "item.transitioned" */
    const char *resource_type; /* the part before the dot, e.g. "item" */
    const char *resource_id;   /* id, or the key for workflows */
    const json_t *before;      /* borrowed; fields that changed, old values; may be NULL */
    const json_t *after;       /* borrowed; the same fields, new values; may be NULL */
} audit_entry;

/* Adds field to before (old_value) and after (new_value) when new_value is
 * given and differs: the "fields that changed" of an audit record. Returns
 * whether it did. */
bool audit_changed(json_t *before, json_t *after, const char *field, const char *old_value,
                   const char *new_value);

/* Writes one record in tx for the tenant tx is bound to. False with p set
 * when it cannot be written (the caller's change must then fail too). */
bool audit_record(tf_tx *tx, const tf_origin *origin, const audit_entry *e, tf_problem *p)
    TF_MUST_CHECK;

bool audit_register(tf_router *r, char *err, size_t errsz) TF_MUST_CHECK;

/* Adds the sealer job ("audit.sealer"); call before tf_jobs_start. */
void audit_jobs_add(tf_jobs *jobs);

#endif
