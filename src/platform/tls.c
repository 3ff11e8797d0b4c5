/*
 * Reloadable HTTPS credentials (see tls.h).
 *
 * The one thing to know: the pointer to the current credentials is swapped
 * atomically and the old ones are never freed while the daemon runs, so the
 * handshake callback needs no lock and cannot see freed memory.
 */
#include "tenantflow/tls.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_CHAIN = 16, MAX_PEM = 1024 * 1024 };

struct creds {
    struct creds *older;
    gnutls_pcert_st chain[MAX_CHAIN];
    unsigned n;
    gnutls_privkey_t key;
    unsigned char digest[32]; /* of both files, to tell a reload that changed nothing */
};

struct tf_tls {
    char *cert_path, *key_path;
    struct creds *all; /* newest first; all kept until tf_tls_free */
};

static _Atomic(struct creds *) current;

static bool read_file(const char *path, gnutls_datum_t *out, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    out->data = NULL;
    out->size = 0;
    if (!f) {
        snprintf(err, errsz, "cannot open %s", path);
        return false;
    }
    unsigned char *buf = tf_xmalloc(MAX_PEM);
    size_t n = fread(buf, 1, MAX_PEM, f);
    bool ok = !ferror(f) && n > 0 && n < MAX_PEM;
    fclose(f);
    if (!ok) {
        snprintf(err, errsz, "cannot read %s (empty, unreadable or over 1 MiB)", path);
        free(buf);
        return false;
    }
    out->data = buf;
    out->size = (unsigned)n;
    return true;
}

static void free_creds(struct creds *c)
{
    for (unsigned i = 0; i < c->n; i++)
        gnutls_pcert_deinit(&c->chain[i]);
    if (c->key)
        gnutls_privkey_deinit(c->key);
    free(c);
}

static struct creds *load(const char *cert_path, const char *key_path, char *err, size_t errsz)
{
    gnutls_datum_t cert, key;
    if (!read_file(cert_path, &cert, err, errsz))
        return NULL;
    if (!read_file(key_path, &key, err, errsz)) {
        free(cert.data);
        return NULL;
    }
    struct creds *c = tf_xcalloc(1, sizeof *c);
    c->n = MAX_CHAIN;
    int rc = gnutls_pcert_list_import_x509_raw(c->chain, &c->n, &cert, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0) {
        c->n = 0;
        snprintf(err, errsz, "%s: not a PEM certificate chain (%s)", cert_path,
                 gnutls_strerror(rc));
        goto fail;
    }
    rc = gnutls_privkey_init(&c->key);
    if (rc >= 0)
        rc = gnutls_privkey_import_x509_raw(c->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc < 0) {
        snprintf(err, errsz, "%s: not a PEM private key (%s)", key_path, gnutls_strerror(rc));
        goto fail;
    }
    /* gnutls checks that the key belongs to the certificate when both are set
     * on a credentials structure; use a throwaway one for that check. */
    gnutls_certificate_credentials_t probe;
    rc = gnutls_certificate_allocate_credentials(&probe);
    if (rc >= 0) {
        rc = gnutls_certificate_set_x509_key_mem2(probe, &cert, &key, GNUTLS_X509_FMT_PEM, NULL,
                                                  0);
        gnutls_certificate_free_credentials(probe);
    }
    if (rc < 0) {
        snprintf(err, errsz, "%s and %s do not go together (%s)", cert_path, key_path,
                 gnutls_strerror(rc));
        goto fail;
    }
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof c->digest);
    crypto_generichash_update(&h, cert.data, cert.size);
    crypto_generichash_update(&h, key.data, key.size);
    crypto_generichash_final(&h, c->digest, sizeof c->digest);
    gnutls_memset(key.data, 0, key.size);
    free(cert.data);
    free(key.data);
    return c;
fail:
    gnutls_memset(key.data, 0, key.size);
    free(cert.data);
    free(key.data);
    free_creds(c);
    return NULL;
}

static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
    (void)session;
    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    struct creds *c = atomic_load(&current);
    if (!c)
        return -1;
    *pcert = c->chain;
    *pcert_length = c->n;
    *pkey = c->key;
    return 0;
}

gnutls_certificate_retrieve_function2 *tf_tls_callback(void)
{
    return retrieve;
}

tf_tls *tf_tls_load(const char *cert_path, const char *key_path, char *err, size_t errsz)
{
    struct creds *c = load(cert_path, key_path, err, errsz);
    if (!c)
        return NULL;
    tf_tls *t = tf_xcalloc(1, sizeof *t);
    t->cert_path = tf_xstrdup(cert_path);
    t->key_path = tf_xstrdup(key_path);
    t->all = c;
    atomic_store(&current, c);
    return t;
}

bool tf_tls_reload(tf_tls *t, bool *changed, char *err, size_t errsz)
{
    struct creds *c = load(t->cert_path, t->key_path, err, errsz);
    if (!c)
        return false;
    *changed = sodium_memcmp(c->digest, t->all->digest, sizeof c->digest) != 0;
    if (!*changed) {
        free_creds(c);
        return true;
    }
    c->older = t->all;
    t->all = c;
    atomic_store(&current, c);
    return true;
}

void tf_tls_free(tf_tls *t)
{
    if (!t)
        return;
    atomic_store(&current, NULL);
    for (struct creds *c = t->all, *older; c; c = older) {
        older = c->older;
        free_creds(c);
    }
    free(t->cert_path);
    free(t->key_path);
    free(t);
}
