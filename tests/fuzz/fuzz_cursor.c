/*
 * Fuzz target: pagination cursors, tf_cursor_decode (the ?cursor= value,
 * attacker-controlled) and tf_cursor_encode.
 *
 * The cursor reaches the server as a query value: libmicrohttpd hands it over
 * NUL-terminated and without embedded NULs, which is why the API takes a C
 * string and why the target adds the NUL. The first input byte picks a mode
 * (its value modulo 2; the seed corpus uses '0' and '1'):
 *   0  the rest is a cursor, decoded under the scope the seeds were made for;
 *      one that decodes must re-encode to the very same text (the server only
 *      ever issues canonical cursors, and a forgery would break this);
 *   1  the rest is a JSON payload: when it is an object (the only payload the
 *      server encodes), it is encoded, then decoded under the same scope
 *      (equal payload, same cursor again) and under another scope (refused).
 * A refused cursor always leaves a 400 naming `cursor`.
 */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "tenantflow/crypto.h"
#include "tenantflow/cursor.h"
#include "tenantflow/json.h"

#define SCOPE "t1|items|{\"workflow\":\"po\"}"
#define OTHER "t2|items|{\"workflow\":\"po\"}"
#define MAX_CURSOR 1024 /* cursor.c: longer ones are refused unread */

static void setup(void)
{
    static bool ready;
    if (ready)
        return;
    if (tf_crypto_init() != 0)
        abort();
    static const unsigned char material[] = "fuzz cursor key material";
    tf_cursor_set_key(material, sizeof material - 1);
    ready = true;
}

static void refused(const tf_problem *p)
{
    FUZZ_ASSERT(tf_failed(p) && json_array_size(p->errors) == 1);
    const char *param = json_string_value(json_object_get(json_array_get(p->errors, 0),
                                                          "parameter"));
    FUZZ_ASSERT(param && strcmp(param, "cursor") == 0);
}

static void decode_raw(const char *cursor)
{
    tf_problem p = {0};
    json_t *v = tf_cursor_decode(SCOPE, cursor, &p);
    if (v) {
        FUZZ_ASSERT(!tf_failed(&p) && (json_is_object(v) || json_is_array(v)));
        if (json_is_object(v)) {
            char *again = tf_cursor_encode(SCOPE, v);
            FUZZ_ASSERT(strcmp(again, cursor) == 0);
            free(again);
        }
        json_decref(v);
    } else {
        refused(&p);
    }
    tf_problem_clear(&p);
}

static void round_trip(const char *buf, size_t len)
{
    tf_problem jp = {0};
    json_t *payload = tf_json_parse(buf, len, &jp);
    tf_problem_clear(&jp);
    if (!json_is_object(payload)) {
        json_decref(payload);
        return;
    }
    char *cursor = tf_cursor_encode(SCOPE, payload);
    tf_problem p = {0};
    json_t *back = tf_cursor_decode(SCOPE, cursor, &p);
    if (strlen(cursor) <= MAX_CURSOR) {
        FUZZ_ASSERT(back != NULL && json_equal(back, payload));
        char *again = tf_cursor_encode(SCOPE, back);
        FUZZ_ASSERT(strcmp(again, cursor) == 0);
        free(again);
    } else {
        FUZZ_ASSERT(back == NULL);
        refused(&p);
    }
    tf_problem other = {0};
    json_t *elsewhere = tf_cursor_decode(OTHER, cursor, &other);
    FUZZ_ASSERT(elsewhere == NULL);
    refused(&other);
    tf_problem_clear(&other);
    tf_problem_clear(&p);
    json_decref(back);
    free(cursor);
    json_decref(payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0)
        return 0;
    if (data[0] % 2 == 0) {
        char *cursor = fuzz_cstr(data + 1, size - 1);
        decode_raw(cursor);
        free(cursor);
    } else {
        char *buf = fuzz_exact(data + 1, size - 1);
        round_trip(buf, size - 1);
        free(buf);
    }
    return 0;
}
