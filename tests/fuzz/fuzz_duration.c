/*
 * Fuzz target: wf_parse_duration (workflows/internal.h), the check on a
 * workflow state's "sla" before items get due_at = now() + sla::interval in
 * PostgreSQL. Its input is a string jansson decoded, so the target passes a
 * NUL-terminated copy.
 *
 * Property: accepted exactly when a POSIX regular expression for
 * P[nY][nM][nW][nD][T[nH][nM][nS]] (1-9 digits each, at least one part, no
 * bare T) matches and the parts add up to at most WF_SLA_MAX_YEARS (a year
 * counted as 366 days, a month as 31), the bound that keeps the interval and
 * now() + it inside PostgreSQL's ranges.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "modules/workflows/internal.h"

static regex_t re;

/* Groups 1-4 (date) and 6-8 (time) of the expression hold one part each,
 * group 5 the whole time part with its T. */
static const char pattern[] = "^P([0-9]{1,9}Y)?([0-9]{1,9}M)?([0-9]{1,9}W)?([0-9]{1,9}D)?"
                              "(T([0-9]{1,9}H)?([0-9]{1,9}M)?([0-9]{1,9}S)?)?$";
static const struct {
    int group;
    long long seconds;
} parts[] = {
    {1, 366LL * 86400}, {2, 31LL * 86400}, {3, 7LL * 86400}, {4, 86400},
    {6, 3600},          {7, 60},           {8, 1},
};

static bool model(const char *s)
{
    regmatch_t m[9];
    if (regexec(&re, s, 9, m, 0) != 0)
        return false;
    long long total = 0;
    int found = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        const regmatch_t *g = &m[parts[i].group];
        if (g->rm_so < 0)
            continue;
        found++;
        total += strtoll(s + g->rm_so, NULL, 10) * parts[i].seconds;
    }
    bool bare_t = m[5].rm_so >= 0 && m[5].rm_eo - m[5].rm_so == 1;
    return found > 0 && !bare_t && total <= WF_SLA_MAX_YEARS * 366LL * 86400;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        if (regcomp(&re, pattern, REG_EXTENDED) != 0)
            abort();
        ready = true;
    }
    char *s = fuzz_cstr(data, size);
    FUZZ_ASSERT(wf_parse_duration(s) == model(s));
    free(s);
    return 0;
}
