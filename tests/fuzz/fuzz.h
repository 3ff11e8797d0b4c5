/*
 * What every fuzz target shares: the libFuzzer entry point's prototype and
 * two ways to hand the fuzzer's bytes to an API.
 *
 * The one thing to know: the fuzzer's buffer is never NUL-terminated and
 * never longer than `size`. An API that takes (pointer, length) gets a copy
 * of exactly `size` bytes (fuzz_exact), so AddressSanitizer catches any read
 * past the end. An API that takes a C string gets fuzz_cstr, a copy with a
 * NUL added, and only where its real caller guarantees that NUL (libmicrohttpd
 * header and query values, jansson strings); such callers can never see an
 * embedded NUL, so the string simply ends at the first one.
 *
 * Each target is one fuzz_<name>.c defining LLVMFuzzerTestOneInput; it is
 * linked with libFuzzer by `make fuzz` and with replay.c by `make test`.
 * A property violation is reported with __builtin_trap() (FUZZ_ASSERT).
 */
#ifndef TENANTFLOW_FUZZ_H
#define TENANTFLOW_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tenantflow/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                     \
    do {                                                                                      \
        if (!(cond))                                                                          \
            __builtin_trap();                                                                 \
    } while (0)

/* A malloc'd copy of data[0..size) in a block of exactly size bytes (one byte
 * for size 0, never read). The caller frees it. */
static inline char *fuzz_exact(const uint8_t *data, size_t size)
{
    char *buf = tf_xmalloc(size ? size : 1);
    if (size)
        memcpy(buf, data, size);
    return buf;
}

/* A malloc'd NUL-terminated copy of data[0..size); the caller frees it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = tf_xmalloc(size + 1);
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
