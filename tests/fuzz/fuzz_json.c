/*
 * Fuzz target: the strict JSON parser for request bodies, tf_json_parse, and
 * the bracket scan tf_json_depth it runs first, then tf_json_check on what
 * parsed (its pointers escape client-chosen member names).
 *
 * Properties, for every input:
 *   - a parsed value's real nesting depth equals tf_json_depth of the text and
 *     is at most TF_JSON_MAX_DEPTH, so the pre-scan and jansson agree on what
 *     is a bracket;
 *   - a refused input always leaves an invalid-json problem with a detail;
 *   - printing what parsed and parsing the print again succeeds and gives an
 *     equal value that prints the same (nothing the parser accepts is lost or
 *     changed by the round trip a list body or a cursor makes).
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "tenantflow/json.h"

static int depth_of(const json_t *v)
{
    int max = 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            int d = depth_of(e);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)(uintptr_t)v, k, e)
        {
            int d = depth_of(e);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    return 0;
}

static const tf_json_field fields[] = {
    {"title", TF_JT_STRING, true, false},
    {"attributes", TF_JT_OBJECT, false, true},
    {"roles", TF_JT_STRING_ARRAY, false, false},
    {"limit", TF_JT_INTEGER, false, false},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = fuzz_exact(data, size);
    int depth = tf_json_depth(buf, size, TF_JSON_MAX_DEPTH);
    FUZZ_ASSERT(depth >= 0 && depth <= TF_JSON_MAX_DEPTH + 1);

    tf_problem p = {0};
    json_t *v = tf_json_parse(buf, size, &p);
    if (!v) {
        FUZZ_ASSERT(p.kind == TF_PB_INVALID_JSON && p.detail[0] != '\0');
        tf_problem_clear(&p);
        free(buf);
        return 0;
    }
    FUZZ_ASSERT(!tf_failed(&p));
    FUZZ_ASSERT(depth_of(v) == depth && depth <= TF_JSON_MAX_DEPTH);

    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    char *text = json_dumps(v, flags);
    FUZZ_ASSERT(text != NULL);
    tf_problem p2 = {0};
    json_t *again = tf_json_parse(text, strlen(text), &p2);
    FUZZ_ASSERT(again != NULL && json_equal(v, again));
    char *text2 = json_dumps(again, flags);
    FUZZ_ASSERT(text2 != NULL && strcmp(text, text2) == 0);

    tf_problem checked = {0};
    bool ok = tf_json_check(v, "", fields, sizeof fields / sizeof *fields, &checked);
    FUZZ_ASSERT(ok == !tf_failed(&checked));
    FUZZ_ASSERT(ok || json_array_size(checked.errors) > 0);

    free(text2);
    free(text);
    json_decref(again);
    json_decref(v);
    tf_problem_clear(&checked);
    tf_problem_clear(&p2);
    tf_problem_clear(&p);
    free(buf);
    return 0;
}
