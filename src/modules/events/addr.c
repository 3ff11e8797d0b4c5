/*
 * Where webhooks may go (SSRF defence). A target is judged by the addresses
 * it will actually reach, never by how its host is spelled: literal hosts
 * are parsed with inet_aton (which reads every historical IPv4 spelling:
 * 2130706433, 0x7f000001, 0177.0.0.1, 127.1) or inet_pton for IPv6, other
 * names are resolved and every address checked. IPv4 hidden inside IPv6
 * (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::/96, 2002::/16) is judged as IPv4.
 * The dispatcher checks again at connect time (dispatch.c), so DNS changes
 * between creation and delivery do not help an attacker.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static bool in4(uint32_t a, uint32_t net, int bits)
{
    uint32_t mask = bits == 0 ? 0 : 0xFFFFFFFFu << (32 - bits);
    return (a & mask) == (net & mask);
}

#define V4(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

addr_class events_addr_class_v4(uint32_t a)
{
    if (a == V4(169, 254, 169, 254) || a == V4(169, 254, 170, 2) || a == V4(100, 100, 100, 200) ||
        a == V4(168, 63, 129, 16))
        return ADDR_METADATA;
    static const struct {
        uint32_t net;
        int bits;
    } private_nets[] = {
        {V4(0, 0, 0, 0), 8},      {V4(10, 0, 0, 0), 8},    {V4(100, 64, 0, 0), 10},
        {V4(127, 0, 0, 0), 8},    {V4(169, 254, 0, 0), 16}, {V4(172, 16, 0, 0), 12},
        {V4(192, 0, 0, 0), 24},   {V4(192, 0, 2, 0), 24},  {V4(192, 168, 0, 0), 16},
        {V4(198, 18, 0, 0), 15},  {V4(198, 51, 100, 0), 24}, {V4(203, 0, 113, 0), 24},
        {V4(224, 0, 0, 0), 4},    {V4(240, 0, 0, 0), 4},
    };
    for (size_t i = 0; i < sizeof private_nets / sizeof *private_nets; i++)
        if (in4(a, private_nets[i].net, private_nets[i].bits))
            return ADDR_PRIVATE;
    return ADDR_PUBLIC;
}

static uint32_t v4_at(const unsigned char *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

addr_class events_addr_class_v6(const unsigned char a[16])
{
    static const unsigned char zero[16] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char ec2[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0,
                                          0,    0, 0,    0,    0, 0, 0x02, 0x54};
    if (memcmp(a, ec2, 16) == 0)
        return ADDR_METADATA;
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return events_addr_class_v4(v4_at(a + 12));
    if (memcmp(a, zero, 12) == 0) /* ::, ::1 and IPv4-compatible ::a.b.c.d */
        return v4_at(a + 12) <= 1 ? ADDR_PRIVATE : events_addr_class_v4(v4_at(a + 12));
    if (a[0] == 0x20 && a[1] == 0x02) /* 6to4 carries an IPv4 address */
        return events_addr_class_v4(v4_at(a + 2));
    if ((a[0] & 0xfe) == 0xfc ||                    /* fc00::/7 unique local */
        (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||  /* fe80::/10 link-local */
        (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) ||  /* fec0::/10 site-local */
        a[0] == 0xff ||                             /* multicast */
        (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) ||      /* Teredo */
        (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) || /* documentation */
        (a[0] == 0x01 && a[1] == 0 && memcmp(a + 2, zero, 6) == 0))       /* discard */
        return ADDR_PRIVATE;
    return ADDR_PUBLIC;
}

addr_class events_addr_class(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return events_addr_class_v4(ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return events_addr_class_v6(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
    return ADDR_PRIVATE; /* anything else (unix sockets) is never a webhook target */
}

bool events_addr_allowed(addr_class c, bool allow_private)
{
    return c == ADDR_PUBLIC || (c == ADDR_PRIVATE && allow_private);
}

static const char *judge(addr_class c, bool allow_private)
{
    if (events_addr_allowed(c, allow_private))
        return NULL;
    return c == ADDR_METADATA ? "must not point at a cloud metadata address"
                              : "must not point at a loopback, private, link-local, multicast "
                                "or unspecified address";
}

static const char *judge_host(const char *host, bool allow_private)
{
    char buf[256];
    size_t n = strlen(host);
    if (n == 0 || n >= sizeof buf)
        return "has no valid host";
    if (host[0] == '[') { /* IPv6 literal, maybe with a zone */
        if (host[n - 1] != ']')
            return "has no valid host";
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        char *zone = strchr(buf, '%');
        if (zone)
            return "must not use an IPv6 zone";
        struct in6_addr a6;
        if (inet_pton(AF_INET6, buf, &a6) != 1)
            return "has no valid host";
        return judge(events_addr_class_v6(a6.s6_addr), allow_private);
    }
    struct in_addr a4;
    if (inet_aton(host, &a4))
        return judge(events_addr_class_v4(ntohl(a4.s_addr)), allow_private);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
        return "has a host that does not resolve";
    const char *why = NULL;
    for (struct addrinfo *ai = res; ai && !why; ai = ai->ai_next)
        why = judge(events_addr_class(ai->ai_addr), allow_private);
    freeaddrinfo(res);
    return why;
}

const char *events_url_refusal(const char *url, bool allow_private)
{
    if (strlen(url) > 2000)
        return "must be at most 2000 characters";
    CURLU *u = curl_url();
    const char *why = NULL;
    char *scheme = NULL, *host = NULL, *user = NULL, *password = NULL, *zone = NULL,
         *port = NULL;
    CURLUcode parsed = curl_url_set(u, CURLUPART_URL, url, 0);
    if (parsed == CURLUE_BAD_PORT_NUMBER) {
        why = "must have a port from 1 to 65535";
    } else if (parsed != CURLUE_OK || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
               curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        why = "must be an absolute http or https URL";
    } else if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && strtol(port, NULL, 10) == 0) {
        why = "must have a port from 1 to 65535"; /* port 0: nothing could ever be delivered */
    } else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        why = "must be an http or https URL";
    } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
               curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        why = "must not carry credentials";
    } else if (curl_url_get(u, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK) {
        why = "must not use an IPv6 zone";
    } else {
        why = judge_host(host, allow_private);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_free(zone);
    curl_free(port);
    curl_url_cleanup(u);
    return why;
}
