#include "routers/common/router_params.h"

#include <string.h>

#include "routers/common/capacity.h"

enum { MAX_CACHED = 512 };

static struct cached_table {
    const rs_router_type *type;
    rs_param_def defs[RS_PARAMS_MAX];
    int count;
} cache[MAX_CACHED];
static int cached;

const rs_param_def *rs_router_param_defs(const rs_router_type *type, int *count, rs_error *err)
{
    for (int i = 0; i < cached; i++) {
        if (cache[i].type == type) {
            *count = cache[i].count;
            return cache[i].defs;
        }
    }
    if (cached == MAX_CACHED) {
        rs_fail(err, "too many router types");
        return NULL;
    }
    struct cached_table *t = &cache[cached];
    int n = 0;
    for (int i = 0; i < type->num_params; i++) {
        if (n == RS_PARAMS_MAX)
            goto too_many;
        t->defs[n++] = type->params[i];
    }
    if (type->flags & RS_ROUTER_TOKEN_CHOICE) {
        for (int i = 0; i < rs_capacity_num_params; i++) {
            int own = 0;
            for (int j = 0; j < type->num_params && !own; j++)
                own = strcmp(type->params[j].name, rs_capacity_param_defs[i].name) == 0;
            if (own)
                continue;
            if (n == RS_PARAMS_MAX)
                goto too_many;
            t->defs[n++] = rs_capacity_param_defs[i];
        }
    }
    t->type = type;
    t->count = n;
    cached++;
    *count = n;
    return t->defs;
too_many:
    rs_fail(err, "router %s: more than %d parameters", type->name, RS_PARAMS_MAX);
    return NULL;
}

/* Values given by the descriptor itself count as defaults, not as the user's. */
static int apply_defaults(rs_params *p, const char *list, rs_error *err)
{
    if (!list || !list[0])
        return 0;
    RS_TRY(rs_params_parse_list(p, list, err));
    for (int i = 0; i < p->n; i++)
        p->v[i].explicit_ = 0;
    return 0;
}

int rs_router_params_init(rs_params *p, const rs_router_type *type, const rs_router_type **base, const char *owner,
                          rs_error *err)
{
    const rs_router_type *runs = type;
    if (type->flags & RS_ROUTER_PRESET) {
        runs = type->preset_of ? rs_router_find(type->preset_of) : NULL;
        RS_CHECK(runs && !(runs->flags & RS_ROUTER_PRESET), err, "preset %s: base router '%s' not found", type->name,
                 type->preset_of ? type->preset_of : "(none)");
    }
    int n = 0;
    const rs_param_def *defs = rs_router_param_defs(runs, &n, err);
    if (!defs)
        return -1;
    RS_TRY(rs_params_init(p, defs, n, owner, err));
    if (apply_defaults(p, runs->capacity_defaults, err) != 0 ||
        ((type->flags & RS_ROUTER_PRESET) && apply_defaults(p, type->preset_params, err) != 0)) {
        rs_params_free(p);
        return rs_fail_context(err, "defaults of %s", type->name);
    }
    if (base)
        *base = runs;
    return 0;
}

unsigned long long rs_router_param_mask(const rs_router_type *type, const rs_params *p)
{
    unsigned long long mask = p->n >= 64 ? ~0ULL : (1ULL << p->n) - 1;
    if (!(type->flags & RS_ROUTER_TOKEN_CHOICE))
        return mask;
    int stage_on = 0;
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->defs[i].name, "capacity_factor") == 0)
            stage_on = p->v[i].set;
    if (stage_on)
        return mask;
    for (int i = type->num_params; i < p->n; i++) /* the stage's parameters follow the router's own */
        mask &= ~(1ULL << i);
    return mask;
}
