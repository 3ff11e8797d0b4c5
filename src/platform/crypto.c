/*
 * Cryptographic building blocks: strict base64url, Argon2id passwords, random
 * secrets and their keyed hashes, hex, and UUIDv7.
 *
 * The one thing to know: base64url here is canonical. Each byte string has
 * exactly one accepted encoding (no padding, no alternative alphabet, no
 * stray bits in the last character), so a token or cursor cannot be
 * re-encoded into a second spelling that compares differently but decodes
 * the same. The character mapping is computed with masks instead of table
 * lookups or branches, because key seeds and secrets pass through it.
 */
#include "tenantflow/crypto.h"

#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tf_crypto_init(void)
{
    /* 1 means "already initialised", which is fine. */
    return sodium_init() < 0 ? -1 : 0;
}

/* ---- base64url ---------------------------------------------------------- */

/* All ones when v > k, else 0; v and k are at most 255. */
static unsigned ct_gt(unsigned v, unsigned k)
{
    return 0u - ((k - v) >> 31);
}

/* All ones when lo <= c <= hi, else 0; arguments at most 255. */
static unsigned ct_in(unsigned c, unsigned lo, unsigned hi)
{
    return ~(ct_gt(lo, c) | ct_gt(c, hi));
}

/* The character for a 6-bit value: A-Z a-z 0-9 - _ by offsets, no lookup. */
static char enc_char(unsigned v)
{
    unsigned c = 'A' + v;
    c += ct_gt(v, 25) & ('a' - 'A' - 26);
    c -= ct_gt(v, 51) & ('a' - 26 - ('0' - 52));
    c -= ct_gt(v, 61) & ('0' + 62 - 52 - '-');
    c += ct_gt(v, 62) & ('_' - '.');
    return (char)c;
}

/* The 6-bit value of c; sets bits in *bad when c is not in the alphabet. */
static unsigned dec_char(unsigned c, unsigned *bad)
{
    unsigned upper = ct_in(c, 'A', 'Z');
    unsigned lower = ct_in(c, 'a', 'z');
    unsigned digit = ct_in(c, '0', '9');
    unsigned dash = ct_in(c, '-', '-');
    unsigned under = ct_in(c, '_', '_');
    unsigned v = (upper & (c - 'A')) | (lower & (c - 'a' + 26)) | (digit & (c - '0' + 52)) |
                 (dash & 62) | (under & 63);
    *bad |= ~(upper | lower | digit | dash | under) & 1u;
    return v & 63u;
}

/* Writes the TF_B64URL_ENCODED_LEN(len) characters of in to dst, no NUL. */
static void encode_into(const unsigned char *in, size_t len, char *dst)
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        acc = ((acc << 8) | in[i]) & 0xffffu;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            dst[o++] = enc_char((acc >> bits) & 63u);
        }
    }
    if (bits > 0)
        dst[o++] = enc_char((acc << (6 - bits)) & 63u);
}

bool tf_b64url_decode(const char *in, size_t inlen, unsigned char *out, size_t outcap,
                      size_t *outlen)
{
    if (inlen > 0 && !in)
        return false;
    size_t rem = inlen % 4;
    if (rem == 1)
        return false; /* 6 bits cannot end a byte */
    size_t need = inlen / 4 * 3 + (rem ? rem - 1 : 0);
    if (need > outcap || (need > 0 && !out))
        return false;

    unsigned bad = 0, bits = 0;
    uint32_t acc = 0;
    size_t o = 0;
    for (size_t i = 0; i < inlen; i++) {
        acc = ((acc << 6) | dec_char((unsigned char)in[i], &bad)) & 0xffffu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* Canonical form: the bits left over in the last character are zero. */
    bad |= acc & ((1u << bits) - 1u);
    if (bad) {
        sodium_memzero(out, o);
        return false;
    }
    if (outlen)
        *outlen = o;
    return true;
}

char *tf_b64url_encode(const unsigned char *in, size_t len)
{
    if (len > (SIZE_MAX - 4) / 4 * 3)
        abort(); /* no caller encodes anything near this size */
    size_t n = TF_B64URL_ENCODED_LEN(len);
    char *s = tf_xmalloc(n + 1);
    encode_into(in, len, s);
    s[n] = '\0';
    return s;
}

/* ---- passwords ---------------------------------------------------------- */

/* Argon2id cost: the OWASP Password Storage Cheat Sheet minimum (m = 19 MiB,
 * t = 2, p = 1; libsodium always runs one lane). Stored hashes carry their own
 * parameters, so raising these later only affects new hashes. */
static const unsigned long long PWHASH_OPSLIMIT = 2;
static const size_t PWHASH_MEMLIMIT = (size_t)19 * 1024 * 1024;
static const int PWHASH_ALG = crypto_pwhash_ALG_ARGON2ID13;

char *tf_password_hash(const char *pw, size_t len)
{
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str_alg(out, pw ? pw : "", len, PWHASH_OPSLIMIT, PWHASH_MEMLIMIT,
                              PWHASH_ALG) != 0)
        return NULL;
    return tf_xstrdup(out);
}

