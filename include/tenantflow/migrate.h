/*
 * Schema migrations: migrations/NNNN_name.sql applied in order, each once, in
 * its own transaction, under a session advisory lock so two processes never
 * migrate at once. Each applied file's BLAKE2b checksum is recorded; a file
 * changed after it was applied stops the run.
 */
#ifndef TENANTFLOW_MIGRATE_H
#define TENANTFLOW_MIGRATE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/alloc.h"

/* Highest version among the files in dir, or -1 with err. */
int tf_migrate_latest(const char *dir, char *err, size_t errsz);
/* Applies pending files; prints one line per file to out. */
bool tf_migrate_up(PGconn *conn, const char *dir, char *err, size_t errsz) TF_MUST_CHECK;
/* Prints applied / pending / changed for every file. */
bool tf_migrate_status(PGconn *conn, const char *dir, char *err, size_t errsz) TF_MUST_CHECK;

#endif
