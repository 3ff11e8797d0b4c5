/*
 * Validation of workflow definitions: every problem is reported at once, each
 * with a JSON pointer to the offending element, so a tenant fixes a
 * definition in one round trip.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "tenantflow/json.h"
#include "tenantflow/text.h"

/* Seconds a unit may stand for at most: a year of 366 days, a month of 31. */
static long long unit_seconds(char unit, bool in_time)
{
    switch (unit) {
    case 'Y': return 366LL * 86400;
    case 'M': return in_time ? 60 : 31LL * 86400;
    case 'W': return 7LL * 86400;
    case 'D': return 86400;
    case 'H': return 3600;
    default: return 1; /* 'S' */
    }
}

bool wf_parse_duration(const char *s)
{
    /* P[nY][nM][nW][nD][T[nH][nM][nS]] with at least one component, and at
     * most WF_SLA_MAX_YEARS long: PostgreSQL refuses intervals whose fields
     * overflow and timestamps past 294276 AD, and items get due_at = now() +
     * sla, so a longer sla would make every item entering the state a 500. */
    if (*s++ != 'P')
        return false;
    static const char date_units[] = "YMWD", time_units[] = "HMS";
    const char *units = date_units;
    int last = -1, parts = 0;
    bool in_time = false;
    long long seconds = 0; /* an upper bound; fits: 7 parts of 9 digits */
    while (*s) {
        if (*s == 'T' && !in_time) {
            in_time = true;
            units = time_units;
            last = -1;
            s++;
            if (!*s)
                return false;
            continue;
        }
        int digits = 0;
        long long n = 0;
        while (*s >= '0' && *s <= '9') {
            if (digits < 9)
                n = n * 10 + (*s - '0');
            s++, digits++;
        }
        if (digits == 0 || digits > 9 || !*s)
            return false;
        const char *u = strchr(units, *s);
        if (!u || (int)(u - units) <= last)
            return false;
        last = (int)(u - units);
        seconds += n * unit_seconds(*s, in_time);
        parts++;
        s++;
    }
    return parts > 0 && seconds <= WF_SLA_MAX_YEARS * 366LL * 86400;
}

const json_t *wf_state(const json_t *def, const char *name)
{
    size_t i;
    const json_t *st;
    json_array_foreach(json_object_get(def, "states"), i, st)
    {
        const char *n = json_string_value(json_object_get(st, "name"));
        if (n && strcmp(n, name) == 0)
            return st;
    }
    return NULL;
}

const json_t *wf_transition(const json_t *def, const char *name)
{
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(def, "transitions"), i, t)
    {
        const char *n = json_string_value(json_object_get(t, "name"));
        if (n && strcmp(n, name) == 0)
            return t;
    }
    return NULL;
}

bool wf_leaves(const json_t *t, const char *state)
{
    size_t i;
    const json_t *f;
    json_array_foreach(json_object_get(t, "from"), i, f)
    {
        if (strcmp(json_string_value(f), state) == 0)
            return true;
    }
    return false;
}

static bool is_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || (c == ':' && i > 0)))
            return false;
    }
    return true;
}

static int state_index(const json_t *states, const char *name)
{
    size_t i;
    const json_t *st;
    json_array_foreach(states, i, st)
    {
        const char *n = json_string_value(json_object_get(st, "name"));
        if (n && strcmp(n, name) == 0)
            return (int)i;
    }
    return -1;
}

