/*
 * The documentation routes: /openapi.json, /docs and its assets, and the
 * /problems pages. Everything here is public and read-only.
 *
 * The one thing to know: the OpenAPI document and the reference page are
 * files under docs/, compiled in by the Makefile (build/gen/assets.c), while
 * the problem pages are written here from the table in problem.c, so a new
 * problem type gets its page without touching this file. Every piece of text
 * that enters HTML here goes through put_escaped().
 */
#include "tenantflow/docs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The reference page may load only its own script, style and document. */
static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

const tf_asset *tf_asset_find(const char *name)
{
    for (size_t i = 0; i < tf_assets_count; i++)
        if (strcmp(tf_assets[i].name, name) == 0)
            return &tf_assets[i];
    return NULL;
}

static void reply_asset(tf_req *req, const tf_asset *a)
{
    if (strncmp(a->content_type, "text/html", 9) == 0)
        tf_reply_header(req, "Content-Security-Policy", csp);
    tf_reply_text(req, 200, a->content_type, (const char *)a->data, a->len);
}

static void serve_named(tf_req *req, const char *name)
{
    const tf_asset *a = tf_asset_find(name);
    if (!a) {
        tf_problem_set(tf_req_problem(req), TF_PB_NOT_FOUND, "No such document.");
        return;
    }
    reply_asset(req, a);
}

static void openapi(tf_req *req)
{
    serve_named(req, "openapi.json");
}

static void reference(tf_req *req)
{
    serve_named(req, "reference/index.html");
}

/* /docs/{asset}: only the script and style sheet of the reference page. */
static void reference_asset(tf_req *req)
{
    const char *asset = tf_req_param(req, "asset");
    if (strcmp(asset, "docs.js") != 0 && strcmp(asset, "docs.css") != 0) {
        tf_problem_set(tf_req_problem(req), TF_PB_NOT_FOUND, "No such document.");
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "reference/%s", asset);
    serve_named(req, name);
}

/* --- HTML pages of the problem types --- */

struct html {
    char *s;
    size_t len, cap;
};

static void put(struct html *h, const char *s, size_t n)
{
    if (h->len + n + 1 > h->cap) {
        size_t cap = h->cap ? h->cap : 2048;
        while (cap < h->len + n + 1)
            cap *= 2;
        h->s = tf_xrealloc(h->s, cap);
        h->cap = cap;
    }
    memcpy(h->s + h->len, s, n);
    h->len += n;
    h->s[h->len] = '\0';
}

static void puts_raw(struct html *h, const char *s)
{
    put(h, s, strlen(s));
}

static void put_escaped(struct html *h, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': puts_raw(h, "&amp;"); break;
        case '<': puts_raw(h, "&lt;"); break;
        case '>': puts_raw(h, "&gt;"); break;
        case '"': puts_raw(h, "&quot;"); break;
        case '\'': puts_raw(h, "&#39;"); break;
        default: put(h, s, 1); break;
        }
    }
}

static void page_start(struct html *h, const char *title)
{
    puts_raw(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                "<title>");
    put_escaped(h, title);
    puts_raw(h, " · tenantflow</title><link rel=\"stylesheet\" href=\"/docs/docs.css\"></head>"
                "<body><main class=\"page\"><nav class=\"crumbs\"><a href=\"/docs\">API reference"
                "</a> · <a href=\"/problems\">Problem types</a></nav>\n");
}

static void page_end(tf_req *req, struct html *h)
{
    puts_raw(h, "</main></body></html>\n");
    tf_reply_header(req, "Content-Security-Policy", csp);
    tf_reply_text(req, 200, "text/html; charset=utf-8", h->s, h->len);
    free(h->s);
}

static void problems_index(tf_req *req)
{
    struct html h = {0};
    page_start(&h, "Problem types");
    puts_raw(&h, "<h1>Problem types</h1>\n<p>Every error response is an RFC 9457 "
                 "<code>application/problem+json</code> body whose <code>type</code> is one of "
                 "these pages.</p>\n<table class=\"problems\"><thead><tr><th>status</th>"
                 "<th>type</th><th>title</th></tr></thead><tbody>\n");
    for (int k = TF_PB_NONE + 1; k < TF_PB_COUNT; k++) {
        const tf_problem_type *t = tf_problem_type_of((tf_problem_kind)k);
        char status[16];
        snprintf(status, sizeof status, "%d", t->status);
        puts_raw(&h, "<tr><td>");
        puts_raw(&h, status);
        puts_raw(&h, "</td><td><a class=\"problem\" href=\"/problems/");
        put_escaped(&h, t->slug);
        puts_raw(&h, "\">/problems/");
        put_escaped(&h, t->slug);
        puts_raw(&h, "</a></td><td>");
        put_escaped(&h, t->title);
        puts_raw(&h, "</td></tr>\n");
    }
    puts_raw(&h, "</tbody></table>\n");
    page_end(req, &h);
}

static void problem_page(tf_req *req)
{
    const char *slug = tf_req_param(req, "slug");
    tf_problem_kind kind = tf_problem_kind_by_slug(slug);
    if (kind == TF_PB_NONE) {
        tf_problem_set(tf_req_problem(req), TF_PB_NOT_FOUND, "No such problem type.");
        return;
    }
    const tf_problem_type *t = tf_problem_type_of(kind);
    char status[16];
    snprintf(status, sizeof status, "%d", t->status);
    struct html h = {0};
    page_start(&h, t->title);
    puts_raw(&h, "<h1>");
    put_escaped(&h, t->title);
    puts_raw(&h, "</h1>\n<dl class=\"problem-facts\"><dt>type</dt><dd><code>/problems/");
    put_escaped(&h, t->slug);
    puts_raw(&h, "</code></dd><dt>status</dt><dd>");
    puts_raw(&h, status);
    puts_raw(&h, "</dd></dl>\n<p class=\"description\">");
    put_escaped(&h, t->description);
    puts_raw(&h, "</p>\n<p>The body also carries <code>title</code>, <code>status</code>, "
                 "<code>detail</code>, <code>instance</code> (the request path) and "
                 "<code>request_id</code> (the <code>X-Request-Id</code> of the response); "
                 "field-level errors are listed in <code>errors[]</code>, each with a JSON "
                 "<code>pointer</code> into the body or the query <code>parameter</code> at "
                 "fault.</p>\n");
    page_end(req, &h);
}

static const tf_route routes[] = {
    {"GET", "/openapi.json", TF_PUBLIC, openapi, NULL,
     "The OpenAPI 3.1 description of this API", TF_ROUTE_INLINE, NULL},
    {"GET", "/docs", TF_PUBLIC, reference, NULL, "The API reference, rendered from /openapi.json",
     TF_ROUTE_TEXT | TF_ROUTE_INLINE, NULL},
    {"GET", "/docs/{asset}", TF_PUBLIC, reference_asset, NULL,
     "The API reference's script and style sheet", TF_ROUTE_TEXT | TF_ROUTE_INLINE, NULL},
    {"GET", "/problems", TF_PUBLIC, problems_index, NULL, "The list of problem types",
     TF_ROUTE_TEXT | TF_ROUTE_INLINE, NULL},
    {"GET", "/problems/{slug}", TF_PUBLIC, problem_page, NULL, "One problem type explained",
     TF_ROUTE_TEXT | TF_ROUTE_INLINE, NULL},
};

bool tf_docs_register(tf_router *r, char *err, size_t errsz)
{
    return tf_router_add_all(r, routes, sizeof routes / sizeof *routes, err, errsz);
}
