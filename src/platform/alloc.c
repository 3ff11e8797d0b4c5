/*
 * Allocation wrappers that abort on failure, and the per-request arena.
 *
 * The arena is a chain of blocks; big allocations get a block of their own.
 * It is not thread-safe: one request is served by one thread at a time.
 */
#include "tenantflow/alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory\",\"bytes\":%zu}\n", n);
    abort();
}

void *tf_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *tf_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *tf_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

void *tf_xmalloc_array(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        out_of_memory(SIZE_MAX);
    return tf_xmalloc(count * size);
}

char *tf_xstrndup(const char *s, size_t n)
{
    char *d = tf_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *tf_xstrdup(const char *s)
{
    return tf_xstrndup(s, strlen(s));
}

enum { BLOCK_SIZE = 8192 };

struct block {
    struct block *next;
    size_t used, size;
    max_align_t data[];
};

struct deferred {
    struct deferred *next;
    void (*fn)(void *);
    void *ptr;
};

struct tf_arena {
    struct block *blocks;
    struct deferred *deferred;
};

tf_arena *tf_arena_new(void)
{
    return tf_xcalloc(1, sizeof(tf_arena));
}

static struct block *new_block(size_t size)
{
    if (size > SIZE_MAX - sizeof(struct block))
        out_of_memory(SIZE_MAX);
    struct block *b = tf_xmalloc(sizeof(struct block) + size);
    b->used = 0;
    b->size = size;
    return b;
}

void *tf_arena_alloc(tf_arena *a, size_t n)
{
    const size_t align = sizeof(max_align_t);
    if (n > SIZE_MAX - align)
        out_of_memory(n);
    n = (n + align - 1) / align * align;
    struct block *b = a->blocks;
    if (n > BLOCK_SIZE / 4) {
        /* A big allocation gets its own block behind the current one. */
        struct block *big = new_block(n);
        big->used = n;
        if (b) {
            big->next = b->next;
            b->next = big;
        } else {
            big->next = NULL;
            a->blocks = big;
        }
        return big->data;
    }
    if (!b || b->size - b->used < n) {
        b = new_block(BLOCK_SIZE);
        b->next = a->blocks;
        a->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

char *tf_arena_strndup(tf_arena *a, const char *s, size_t n)
{
    char *d = tf_arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *tf_arena_strdup(tf_arena *a, const char *s)
{
    return tf_arena_strndup(a, s, strlen(s));
}

char *tf_arena_printf(tf_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return tf_arena_strdup(a, "");
    char *d = tf_arena_alloc(a, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

void tf_arena_defer(tf_arena *a, void (*fn)(void *), void *ptr)
{
    struct deferred *d = tf_arena_alloc(a, sizeof(*d));
    d->fn = fn;
    d->ptr = ptr;
    d->next = a->deferred;
    a->deferred = d;
}

void tf_arena_free(tf_arena *a)
{
    if (!a)
        return;
    for (struct deferred *d = a->deferred; d; d = d->next)
        d->fn(d->ptr);
    struct block *b = a->blocks;
    while (b) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}