static void check_states(const json_t *states, tf_problem *p)
{
    static const tf_json_field fields[] = {
        {"name", TF_JT_STRING, true, false},
        {"terminal", TF_JT_BOOL, false, false},
        {"sla", TF_JT_STRING, false, true},
        {"on_timeout", TF_JT_STRING, false, true},
    };
    size_t i;
    const json_t *st;
    char at[32];
    json_array_foreach(states, i, st)
    {
        snprintf(at, sizeof at, "/states/%zu", i);
        if (!tf_json_check(st, at, fields, sizeof fields / sizeof *fields, p))
            continue;
        const char *name = tf_json_str(st, "name");
        if (!is_name(name))
            tf_problem_invalid(p, at, "state name must be 1-63 letters, digits, _ - . or :");
        else if (state_index(states, name) != (int)i)
            tf_problem_invalid(p, at, "state name %s is repeated", name);
        const char *sla = tf_json_str(st, "sla");
        if (sla && !wf_parse_duration(sla)) {
            char sp[48];
            snprintf(sp, sizeof sp, "%s/sla", at);
            tf_problem_invalid(p, sp,
                               "must be an ISO 8601 duration of at most %d years, such as PT48H",
                               WF_SLA_MAX_YEARS);
        }
    }
}

static void check_transitions(const json_t *def, tf_problem *p)
{
    static const tf_json_field fields[] = {
        {"name", TF_JT_STRING, true, false},
        {"from", TF_JT_STRING_ARRAY, true, false},
        {"to", TF_JT_STRING, true, false},
        {"permission", TF_JT_STRING, false, true},
        {"requires", TF_JT_STRING_ARRAY, false, true},
    };
    const json_t *states = json_object_get(def, "states");
    size_t i, j;
    const json_t *t, *f;
    char at[48], sub[80];
    json_array_foreach(json_object_get(def, "transitions"), i, t)
    {
        snprintf(at, sizeof at, "/transitions/%zu", i);
        if (!tf_json_check(t, at, fields, sizeof fields / sizeof *fields, p))
            continue;
        const char *name = tf_json_str(t, "name");
        if (!is_name(name))
            tf_problem_invalid(p, at, "transition name must be 1-63 letters, digits, _ - . or :");
        else if (wf_transition(def, name) != t)
            tf_problem_invalid(p, at, "transition name %s is repeated", name);
        const json_t *from = json_object_get(t, "from");
        if (json_array_size(from) == 0) {
            snprintf(sub, sizeof sub, "%s/from", at);
            tf_problem_invalid(p, sub, "must name at least one state");
        }
        json_array_foreach(from, j, f)
        {
            int k = state_index(states, json_string_value(f));
            if (k < 0) {
                snprintf(sub, sizeof sub, "%s/from/%zu", at, j);
                tf_problem_invalid(p, sub, "unknown state");
            } else if (json_is_true(json_object_get(json_array_get(states, (size_t)k),
                                                    "terminal"))) {
                tf_problem_invalid(p, at, "leaves the terminal state %s", json_string_value(f));
            }
        }
        if (state_index(states, tf_json_str(t, "to")) < 0) {
            snprintf(sub, sizeof sub, "%s/to", at);
            tf_problem_invalid(p, sub, "unknown state");
        }
        const char *perm = tf_json_str(t, "permission");
        if (perm && (!is_name(perm) || !strchr(perm, ':'))) {
            snprintf(sub, sizeof sub, "%s/permission", at);
            tf_problem_invalid(p, sub, "must look like \"po:approve\"");
        }
        json_array_foreach(json_object_get(t, "requires"), j, f)
        {
            const char *ptr = json_string_value(f);
            if (ptr && (ptr[0] != '/' || strlen(ptr) < 2 || strlen(ptr) > 200)) {
                snprintf(sub, sizeof sub, "%s/requires/%zu", at, j);
                tf_problem_invalid(p, sub, "must be a JSON pointer into attributes, like /amount");
            }
        }
    }
}

