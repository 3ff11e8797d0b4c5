/*
 * Ed25519 (EdDSA) JWT access tokens and the signing key set.
 *
 * Verification is the part that faces attackers, and the one thing a reader
 * must know is its order: it refuses on shape (length, three non-empty
 * segments, canonical base64url) before it parses anything, parses only the
 * header before the signature is checked (to pick the key named by "kid",
 * with "alg" pinned to EdDSA so no algorithm is ever chosen by the token), and
 * parses the payload only once the signature holds. Decoded segments live in
 * fixed stack buffers sized by TF_TOKEN_MAX_LEN, and the only heap objects are
 * the two jansson values released at the single exit, so no path leaks.
 *
 * The key set keeps each private key beside its public key; the private keys
 * are wiped when the set is freed or its array grows.
 */
#include "tenantflow/token.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tenantflow/crypto.h"

#define SEED_B64_LEN TF_B64URL_ENCODED_LEN(crypto_sign_SEEDBYTES)

struct key {
    char kid[TF_KID_MAX + 1];
    size_t kidlen;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
};

struct tf_keyset {
    struct key *keys; /* keys[0] signs */
    size_t n, cap;
};

static void set_err(char *err, size_t errsz, const char *fmt, ...) TF_PRINTF(3, 4);

static void set_err(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || errsz == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

static bool kid_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

static bool kid_ok(const char *s, size_t n)
{
    if (n < 1 || n > TF_KID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!kid_char(s[i]))
            return false;
    return true;
}

static const struct key *find_key(const tf_keyset *ks, const char *kid, size_t n)
{
    for (size_t i = 0; i < ks->n; i++)
        if (ks->keys[i].kidlen == n && memcmp(ks->keys[i].kid, kid, n) == 0)
            return &ks->keys[i];
    return NULL;
}

void tf_keyset_free(tf_keyset *ks)
{
    if (!ks)
        return;
    if (ks->keys) {
        sodium_memzero(ks->keys, ks->cap * sizeof ks->keys[0]);
        free(ks->keys);
    }
    free(ks);
}

/* Room for one more key; the old array is wiped, never left to realloc. */
static struct key *append_key(tf_keyset *ks)
{
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 4;
        struct key *keys = tf_xcalloc(cap, sizeof keys[0]);
        if (ks->keys) {
            memcpy(keys, ks->keys, ks->n * sizeof keys[0]);
            sodium_memzero(ks->keys, ks->cap * sizeof keys[0]);
            free(ks->keys);
        }
        ks->keys = keys;
        ks->cap = cap;
    }
    return &ks->keys[ks->n++];
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses one line (without its LF); blank and comment lines add nothing. */
static bool parse_line(tf_keyset *ks, const char *s, size_t n, unsigned lineno, char *err,
                       size_t errsz)
{
    if (memchr(s, '\0', n)) {
        set_err(err, errsz, "line %u: NUL byte", lineno);
        return false;
    }
    while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\r'))
        n--;
    while (n > 0 && is_blank(*s)) {
        s++;
        n--;
    }
    if (n == 0 || *s == '#')
        return true;

    size_t kidlen = 0;
    while (kidlen < n && !is_blank(s[kidlen]))
        kidlen++;
    size_t seedpos = kidlen;
    while (seedpos < n && is_blank(s[seedpos]))
        seedpos++;
    size_t seedlen = n - seedpos;
    const char *seed_s = s + seedpos;
    for (size_t i = 0; i < seedlen; i++) {
        if (is_blank(seed_s[i])) {
            set_err(err, errsz, "line %u: expected \"<kid> <seed>\" and nothing more", lineno);
            return false;
        }
    }
    if (!kid_ok(s, kidlen)) {
        set_err(err, errsz, "line %u: kid must be 1-%d characters of [A-Za-z0-9._-]", lineno,
                TF_KID_MAX);
        return false;
    }
    if (seedlen == 0) {
        set_err(err, errsz, "line %u: missing seed after kid \"%.*s\"", lineno, (int)kidlen, s);
        return false;
    }
    if (find_key(ks, s, kidlen)) {
        set_err(err, errsz, "line %u: duplicate kid \"%.*s\"", lineno, (int)kidlen, s);
        return false;
    }

    unsigned char seed[crypto_sign_SEEDBYTES];
    size_t got = 0;
    bool ok = tf_b64url_decode(seed_s, seedlen, seed, sizeof seed, &got) && got == sizeof seed;
    if (ok) {
        struct key *k = append_key(ks);
        memcpy(k->kid, s, kidlen);
        k->kid[kidlen] = '\0';
        k->kidlen = kidlen;
        /* Cannot fail: every 32-byte string is a valid seed. */
        (void)crypto_sign_seed_keypair(k->pk, k->sk, seed);
    } else {
        set_err(err, errsz,
                "line %u: seed must be %d base64url characters without padding "
                "(a 32-byte Ed25519 seed)",
                lineno, (int)SEED_B64_LEN);
    }
    sodium_memzero(seed, sizeof seed);
    return ok;
}

tf_keyset *tf_keyset_from_text(const char *text, size_t len, char *err, size_t errsz)
{
    set_err(err, errsz, "%s", "");
    if (len > TF_KEYFILE_MAX) {
        set_err(err, errsz, "key file larger than %d bytes", TF_KEYFILE_MAX);
        return NULL;
    }
    if (!text)
        len = 0;
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3; /* UTF-8 byte order mark */

    tf_keyset *ks = tf_xcalloc(1, sizeof *ks);
    unsigned lineno = 0;
    while (pos < len) {
        lineno++;
        const char *eol = memchr(text + pos, '\n', len - pos);
        size_t end = eol ? (size_t)(eol - text) : len;
        if (!parse_line(ks, text + pos, end - pos, lineno, err, errsz)) {
            tf_keyset_free(ks);
            return NULL;
        }
        pos = eol ? end + 1 : len;
    }
    if (ks->n == 0) {
        set_err(err, errsz, "no keys (expected lines of \"<kid> <seed>\")");
        tf_keyset_free(ks);
        return NULL;
    }
    return ks;
}

/* Reads at most TF_KEYFILE_MAX + 1 bytes, so an oversized file is detected
 * even when it grew after fstat. Returns the count, or -1 with errno set. */
static ssize_t read_capped(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

tf_keyset *tf_keyset_load(const char *path, char *err, size_t errsz)
{
    tf_keyset *ks = NULL;
    char *buf = NULL;
    ssize_t got = 0;
    int fd = -1;

    if (!path || !*path) {
        set_err(err, errsz, "no key file named");
        return NULL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        set_err(err, errsz, "%s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, errsz, "%s: not a regular file", path);
        goto done;
    }
    if (st.st_size > TF_KEYFILE_MAX) {
        set_err(err, errsz, "%s: larger than %d bytes", path, TF_KEYFILE_MAX);
        goto done;
    }
    buf = tf_xmalloc(TF_KEYFILE_MAX + 1);
    got = read_capped(fd, buf, TF_KEYFILE_MAX + 1);
    if (got < 0) {
        got = 0;
        set_err(err, errsz, "%s: cannot read: %s", path, strerror(errno));
        goto done;
    }
    if (got > TF_KEYFILE_MAX) {
        set_err(err, errsz, "%s: larger than %d bytes", path, TF_KEYFILE_MAX);
        goto done;
    }
    char why[256];
    ks = tf_keyset_from_text(buf, (size_t)got, why, sizeof why);
    if (!ks)
        set_err(err, errsz, "%s: %s", path, why);

done:
    if (buf) {
        sodium_memzero(buf, (size_t)got);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return ks;
}

char *tf_keyset_generate_line(const char *kid)
{
    if (!kid)
        return NULL;
    size_t kidlen = strnlen(kid, TF_KID_MAX + 1);
    if (!kid_ok(kid, kidlen))
        return NULL;
    unsigned char seed[crypto_sign_SEEDBYTES];
    randombytes_buf(seed, sizeof seed);
    char *enc = tf_b64url_encode(seed, sizeof seed);
    size_t enclen = strlen(enc);
    size_t n = kidlen + 1 + enclen + 1;
    char *line = tf_xmalloc(n + 1);
    memcpy(line, kid, kidlen);
    line[kidlen] = ' ';
    memcpy(line + kidlen + 1, enc, enclen);
    line[n - 1] = '\n';
    line[n] = '\0';
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(enc, enclen);
    free(enc);
    return line;
}

json_t *tf_keyset_jwks(const tf_keyset *ks)
{
    json_t *keys = json_array();
    if (!keys)
        return NULL;
    for (size_t i = 0; ks && i < ks->n; i++) {
        char *x = tf_b64url_encode(ks->keys[i].pk, sizeof ks->keys[i].pk);
        json_t *jwk = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519",
                                "kid", ks->keys[i].kid, "x", x, "use", "sig", "alg", "EdDSA");
        free(x);
        /* json_array_append_new releases jwk when it fails. */
        if (!jwk || json_array_append_new(keys, jwk) != 0) {
            json_decref(keys);
            return NULL;
        }
    }
    json_t *root = json_object();
    if (!root) {
        json_decref(keys);
        return NULL;
    }
    if (json_object_set_new(root, "keys", keys) != 0) { /* releases keys */
        json_decref(root);
        return NULL;
    }
    return root;
}

/* ---- signing ------------------------------------------------------------ */

/* Length of a claim string held in a 64-byte field, or 0 when it is empty or
 * not terminated within 63 bytes. */
static size_t claim_len(const char field[64])
{
    size_t n = strnlen(field, 64);
    return n < 64 ? n : 0;
}

/* Compact JSON of v into buf; returns its length, or 0 when it does not fit. */
static size_t dump_compact(const json_t *v, char *buf, size_t cap)
{
    size_t n = json_dumpb(v, buf, cap, JSON_COMPACT);
    return n > 0 && n <= cap ? n : 0;
}

char *tf_token_sign(const tf_keyset *ks, const tf_claims *c)
{
    if (!ks || ks->n == 0 || !c || !claim_len(c->sub) || !claim_len(c->tid))
        return NULL;
    const struct key *k = &ks->keys[0];
    char *tok = NULL;
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "JWT", "kid", k->kid);
    /* json_pack refuses strings that are not UTF-8. */
    json_t *pl = json_pack("{s:s, s:s, s:I, s:I}", "sub", c->sub, "tid", c->tid, "iat",
                           (json_int_t)c->iat, "exp", (json_int_t)c->exp);
    if (!hdr || !pl)
        goto done;
    if (c->nbf != 0 && json_object_set_new(pl, "nbf", json_integer((json_int_t)c->nbf)) != 0)
        goto done;

    /* Claims are at most 63 bytes each, 6 bytes per escaped byte at worst. */
    char hjson[256], pjson[1024];
    size_t hn = dump_compact(hdr, hjson, sizeof hjson);
    size_t pn = dump_compact(pl, pjson, sizeof pjson);
    if (!hn || !pn)
        goto done;

    char *hseg = tf_b64url_encode((const unsigned char *)hjson, hn);
    char *pseg = tf_b64url_encode((const unsigned char *)pjson, pn);
    size_t hl = strlen(hseg), pl_len = strlen(pseg);
    size_t signed_len = hl + 1 + pl_len;
    size_t sig_len = TF_B64URL_ENCODED_LEN(crypto_sign_BYTES);
    tok = tf_xmalloc(signed_len + 1 + sig_len + 1);
    memcpy(tok, hseg, hl);
    tok[hl] = '.';
    memcpy(tok + hl + 1, pseg, pl_len);
    free(hseg);
    free(pseg);

    unsigned char sig[crypto_sign_BYTES];
    (void)crypto_sign_detached(sig, NULL, (const unsigned char *)tok, signed_len, k->sk);
    char *sseg = tf_b64url_encode(sig, sizeof sig);
    tok[signed_len] = '.';
    memcpy(tok + signed_len + 1, sseg, sig_len + 1);
    free(sseg);

done:
    json_decref(hdr);
    json_decref(pl);
    return tok;
}

/* ---- verification ------------------------------------------------------- */

/* The key named by a header that passes every rule, or NULL. */
static const struct key *check_header(const tf_keyset *ks, const json_t *h)
{
    if (!json_is_object(h))
        return NULL;
    const json_t *alg = json_object_get(h, "alg");
    if (!json_is_string(alg) || json_string_length(alg) != 5 ||
        memcmp(json_string_value(alg), "EdDSA", 5) != 0)
        return NULL;
    const json_t *typ = json_object_get(h, "typ");
    if (typ && (!json_is_string(typ) || json_string_length(typ) != 3 ||
                memcmp(json_string_value(typ), "JWT", 3) != 0))
        return NULL;
    /* RFC 7515 section 4.1.11: we understand no extension, so any crit fails. */
    if (json_object_get(h, "crit"))
        return NULL;
    const json_t *kid = json_object_get(h, "kid");
    if (!json_is_string(kid))
        return NULL;
    const char *kv = json_string_value(kid);
    size_t kn = json_string_length(kid);
    if (!kid_ok(kv, kn)) /* also refuses NUL, '/', and overlong kids */
        return NULL;
    return find_key(ks, kv, kn);
}

/* An integer claim; absent gives 0 and is an error only when required. */
static bool int_claim(const json_t *obj, const char *name, bool required, int64_t *v)
{
    const json_t *x = json_object_get(obj, name);
    *v = 0;
    if (!x)
        return !required;
    if (!json_is_integer(x))
        return false;
    *v = (int64_t)json_integer_value(x);
    return true;
}

/* A string claim of 1..63 bytes copied into a 64-byte field. */
static bool str_claim(const json_t *obj, const char *name, char dst[64])
{
    const json_t *x = json_object_get(obj, name);
    if (!json_is_string(x))
        return false;
    size_t n = json_string_length(x);
    const char *s = json_string_value(x);
    if (n < 1 || n > 63 || memchr(s, '\0', n))
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

static bool check_claims(const json_t *p, int64_t now, int64_t skew, tf_claims *c)
{
    if (!json_is_object(p))
        return false;
    if (!int_claim(p, "exp", true, &c->exp) || !int_claim(p, "nbf", false, &c->nbf) ||
        !int_claim(p, "iat", false, &c->iat))
        return false;
    if (!str_claim(p, "sub", c->sub) || !str_claim(p, "tid", c->tid))
        return false;
    /* exp + skew > now; an overflowing sum lies beyond any now. */
    int64_t t;
    if (!__builtin_add_overflow(c->exp, skew, &t) && t <= now)
        return false;
    /* nbf - skew <= now; an underflowing difference lies before any now. */
    if (json_object_get(p, "nbf") && !__builtin_sub_overflow(c->nbf, skew, &t) && t > now)
        return false;
    return true;
}

bool tf_token_verify(const tf_keyset *ks, const char *tok, size_t len, int64_t now, int64_t skew,
                     tf_claims *out)
{
    if (!ks || !tok || len == 0 || len > TF_TOKEN_MAX_LEN)
        return false;
    if (skew < 0)
        skew = 0;

    /* Exactly two dots, three non-empty segments. */
    const char *d1 = memchr(tok, '.', len);
    if (!d1)
        return false;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (!d2)
        return false;
    const char *sseg = d2 + 1;
    size_t hlen = (size_t)(d1 - tok);
    size_t plen = (size_t)(d2 - d1 - 1);
    size_t slen = len - (size_t)(sseg - tok);
    if (hlen == 0 || plen == 0 || slen == 0 || memchr(sseg, '.', slen))
        return false;

    unsigned char hbuf[TF_B64URL_DECODED_MAX(TF_TOKEN_MAX_LEN)];
    unsigned char pbuf[TF_B64URL_DECODED_MAX(TF_TOKEN_MAX_LEN)];
    unsigned char sig[crypto_sign_BYTES];
    size_t hn, pn, sn;
    if (!tf_b64url_decode(tok, hlen, hbuf, sizeof hbuf, &hn) ||
        !tf_b64url_decode(d1 + 1, plen, pbuf, sizeof pbuf, &pn) ||
        !tf_b64url_decode(sseg, slen, sig, sizeof sig, &sn) || sn != sizeof sig)
        return false;

    bool ok = false;
    json_t *hdr = NULL, *pl = NULL;
    tf_claims c;
    memset(&c, 0, sizeof c);

    hdr = json_loadb((const char *)hbuf, hn, JSON_REJECT_DUPLICATES, NULL);
    const struct key *k = check_header(ks, hdr);
    if (!k)
        goto done;
    if (crypto_sign_verify_detached(sig, (const unsigned char *)tok, (size_t)(d2 - tok), k->pk) !=
        0)
        goto done;
    pl = json_loadb((const char *)pbuf, pn, JSON_REJECT_DUPLICATES, NULL);
    if (!check_claims(pl, now, skew, &c))
        goto done;
    if (out)
        *out = c;
    ok = true;

done:
    json_decref(hdr);
    json_decref(pl);
    return ok;
}
