/*
 * Conditional requests (RFC 9110, section 13) on resources whose ETag is
 * their version number in quotes: the one parser of If-Match and
 * If-None-Match lists, and the 400, 412 and 304 answers built on it.
 */
#include <stdio.h>
#include <string.h>

#include "tenantflow/http.h"

/* One list member, trimmed: "*", "tag" or W/"tag" (opaque tags hold no '"'). */
static bool well_formed(const char *p, size_t len)
{
    if (len == 1 && *p == '*')
        return true;
    if (len > 2 && p[0] == 'W' && p[1] == '/') {
        p += 2;
        len -= 2;
    }
    return len >= 2 && p[0] == '"' && p[len - 1] == '"' && !memchr(p + 1, '"', len - 2);
}

int tf_etag_match(const char *header, long long version, bool weak)
{
    if (!header)
        return 0;
    char quoted[32];
    size_t qlen = (size_t)snprintf(quoted, sizeof quoted, "\"%lld\"", version);
    int found = 0;
    for (const char *p = header;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len) { /* empty members are allowed: "a, , b" */
            if (!well_formed(p, len))
                return -1;
            bool is_weak = p[0] == 'W';
            const char *tag = is_weak ? p + 2 : p;
            size_t tlen = is_weak ? len - 2 : len;
            if ((len == 1 && *p == '*') ||
                ((weak || !is_weak) && tlen == qlen && memcmp(tag, quoted, qlen) == 0))
                found = 1;
        }
        if (!end)
            return found;
        p = end + 1;
    }
}

/* The 400 for a list that is not one; false. */
static bool malformed(tf_problem *p, const char *header)
{
    tf_problem_set(p, TF_PB_BAD_REQUEST,
                   "%s must list entity tags in quotes, such as \"3\", or be *.", header);
    return false;
}

bool tf_req_if_match_valid(tf_req *req)
{
    return tf_etag_match(tf_req_header(req, "If-Match"), 0, false) >= 0 ||
           malformed(tf_req_problem(req), "If-Match");
}

bool tf_if_match_ok(const char *header, long long version, const char *noun, tf_problem *p)
{
    int m = tf_etag_match(header, version, false);
    if (m < 0)
        return malformed(p, "If-Match");
    if (m == 0 && header) {
        tf_problem_set(p, TF_PB_PRECONDITION_FAILED,
                       "The %s has changed; its current version is %lld.", noun, version);
        return false;
    }
    return true;
}

bool tf_req_if_match(tf_req *req, long long version, const char *noun)
{
    return tf_if_match_ok(tf_req_header(req, "If-Match"), version, noun, tf_req_problem(req));
}

void tf_reply_etag(tf_req *req, long long version)
{
    char etag[32];
    snprintf(etag, sizeof etag, "\"%lld\"", version);
    tf_reply_header(req, "ETag", etag);
}

bool tf_req_not_modified(tf_req *req, long long version)
{
    int m = tf_etag_match(tf_req_header(req, "If-None-Match"), version, true);
    if (m < 0)
        return !malformed(tf_req_problem(req), "If-None-Match");
    if (m == 0)
        return false;
    tf_reply_etag(req, version);
    tf_reply_text(req, 304, NULL, "", 0);
    return true;
}
