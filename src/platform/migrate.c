/*
 * The migration runner (see migrate.h).
 *
 * Bookkeeping lives in platform.migrations, owned by the owner role and not
 * readable by the application role; /readyz asks platform.schema_version(),
 * a SECURITY DEFINER function, instead.
 */
#include "tenantflow/migrate.h"

#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_FILES = 512, MAX_FILE_BYTES = 4 * 1024 * 1024 };

struct file {
    int version;
    char name[256];
};

static int by_version(const void *a, const void *b)
{
    return ((const struct file *)a)->version - ((const struct file *)b)->version;
}

/* Lists NNNN_name.sql files sorted by version; duplicate versions are an error. */
static int list_files(const char *dir, struct file *files, char *err, size_t errsz)
{
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errsz, "cannot open migrations directory %s", dir);
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 10 || strcmp(e->d_name + len - 4, ".sql") != 0)
            continue;
        int v = 0;
        bool digits = true;
        for (int i = 0; i < 4; i++) {
            char c = e->d_name[i];
            digits = digits && c >= '0' && c <= '9';
            v = v * 10 + (c - '0');
        }
        if (!digits || e->d_name[4] != '_' || len >= sizeof files[0].name)
            continue;
        if (n == MAX_FILES) {
            snprintf(err, errsz, "too many migration files");
            closedir(d);
            return -1;
        }
        files[n].version = v;
        snprintf(files[n].name, sizeof files[n].name, "%s", e->d_name);
        n++;
    }
    closedir(d);
    qsort(files, (size_t)n, sizeof *files, by_version);
    for (int i = 1; i < n; i++) {
        if (files[i].version == files[i - 1].version) {
            snprintf(err, errsz, "two migrations share version %04d", files[i].version);
            return -1;
        }
    }
    return n;
}

int tf_migrate_latest(const char *dir, char *err, size_t errsz)
{
    static struct file files[MAX_FILES];
    int n = list_files(dir, files, err, errsz);
    if (n < 0)
        return -1;
    return n ? files[n - 1].version : 0;
}

static char *read_file(const char *dir, const char *name, size_t *len, char *err, size_t errsz)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "cannot read %s", path);
        return NULL;
    }
    char *buf = tf_xmalloc(MAX_FILE_BYTES + 1);
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    fclose(f);
    if (n > MAX_FILE_BYTES) {
        snprintf(err, errsz, "%s is larger than %d bytes", path, MAX_FILE_BYTES);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void checksum(const char *buf, size_t len, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)buf, len, NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof h);
}

static bool exec_ok(PGconn *c, const char *sql, char *err, size_t errsz)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errsz, "%s", PQerrorMessage(c));
    PQclear(r);
    return ok;
}

static const char *bookkeeping =
    "CREATE SCHEMA IF NOT EXISTS platform;"
    "CREATE TABLE IF NOT EXISTS platform.migrations ("
    "  version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
    "  applied_at timestamptz NOT NULL DEFAULT now());";

/* Applied checksum for version, or NULL (caller frees). */
static char *applied_checksum(PGconn *c, int version)
{
    char v[16];
    snprintf(v, sizeof v, "%d", version);
    const char *params[] = {v};
    PGresult *r = PQexecParams(c, "SELECT checksum FROM platform.migrations WHERE version = $1",
                               1, NULL, params, NULL, NULL, 0);
    char *sum = NULL;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        sum = tf_xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return sum;
}

static bool apply(PGconn *c, const char *dir, const struct file *f, char *err, size_t errsz)
{
    size_t len;
    char *sql = read_file(dir, f->name, &len, err, errsz);
    if (!sql)
        return false;
    if (strlen(sql) != len) {
        snprintf(err, errsz, "%s contains a NUL byte", f->name);
        free(sql);
        return false;
    }
    char sum[65];
    checksum(sql, len, sum);
    char *have = applied_checksum(c, f->version);
    bool ok = true;
    if (have) {
        if (strcmp(have, sum) != 0) {
            snprintf(err, errsz,
                     "%s was changed after it was applied (checksum %s, recorded %s); "
                     "add a new migration instead of editing an applied one",
                     f->name, sum, have);
            ok = false;
        }
        free(have);
        free(sql);
        return ok;
    }
    ok = exec_ok(c, "BEGIN", err, errsz) && exec_ok(c, sql, err, errsz);
    if (ok) {
        char v[16];
        snprintf(v, sizeof v, "%d", f->version);
        const char *params[] = {v, f->name, sum};
        PGresult *r = PQexecParams(
            c, "INSERT INTO platform.migrations (version, name, checksum) VALUES ($1, $2, $3)", 3,
            NULL, params, NULL, NULL, 0);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(err, errsz, "%s", PQerrorMessage(c));
        PQclear(r);
    }
    if (ok)
        ok = exec_ok(c, "COMMIT", err, errsz);
    if (!ok) {
        char why[512];
        snprintf(why, sizeof why, "%s", err);
        PQclear(PQexec(c, "ROLLBACK"));
        snprintf(err, errsz, "%s failed: %s", f->name, why);
    } else {
        printf("applied %s\n", f->name);
    }
    free(sql);
    return ok;
}

/* 'tenantflow.migrate' as a fixed lock key shared by every process. */
#define LOCK_SQL(fn) "SELECT " fn "(7415926535)"

bool tf_migrate_up(PGconn *c, const char *dir, char *err, size_t errsz)
{
    static struct file files[MAX_FILES];
    int n = list_files(dir, files, err, errsz);
    if (n < 0)
        return false;
    if (!exec_ok(c, "SET client_min_messages = warning", err, errsz) ||
        !exec_ok(c, LOCK_SQL("pg_advisory_lock"), err, errsz))
        return false;
    bool ok = exec_ok(c, bookkeeping, err, errsz);
    for (int i = 0; ok && i < n; i++)
        ok = apply(c, dir, &files[i], err, errsz);
    char ignore[256];
    (void)exec_ok(c, LOCK_SQL("pg_advisory_unlock"), ignore, sizeof ignore);
    return ok;
}

bool tf_migrate_status(PGconn *c, const char *dir, char *err, size_t errsz)
{
    static struct file files[MAX_FILES];
    int n = list_files(dir, files, err, errsz);
    if (n < 0 || !exec_ok(c, "SET client_min_messages = warning", err, errsz) ||
        !exec_ok(c, bookkeeping, err, errsz))
        return false;
    bool clean = true;
    for (int i = 0; i < n; i++) {
        size_t len;
        char *sql = read_file(dir, files[i].name, &len, err, errsz);
        if (!sql)
            return false;
        char sum[65];
        checksum(sql, len, sum);
        free(sql);
        char *have = applied_checksum(c, files[i].version);
        const char *state = !have ? "pending" : strcmp(have, sum) == 0 ? "applied" : "CHANGED";
        clean = clean && (!have || strcmp(have, sum) == 0);
        printf("%-8s %s\n", state, files[i].name);
        free(have);
    }
    if (!clean)
        snprintf(err, errsz, "an applied migration was changed");
    return clean;
}
