/*
 * Fuzz target: If-Match / If-None-Match lists, tf_etag_match
 * (platform/etag.c), which decides whether a PATCH or a transition may go
 * ahead and whether a GET answers 304. The header value arrives from
 * libmicrohttpd as a C string, so the target passes a NUL-terminated copy.
 *
 * Property, against a model written another way (strtok_r): split on commas
 * and trimmed of spaces and tabs, the list is malformed (-1) when a member
 * is neither *, "tag" nor W/"tag" (tag without '"'); otherwise it matches
 * (1) when a member is *, the strong ETag "<version>", or, for the weak
 * comparison only, W/"<version>"; otherwise 0. NULL never matches.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "tenantflow/http.h"

static bool quoted_tag(const char *m, size_t n)
{
    if (n < 2 || m[0] != '"' || m[n - 1] != '"')
        return false;
    for (size_t i = 1; i + 1 < n; i++)
        if (m[i] == '"')
            return false;
    return true;
}

static int model(const char *header, long long version, bool weak)
{
    char strong[32], weak_tag[40];
    snprintf(strong, sizeof strong, "\"%lld\"", version);
    snprintf(weak_tag, sizeof weak_tag, "W/%s", strong);
    char *copy = tf_xstrdup(header);
    char *save = NULL;
    int result = 0;
    for (char *m = strtok_r(copy, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
        m += strspn(m, " \t");
        size_t n = strlen(m);
        while (n > 0 && (m[n - 1] == ' ' || m[n - 1] == '\t'))
            n--;
        m[n] = '\0';
        if (n == 0)
            continue;
        bool star = strcmp(m, "*") == 0;
        bool is_weak = n > 2 && m[0] == 'W' && m[1] == '/';
        if (!star && !quoted_tag(is_weak ? m + 2 : m, is_weak ? n - 2 : n)) {
            result = -1;
            break;
        }
        if (star || strcmp(m, strong) == 0 || (weak && strcmp(m, weak_tag) == 0))
            result = 1;
    }
    free(copy);
    return result;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long long versions[] = {0, 1, 7, 42, 1234567890123LL};
    char *header = fuzz_cstr(data, size);
    for (size_t i = 0; i < sizeof versions / sizeof *versions; i++)
        for (int weak = 0; weak <= 1; weak++)
            FUZZ_ASSERT(tf_etag_match(header, versions[i], weak) ==
                        model(header, versions[i], weak));
    FUZZ_ASSERT(tf_etag_match(NULL, 1, false) == 0);
    free(header);
    return 0;
}
