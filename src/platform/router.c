/*
 * Route table and matching on method and path templates.
 *
 * Templates are split into segments once at registration; a "{name}" segment
 * matches any one non-empty segment. Matching walks the table linearly: with
 * a few dozen routes this beats any cleverer structure and stays obvious.
 * A path that matches some template but not the method yields 405 with the
 * methods that would have matched, in table order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenantflow/http.h"

enum { MAX_SEGMENTS = 8 };

struct entry {
    const tf_route *route;
    size_t nseg;
    const char *seg[MAX_SEGMENTS]; /* into segbuf */
    size_t seglen[MAX_SEGMENTS];
    bool is_param[MAX_SEGMENTS];
    char *segbuf;
};

struct tf_router {
    struct entry *entries;
    size_t n, cap;
};

tf_router *tf_router_new(void)
{
    return tf_xcalloc(1, sizeof(tf_router));
}

void tf_router_free(tf_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->entries[i].segbuf);
    free(r->entries);
    free(r);
}

static bool known_method(const char *m)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (strcmp(m, methods[i]) == 0)
            return true;
    return false;
}

static bool parse_template(struct entry *e, const char *path, char *err, size_t errsz)
{
    if (path[0] != '/') {
        snprintf(err, errsz, "route %s must start with /", path);
        return false;
    }
    e->segbuf = tf_xstrdup(path + 1);
    e->nseg = 0;
    char *save = NULL;
    for (char *s = strtok_r(e->segbuf, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (e->nseg == MAX_SEGMENTS) {
            snprintf(err, errsz, "route %s has too many segments", path);
            return false;
        }
        size_t len = strlen(s);
        bool param = len > 2 && s[0] == '{' && s[len - 1] == '}';
        if (!param && (strchr(s, '{') || strchr(s, '}'))) {
            snprintf(err, errsz, "route %s has a malformed parameter", path);
            return false;
        }
        if (param) {
            s[len - 1] = '\0';
            s++;
            len -= 2;
        }
        e->seg[e->nseg] = s;
        e->seglen[e->nseg] = len;
        e->is_param[e->nseg] = param;
        e->nseg++;
    }
    return true;
}

static bool same_shape(const struct entry *a, const struct entry *b)
{
    if (a->nseg != b->nseg)
        return false;
    for (size_t i = 0; i < a->nseg; i++) {
        if (a->is_param[i] != b->is_param[i])
            return false;
        if (!a->is_param[i] && strcmp(a->seg[i], b->seg[i]) != 0)
            return false;
    }
    return true;
}

bool tf_router_add(tf_router *r, const tf_route *route, char *err, size_t errsz)
{
    if (!route->method || !known_method(route->method)) {
        snprintf(err, errsz, "route %s: unknown method", route->path ? route->path : "?");
        return false;
    }
    if (!route->path || !route->handler) {
        snprintf(err, errsz, "route %s %s: missing path or handler", route->method,
                 route->path ? route->path : "?");
        return false;
    }
    if (!route->permission || !route->permission[0]) {
        snprintf(err, errsz, "route %s %s declares no permission", route->method, route->path);
        return false;
    }
    struct entry e = {.route = route};
    if (!parse_template(&e, route->path, err, errsz)) {
        free(e.segbuf);
        return false;
    }
    size_t params = 0;
    for (size_t i = 0; i < e.nseg; i++)
        params += e.is_param[i];
    if (params > TF_MAX_PARAMS) {
        snprintf(err, errsz, "route %s has too many parameters", route->path);
        free(e.segbuf);
        return false;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (same_shape(&r->entries[i], &e) &&
            strcmp(r->entries[i].route->method, route->method) == 0) {
            snprintf(err, errsz, "route %s %s registered twice", route->method, route->path);
            free(e.segbuf);
            return false;
        }
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 32;
        r->entries = tf_xrealloc(r->entries, r->cap * sizeof *r->entries);
    }
    r->entries[r->n++] = e;
    return true;
}

bool tf_router_add_all(tf_router *r, const tf_route *routes, size_t n, char *err, size_t errsz)
{
    for (size_t i = 0; i < n; i++)
        if (!tf_router_add(r, &routes[i], err, errsz))
            return false;
    return true;
}

size_t tf_router_count(const tf_router *r)
{
    return r->n;
}

const tf_route *tf_router_at(const tf_router *r, size_t i)
{
    return i < r->n ? r->entries[i].route : NULL;
}

/* Splits path into segments; empty segments ("//", trailing "/") never match,
 * and neither does a NUL byte anywhere: a {param} value is handed out as a C
 * string, which would silently end at it. */
static bool split(const char *path, size_t len, const char **seg, size_t *seglen, size_t *nseg)
{
    if (len == 0 || path[0] != '/' || memchr(path, '\0', len))
        return false;
    *nseg = 0;
    if (len == 1)
        return true; /* "/" has no segments */
    size_t start = 1;
    for (size_t i = 1; i <= len; i++) {
        if (i == len || path[i] == '/') {
            if (i == start || *nseg == MAX_SEGMENTS)
                return false;
            seg[*nseg] = path + start;
            seglen[*nseg] = i - start;
            (*nseg)++;
            start = i + 1;
        }
    }
    return true;
}

static bool match_entry(const struct entry *e, const char **seg, const size_t *seglen,
                        size_t nseg)
{
    if (e->nseg != nseg)
        return false;
    for (size_t i = 0; i < nseg; i++) {
        if (e->is_param[i])
            continue;
        if (e->seglen[i] != seglen[i] || memcmp(e->seg[i], seg[i], seglen[i]) != 0)
            return false;
    }
    return true;
}

tf_match_result tf_router_match(const tf_router *r, const char *method, const char *path,
                                size_t len, tf_match *m)
{
    memset(m, 0, sizeof *m);
    const char *seg[MAX_SEGMENTS];
    size_t seglen[MAX_SEGMENTS], nseg;
    if (!split(path, len, seg, seglen, &nseg))
        return TF_MATCH_NO_PATH;
    bool path_seen = false;
    size_t allow_len = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct entry *e = &r->entries[i];
        if (!match_entry(e, seg, seglen, nseg))
            continue;
        path_seen = true;
        if (strcmp(e->route->method, method) != 0) {
            int w = snprintf(m->allow + allow_len, sizeof m->allow - allow_len, "%s%s",
                             allow_len ? ", " : "", e->route->method);
            if (w > 0 && (size_t)w < sizeof m->allow - allow_len)
                allow_len += (size_t)w;
            continue;
        }
        m->route = e->route;
        for (size_t k = 0; k < nseg; k++) {
            if (!e->is_param[k])
                continue;
            if (seglen[k] >= sizeof m->values[0])
                return TF_MATCH_NO_PATH; /* no id of ours is that long */
            m->names[m->nparams] = e->seg[k];
            memcpy(m->values[m->nparams], seg[k], seglen[k]);
            m->values[m->nparams][seglen[k]] = '\0';
            m->nparams++;
        }
        return TF_MATCH_OK;
    }
    return path_seen ? TF_MATCH_NO_METHOD : TF_MATCH_NO_PATH;
}
