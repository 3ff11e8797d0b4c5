/*
 * What the files of the events module share.
 */
#ifndef TF_EVENTS_INTERNAL_H
#define TF_EVENTS_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "tenantflow/events.h"
#include "tenantflow/metrics.h"

#define EVENTS_CHANNEL "tenantflow_events"

typedef enum addr_class {
    ADDR_PUBLIC = 0,
    ADDR_PRIVATE,  /* loopback, private, link-local, multicast, unspecified, reserved */
    ADDR_METADATA, /* cloud metadata services: refused even when private is allowed */
} addr_class;

/* Classifies an IPv4 (host byte order) or IPv6 address; IPv4 embedded in
 * IPv6 (mapped, compatible, NAT64, 6to4) is classified as the IPv4 address. */
addr_class events_addr_class_v4(uint32_t a);
addr_class events_addr_class_v6(const unsigned char a[16]);
addr_class events_addr_class(const struct sockaddr *sa);
/* True when a target of this class may be contacted under the settings. */
bool events_addr_allowed(addr_class c, bool allow_private);

/* Checks a webhook URL: http(s), no credentials, and every address its host
 * names or resolves to allowed. NULL when fine, else a reason (static). */
const char *events_url_refusal(const char *url, bool allow_private);

extern events_config events_cfg;

/* Webhook secrets: sealed with a key derived from the signing key file. */
enum { EVENTS_SECRET_BYTES = 32, EVENTS_KEY_ID_BYTES = 8 };
/* Encrypts secret for webhook id; returns hex of nonce||ciphertext (malloc'd)
 * and the key id as hex (static). */
char *events_secret_seal(const char *webhook_id, const unsigned char secret[EVENTS_SECRET_BYTES]);
const char *events_secret_key_id(void);
bool events_secret_open(const char *webhook_id, const unsigned char *box, size_t len,
                        unsigned char secret[EVENTS_SECRET_BYTES]) TF_MUST_CHECK;

/* Standard Webhooks signature "v1,<base64>" of id.timestamp.body (malloc'd). */
char *events_sign(const unsigned char *secret, size_t secret_len, const char *id,
                  long long timestamp, const char *body, size_t body_len);

/* Delay before attempt number `next` (2..10) in milliseconds, jittered and
 * scaled; -1 when there is no further attempt. */
long long events_retry_delay_ms(int next);

void events_feed(tf_req *req);
void webhooks_create(tf_req *req);
void webhooks_list(tf_req *req);
void webhooks_get(tf_req *req);
void webhooks_patch(tf_req *req);
void webhooks_delete(tf_req *req);
void webhooks_deliveries(tf_req *req);

/* The dispatcher round (dispatch.c) and the sequencer/listener (sequencer.c). */
void events_dispatch_round(tf_pool *pool, void *arg);
void events_sequence_round(tf_pool *pool, void *arg);
void events_listen_round(tf_pool *pool, void *arg);
void events_dispatch_shutdown(void);
void events_listen_shutdown(void);
void events_listen_set_jobs(tf_jobs *jobs, const char *conninfo);
void events_dispatch_set_conninfo(const char *conninfo);
/* True once the server is stopping (long rounds return early). */
bool events_stopping(void);

/* Failed delivery attempts (NULL when metrics are off). */
extern tf_metric *events_failed_attempts;

#endif
