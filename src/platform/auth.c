/*
 * Permission checks. A permission is granted by an exact match, by "*", or by
 * a "prefix:*" wildcard covering every permission that starts with "prefix:".
 */
#include <string.h>

#include "tenantflow/auth.h"

const char *tf_actor_type_name(tf_actor_type t)
{
    switch (t) {
    case TF_ACTOR_USER: return "user";
    case TF_ACTOR_API_KEY: return "api_key";
    case TF_ACTOR_OPERATOR: return "operator";
    case TF_ACTOR_SYSTEM: return "system";
    case TF_ACTOR_NONE: break;
    }
    return "anonymous";
}

static bool grants(const char *have, const char *want)
{
    if (strcmp(have, "*") == 0 || strcmp(have, want) == 0)
        return true;
    size_t n = strlen(have);
    /* "po:*" grants "po:approve" but not "po" or "pox:approve". */
    return n >= 2 && have[n - 1] == '*' && have[n - 2] == ':' && strncmp(have, want, n - 1) == 0;
}

bool tf_perms_grant(const char *const *perms, size_t n, const char *perm)
{
    for (size_t i = 0; i < n; i++)
        if (grants(perms[i], perm))
            return true;
    return false;
}

bool tf_principal_can(const tf_principal *pr, const char *perm)
{
    return tf_perms_grant(pr->perms, pr->nperms, perm);
}
