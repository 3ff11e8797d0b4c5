/*
 * Fuzz target: If-Match / If-None-Match lists, wf_if_match_ok and
 * wf_etag_in_list (workflows/internal.h), which decide whether a PATCH or a
 * transition may go ahead. The header value arrives from libmicrohttpd as a
 * C string, so the target passes a NUL-terminated copy.
 *
 * Property: for a few versions, the header admits the version exactly when
 * it is "*" or one of its comma-separated members, with the spaces around it
 * removed, is the strong ETag "\"<version>\"" (so W/"1" never admits 1).
 */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "modules/workflows/internal.h"

static bool listed(const char *header, const char *etag)
{
    bool found = false;
    char *copy = tf_xstrdup(header);
    char *save = NULL;
    /* strtok_r would merge empty members, which is harmless here. */
    for (char *m = strtok_r(copy, ",", &save); m && !found; m = strtok_r(NULL, ",", &save)) {
        while (*m == ' ')
            m++;
        size_t n = strlen(m);
        while (n > 0 && m[n - 1] == ' ')
            n--;
        found = n == strlen(etag) && memcmp(m, etag, n) == 0;
    }
    free(copy);
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long long versions[] = {0, 1, 7, 42, 1234567890123LL};
    char *header = fuzz_cstr(data, size);
    for (size_t i = 0; i < sizeof versions / sizeof *versions; i++) {
        char etag[32];
        snprintf(etag, sizeof etag, "\"%lld\"", versions[i]);
        bool want = strcmp(header, "*") == 0 || listed(header, etag);
        FUZZ_ASSERT(wf_if_match_ok(header, versions[i]) == want);
        FUZZ_ASSERT(wf_etag_in_list(header, etag) == listed(header, etag));
    }
    FUZZ_ASSERT(wf_if_match_ok(NULL, 1));
    free(header);
    return 0;
}
