/* What the files of the access module share. */
#ifndef TENANTFLOW_ACCESS_INTERNAL_H
#define TENANTFLOW_ACCESS_INTERNAL_H

#include "tenantflow/access.h"
#include "tenantflow/token.h"

extern const tf_keyset *access_keys;
extern int access_token_ttl;

void access_login(tf_req *req);
void access_me(tf_req *req);
void access_jwks(tf_req *req);
bool access_resolve(tf_tx *tx, tf_arena *arena, const tf_credential *cred, tf_principal *out,
                    tf_problem *p);
/* Adds 422 errors for a bad email / password at the given pointers. */
bool access_check_email(const char *email, const char *pointer, tf_problem *p);
bool access_check_password(const char *password, const char *pointer, tf_problem *p);
/* Reads a JSON array of strings from a query column into the arena. */
const char **access_string_list(tf_arena *arena, const char *json_text, size_t *n);

#endif
