/*
 * HTTPS credentials that can be replaced while the server runs.
 *
 * libmicrohttpd asks a callback for the certificate of every new handshake
 * (MHD_OPTION_HTTPS_CERT_CALLBACK); the callback hands out the credentials
 * loaded last. tf_tls_reload() reads the files again (on SIGHUP): new
 * handshakes get the new certificate, connections already open keep theirs.
 * Replaced credentials are kept until tf_tls_free(), because a handshake in
 * progress may still hold them (a few kilobytes per reload).
 */
#ifndef TENANTFLOW_TLS_H
#define TENANTFLOW_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/alloc.h"

typedef struct tf_tls tf_tls;

/* Loads a PEM certificate chain and its private key; NULL with err naming
 * the file on failure (unreadable, not PEM, key does not match). Only one
 * tf_tls may be active per process (the callback has no user pointer). */
tf_tls *tf_tls_load(const char *cert_path, const char *key_path, char *err, size_t errsz)
    TF_MUST_CHECK;
/* Re-reads both files; on failure keeps serving the previous credentials.
 * *changed tells whether the files differ from those in use (a reload of
 * the same files swaps nothing). */
bool tf_tls_reload(tf_tls *tls, bool *changed, char *err, size_t errsz) TF_MUST_CHECK;
/* The callback to give libmicrohttpd. */
gnutls_certificate_retrieve_function2 *tf_tls_callback(void);
void tf_tls_free(tf_tls *tls);

#endif
