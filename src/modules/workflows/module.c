/*
 * The workflows module's routes, each with the permission it needs. Firing a
 * transition needs items:write here and, when the transition names one, its
 * own permission, checked by the handler against the item's definition.
 */
#include <string.h>

#include "internal.h"

static const tf_route routes[] = {
    {"POST", "/v1/workflows", "workflows:write", wf_create_workflow, NULL,
     "Create a workflow (version 1)", 0, NULL},
    {"GET", "/v1/workflows", "workflows:read", wf_list_workflows, "limit,cursor",
     "List workflows (current versions)", 0, NULL},
    {"GET", "/v1/workflows/{key}", "workflows:read", wf_get_workflow, NULL,
     "Get a workflow's current version", 0, NULL},
    {"PUT", "/v1/workflows/{key}", "workflows:write", wf_put_workflow, NULL,
     "Publish a new version of a workflow (or create it)", 0, NULL},
    {"GET", "/v1/workflows/{key}/versions/{n}", "workflows:read", wf_get_version, NULL,
     "Get one version of a workflow", 0, NULL},
    {"GET", "/v1/items", "items:read", wf_list_items,
     "workflow,state,q,attributes,created_after,created_before,open,limit,cursor",
     "List items, newest first, with filters", 0, wf_prefetch_list},
    {"POST", "/v1/items", "items:write", wf_create_item, NULL, "Create an item", 0,
     wf_prefetch_create},
    {"GET", "/v1/items/{id}", "items:read", wf_get_item, NULL, "Get an item", 0,
     wf_prefetch_item},
    {"PATCH", "/v1/items/{id}", "items:write", wf_patch_item, NULL,
     "Merge-patch an item's title and attributes", 0, NULL},
    {"POST", "/v1/items/{id}/transitions", "items:write", wf_transition_item, NULL,
     "Fire a transition on an item", 0, wf_prefetch_transition},
    {"GET", "/v1/items/{id}/history", "items:read", wf_item_history, NULL,
     "An item's transitions, oldest first", 0, NULL},
};

bool workflows_register(tf_router *r, char *err, size_t errsz)
{
    return tf_router_add_all(r, routes, sizeof routes / sizeof *routes, err, errsz);
}

tf_job workflows_timer_job(unsigned interval_ms)
{
    tf_job job = {"workflow-timers", interval_ms, wf_timers_run, NULL, 0};
    return job;
}

const char *workflows_sql(const char *name, const char *filters)
{
    static const char *const names[] = {"workflow", "state", "created_after", "created_before",
                                        "q", "attributes", "open", "closed", "cursor"};
    if (strcmp(name, "timer-scan") == 0)
        return wf_timer_scan_sql();
    if (strcmp(name, "list-items") != 0)
        return NULL;
    unsigned mask = 0;
    const char *f = filters ? filters : "";
    while (*f) {
        size_t len = strcspn(f, ",");
        size_t i = 0;
        while (i < sizeof names / sizeof *names &&
               !(strlen(names[i]) == len && strncmp(names[i], f, len) == 0))
            i++;
        if (i == sizeof names / sizeof *names)
            return NULL;
        mask |= 1u << i;
        f += len + (f[len] == ',');
    }
    return wf_list_sql(mask);
}
