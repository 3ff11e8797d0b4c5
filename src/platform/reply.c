/*
 * List responses assembled from JSON text that PostgreSQL already rendered:
 * the rows are copied side by side instead of being parsed into jansson and
 * printed again, which is most of a list request's CPU otherwise.
 */
#include <stdlib.h>
#include <string.h>

#include "tenantflow/cursor.h"
#include "tenantflow/http.h"

void tf_reply_list(tf_req *req, const PGresult *r, int col, int count, const char *next_cursor)
{
    static const char head[] = "{\"data\":[", mid[] = "],\"next_cursor\":";
    size_t len = sizeof head + sizeof mid + 8 + (next_cursor ? strlen(next_cursor) : 0);
    for (int i = 0; i < count; i++)
        len += (size_t)PQgetlength(r, i, col) + 1;
    char *buf = tf_arena_alloc(tf_req_arena(req), len);
    size_t n = 0;
    memcpy(buf, head, sizeof head - 1);
    n += sizeof head - 1;
    for (int i = 0; i < count; i++) {
        if (i)
            buf[n++] = ',';
        size_t l = (size_t)PQgetlength(r, i, col);
        memcpy(buf + n, PQgetvalue(r, i, col), l);
        n += l;
    }
    memcpy(buf + n, mid, sizeof mid - 1);
    n += sizeof mid - 1;
    if (next_cursor) {
        /* Cursors are base64url: nothing in them needs escaping. */
        buf[n++] = '"';
        size_t l = strlen(next_cursor);
        memcpy(buf + n, next_cursor, l);
        n += l;
        buf[n++] = '"';
    } else {
        memcpy(buf + n, "null", 4);
        n += 4;
    }
    buf[n++] = '}';
    tf_reply_text(req, 200, "application/json; charset=utf-8", buf, n);
}

void tf_reply_page(tf_req *req, const PGresult *r, int json_col, int limit, const char *scope,
                   const char *cursor_member, int key_col)
{
    int n = PQntuples(r);
    char *next = NULL;
    if (n > limit) {
        json_t *c = json_pack("{s:s}", cursor_member, tf_val(r, limit - 1, key_col));
        next = tf_cursor_encode(scope, c);
        json_decref(c);
    }
    tf_reply_list(req, r, json_col, n < limit ? n : limit, next);
    free(next);
}
