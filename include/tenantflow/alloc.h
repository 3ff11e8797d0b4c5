/*
 * One allocation policy for the whole server: allocation failure aborts the
 * process (there is no sane recovery in a request path), and array sizes are
 * overflow-checked before they reach malloc.
 *
 * tf_arena is the per-request arena: everything a request allocates through it
 * is freed by one tf_arena_free() in libmicrohttpd's request-completed callback.
 * Objects that own other resources (PGresult, json_t) register a dispose
 * callback with tf_arena_defer().
 */
#ifndef TENANTFLOW_ALLOC_H
#define TENANTFLOW_ALLOC_H

#include <stddef.h>

#define TF_MUST_CHECK __attribute__((warn_unused_result))
#define TF_PRINTF(f, a) __attribute__((format(printf, f, a)))

void *tf_xmalloc(size_t n);
void *tf_xcalloc(size_t count, size_t size);
void *tf_xrealloc(void *p, size_t n);
/* count * size, aborting on overflow. */
void *tf_xmalloc_array(size_t count, size_t size);
char *tf_xstrdup(const char *s);
char *tf_xstrndup(const char *s, size_t n);

typedef struct tf_arena tf_arena;

/* Caller owns the arena and frees it with tf_arena_free(). */
tf_arena *tf_arena_new(void);
/* Memory belongs to the arena; never free() it. */
void *tf_arena_alloc(tf_arena *a, size_t n);
char *tf_arena_strndup(tf_arena *a, const char *s, size_t n);
char *tf_arena_strdup(tf_arena *a, const char *s);
char *tf_arena_printf(tf_arena *a, const char *fmt, ...) TF_PRINTF(2, 3);
/* Runs fn(ptr) when the arena is freed, in reverse order of registration. */
void tf_arena_defer(tf_arena *a, void (*fn)(void *), void *ptr);
/* Runs the deferred callbacks, then releases all memory. Safe on NULL. */
void tf_arena_free(tf_arena *a);

#endif