/* Reachability, dead ends and timeouts: only meaningful once names resolve. */
static void check_graph(const json_t *def, tf_problem *p)
{
    const json_t *states = json_object_get(def, "states");
    const json_t *transitions = json_object_get(def, "transitions");
    size_t n = json_array_size(states);
    bool reached[WF_MAX_STATES] = {false};
    int initial = state_index(states, tf_json_str(def, "initial_state"));
    reached[initial] = true;
    for (bool grew = true; grew;) {
        grew = false;
        size_t i;
        const json_t *t;
        json_array_foreach(transitions, i, t)
        {
            int to = state_index(states, tf_json_str(t, "to"));
            if (to < 0 || reached[to])
                continue;
            size_t j;
            const json_t *f;
            json_array_foreach(json_object_get(t, "from"), j, f)
            {
                int k = state_index(states, json_string_value(f));
                if (k >= 0 && reached[k]) {
                    reached[to] = grew = true;
                    break;
                }
            }
        }
    }
    char at[48];
    for (size_t i = 0; i < n; i++) {
        const json_t *st = json_array_get(states, i);
        const char *name = tf_json_str(st, "name");
        snprintf(at, sizeof at, "/states/%zu", i);
        if (!reached[i])
            tf_problem_invalid(p, at, "state %s cannot be reached from the initial state", name);
        bool terminal = json_is_true(json_object_get(st, "terminal"));
        bool has_exit = false;
        size_t k;
        const json_t *t;
        json_array_foreach(transitions, k, t) has_exit = has_exit || wf_leaves(t, name);
        if (!terminal && !has_exit)
            tf_problem_invalid(p, at, "non-terminal state %s has no way out", name);
        const char *timeout = tf_json_str(st, "on_timeout");
        if (timeout) {
            const json_t *tt = wf_transition(def, timeout);
            if (!tt || !wf_leaves(tt, name)) {
                char sub[64];
                snprintf(sub, sizeof sub, "%s/on_timeout", at);
                tf_problem_invalid(p, sub, "must name a transition that leaves %s", name);
            }
            if (!tf_json_str(st, "sla")) {
                char sub[64];
                snprintf(sub, sizeof sub, "%s/sla", at);
                tf_problem_invalid(p, sub, "is required with on_timeout");
            }
        }
    }
}

bool wf_validate_definition(const json_t *body, bool key_required, const char *path_key,
                            tf_problem *p)
{
    const tf_json_field fields[] = {
        {"key", TF_JT_STRING, key_required, false},
        {"name", TF_JT_STRING, true, false},
        {"states", TF_JT_ARRAY, true, false},
        {"initial_state", TF_JT_STRING, true, false},
        {"transitions", TF_JT_ARRAY, true, false},
    };
    if (!tf_json_check(body, "", fields, sizeof fields / sizeof *fields, p)) {
        /* Element checks still help when only some members are wrong. */
        if (!json_is_object(body))
            return false;
    }
    const char *key = tf_json_str(body, "key");
    if (key && !tf_is_slug(key, 1, 63))
        tf_problem_invalid(p, "/key", "must match ^[a-z0-9][a-z0-9-]{0,62}$");
    if (key && path_key && strcmp(key, path_key) != 0)
        tf_problem_invalid(p, "/key", "must equal the key in the path");
    const char *name = tf_json_str(body, "name");
    if (name)
        (void)tf_check_text(name, "/name", 1, 200, p);
    const json_t *states = json_object_get(body, "states");
    const json_t *transitions = json_object_get(body, "transitions");
    if (!json_is_array(states) || !json_is_array(transitions))
        return false;
    if (json_array_size(states) == 0 || json_array_size(states) > WF_MAX_STATES)
        tf_problem_invalid(p, "/states", "must hold 1 to %d states", WF_MAX_STATES);
    if (json_array_size(transitions) > WF_MAX_TRANSITIONS)
        tf_problem_invalid(p, "/transitions", "must hold at most %d transitions",
                           WF_MAX_TRANSITIONS);
    if (tf_failed(p) && (json_array_size(states) == 0 || json_array_size(states) > WF_MAX_STATES ||
                         json_array_size(transitions) > WF_MAX_TRANSITIONS))
        return false;
    check_states(states, p);
    check_transitions(body, p);
    const char *initial = tf_json_str(body, "initial_state");
    if (initial && state_index(states, initial) < 0)
        tf_problem_invalid(p, "/initial_state", "must name one of the states");
    if (tf_failed(p))
        return false; /* the graph checks need every name to resolve */
    check_graph(body, p);
    return !tf_failed(p);
}
