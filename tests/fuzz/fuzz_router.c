/*
 * Fuzz target: request path matching, tf_router_match, against the real
 * route table. The path is (pointer, length) and not NUL-terminated, so the
 * target passes exactly the input bytes; the first line of the input is the
 * method (the rest is the path), so methods other than the five the table
 * uses are tried too.
 *
 * Properties: a match names a route of that method whose template has one
 * segment per path segment, literal segments equal and every {param} value
 * the non-empty, slash-free path segment it stands for; NO_METHOD lists at
 * least one other method in Allow.
 */
#include <string.h>

#include "fuzz.h"
#include "routes.h"

/* The n-th segment of a "/a/b" path or template: start and length. */
static bool segment(const char *s, size_t len, size_t n, const char **seg, size_t *seglen)
{
    if (len <= 1)
        return false; /* "/" has no segments */
    size_t i = 1, k = 0;
    while (i <= len) {
        size_t start = i;
        while (i < len && s[i] != '/')
            i++;
        if (k++ == n) {
            *seg = s + start;
            *seglen = i - start;
            return true;
        }
        i++;
    }
    return false;
}

static void check_match(const tf_match *m, const char *method, const char *path, size_t len)
{
    const tf_route *r = m->route;
    FUZZ_ASSERT(r && strcmp(r->method, method) == 0);
    size_t tlen = strlen(r->path), p = 0;
    const char *ts, *ps;
    size_t tn, pn;
    size_t i = 0;
    for (; segment(r->path, tlen, i, &ts, &tn); i++) {
        FUZZ_ASSERT(segment(path, len, i, &ps, &pn) && pn > 0 && !memchr(ps, '/', pn));
        if (ts[0] == '{') {
            FUZZ_ASSERT(p < m->nparams && strlen(m->values[p]) == pn &&
                        memcmp(m->values[p], ps, pn) == 0 &&
                        strlen(m->names[p]) == tn - 2 &&
                        memcmp(m->names[p], ts + 1, tn - 2) == 0);
            p++;
        } else {
            FUZZ_ASSERT(tn == pn && memcmp(ts, ps, pn) == 0);
        }
    }
    FUZZ_ASSERT(!segment(path, len, i, &ps, &pn) && p == m->nparams);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_router *router = fuzz_routes();
    const uint8_t *nl = memchr(data, '\n', size);
    size_t mlen = nl ? (size_t)(nl - data) : 0;
    char *method = fuzz_cstr(data, mlen);
    size_t off = nl ? mlen + 1 : 0;
    if (!nl) {
        free(method);
        method = tf_xstrdup("GET");
    }
    char *path = fuzz_exact(data + off, size - off);
    tf_match m;
    switch (tf_router_match(router, method, path, size - off, &m)) {
    case TF_MATCH_OK:
        check_match(&m, method, path, size - off);
        break;
    case TF_MATCH_NO_METHOD:
        FUZZ_ASSERT(m.allow[0] != '\0');
        break;
    case TF_MATCH_NO_PATH:
        break;
    }
    free(path);
    free(method);
    return 0;
}