bool tf_password_verify(const char *hash, const char *pw, size_t len)
{
    if (!hash)
        return false;
    return crypto_pwhash_str_verify(hash, pw ? pw : "", len) == 0;
}

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];
static bool dummy_ok;

static void make_dummy_hash(void)
{
    static const char pw[] = "tenantflow-dummy-password";
    dummy_ok = crypto_pwhash_str_alg(dummy_hash, pw, sizeof pw - 1, PWHASH_OPSLIMIT,
                                     PWHASH_MEMLIMIT, PWHASH_ALG) == 0;
}

void tf_password_burn(const char *pw, size_t len)
{
    pthread_once(&dummy_once, make_dummy_hash);
    if (dummy_ok) {
        volatile int r = crypto_pwhash_str_verify(dummy_hash, pw ? pw : "", len);
        (void)r;
        return;
    }
    /* The dummy could not be made (out of memory): still spend the time. */
    unsigned char sink[32];
    unsigned char salt[crypto_pwhash_SALTBYTES] = {0};
    volatile int r = crypto_pwhash(sink, sizeof sink, pw ? pw : "", len, salt, PWHASH_OPSLIMIT,
                                   PWHASH_MEMLIMIT, PWHASH_ALG);
    (void)r;
    sodium_memzero(sink, sizeof sink);
}

/* ---- secrets ------------------------------------------------------------ */

/* Domain separation for stored secret hashes; zero-padded to the key size.
 * Fixed forever: every stored API key and token hash depends on it. */
static const unsigned char SECRET_HASH_KEY[crypto_generichash_KEYBYTES] = "tenantflow-secret-v1";

char *tf_secret_new(const char *prefix)
{
    unsigned char raw[TF_SECRET_RANDOM_BYTES];
    size_t plen = prefix ? strlen(prefix) : 0;
    size_t elen = TF_B64URL_ENCODED_LEN(sizeof raw);
    char *s = tf_xmalloc(plen + elen + 1);
    if (plen)
        memcpy(s, prefix, plen);
    randombytes_buf(raw, sizeof raw);
    encode_into(raw, sizeof raw, s + plen);
    s[plen + elen] = '\0';
    sodium_memzero(raw, sizeof raw);
    return s;
}

void tf_secret_hash(const char *secret, size_t len, unsigned char out[TF_SECRET_HASH_BYTES])
{
    static const unsigned char empty[1] = {0};
    const unsigned char *in = secret ? (const unsigned char *)secret : empty;
    /* Cannot fail with these fixed, valid sizes. */
    (void)crypto_generichash(out, TF_SECRET_HASH_BYTES, in, secret ? len : 0, SECRET_HASH_KEY,
                             sizeof SECRET_HASH_KEY);
}

void tf_hex(const unsigned char *in, size_t len, char *out)
{
    sodium_bin2hex(out, 2 * len + 1, in, len);
}

/* ---- UUIDs -------------------------------------------------------------- */

static const char HEX_DIGITS[] = "0123456789abcdef";

void tf_uuid7(char out[TF_UUID_LEN + 1])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;

    unsigned char b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    randombytes_buf(b + 6, sizeof b - 6);
    b[6] = (unsigned char)(0x70u | (b[6] & 0x0fu)); /* version 7 */
    b[8] = (unsigned char)(0x80u | (b[8] & 0x3fu)); /* variant 10 */

    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = HEX_DIGITS[b[i] >> 4];
        out[o++] = HEX_DIGITS[b[i] & 0x0fu];
    }
    out[o] = '\0';
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool tf_uuid_parse_ok(const char *s, size_t len)
{
    if (!s || len != TF_UUID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash_here ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}
