/*
 * What the files of the audit module share: the canonical encoding of a
 * record and its chain hash (audit.c), used by the sealer and by verify.
 */
#ifndef TF_AUDIT_INTERNAL_H
#define TF_AUDIT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/audit.h"

enum { AUDIT_NFIELDS = 11, AUDIT_HASH_BYTES = 32 };

/* The record's fields in canonical order, as text exactly as PostgreSQL
 * renders them (see AUDIT_CANON_COLUMNS); NULL for SQL NULL:
 * tenant_id, id, occurred_at (RFC 3339, microseconds, Z), actor_type,
 * actor_id, action, resource_type, resource_id, request_id, client_ip,
 * changes (jsonb text, which PostgreSQL prints in one normal form). */
#define AUDIT_CANON_COLUMNS                                                                   \
    "r.tenant_id::text, r.id::text, platform.rfc3339(r.occurred_at), r.actor_type,"          \
    " r.actor_id, r.action, r.resource_type, r.resource_id, r.request_id, r.client_ip,"      \
    " r.changes::text"

/* hash = BLAKE2b-256( "tenantflow-audit-v1" || prev (32 bytes, zeros for the
 * first record) || seq (8 bytes big-endian) || for each field in order:
 * length (4 bytes big-endian, 0xFFFFFFFF for NULL) || bytes ). */
void audit_chain_hash(const unsigned char prev[AUDIT_HASH_BYTES], long long seq,
                      const char *const fields[AUDIT_NFIELDS],
                      unsigned char out[AUDIT_HASH_BYTES]);

void audit_list(tf_req *req);
void audit_verify(tf_req *req);

#endif
