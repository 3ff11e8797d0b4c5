/*
 * The API's own documentation, served by the binary: /openapi.json (the
 * OpenAPI 3.1 contract, docs/openapi.json), /docs (a reference page that
 * renders it, with its script and style sheet) and /problems/{slug} (one page
 * per problem type of the table in problem.c).
 *
 * The files under docs/ are compiled into the binary at build time
 * (scripts/embed.sh writes build/gen/assets.c), so there is no run-time path
 * to configure and nothing is fetched from the internet.
 */
#ifndef TENANTFLOW_DOCS_H
#define TENANTFLOW_DOCS_H

#include <stdbool.h>
#include <stddef.h>

#include "tenantflow/http.h"

typedef struct tf_asset {
    const char *name;         /* path below docs/: "openapi.json", "reference/docs.js" */
    const char *content_type;
    const unsigned char *data; /* static, NUL-terminated after len bytes */
    size_t len;
} tf_asset;

/* The embedded files (generated). */
extern const tf_asset tf_assets[];
extern const size_t tf_assets_count;

/* The embedded file called name, or NULL. */
const tf_asset *tf_asset_find(const char *name);

bool tf_docs_register(tf_router *r, char *err, size_t errsz) TF_MUST_CHECK;

#endif
