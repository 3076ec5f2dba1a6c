/* Callback routers: routers whose decisions come from a host program
 * (include/routesim/embed.h), e.g. a numpy function through python/routesim.
 * Each registration makes one descriptor at run time; the engine treats it as
 * a token-choice router like any built-in one. route_layer hands the host one
 * layer of consecutive tokens as plain arrays, then checks every row the host
 * wrote; a failure is recorded and reported by check_chunk, which stops the
 * run. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routers/common/router_params.h"
#include "routers/registry.h"
#include "routesim/embed.h"
#include "routesim/router.h"

enum { MAX_CALLBACK_PARAMS = 24, MSG_MAX = 700 };

/* One registration: the descriptor and everything it points to. Never
 * freed: specs parsed before a re-registration may still point to it. */
typedef struct callback_entry {
    rs_router_type type;
    rs_param_def defs[MAX_CALLBACK_PARAMS];
    char *strings; /* names and defaults of defs, NUL-separated */
    char *name, *summary;
    int kmax;
    rs_block_fn fn;
    void *user;
} callback_entry;

typedef struct callback_state {
    const callback_entry *entry;
    char params[1024];
    int L, E, kmax;
    /* per token of the current chunk, from prepare_chunk */
    int64_t chunk_t0;
    int capacity;
    int64_t *sequence, *position;
    pthread_mutex_t lock;
    int failed;
    char msg[MSG_MAX + 200];
} callback_state;

static int is_integer(const char *text)
{
    char *end;
    errno = 0;
    (void)strtoll(text, &end, 10);
    return errno == 0 && end != text && *end == '\0';
}

static int is_number(const char *text)
{
    char *end;
    double v = strtod(text, &end);
    return end != text && *end == '\0' && isfinite(v);
}

/* "k=2,temperature=1.0,greedy=true,mode=fast" -> typed rows. */
static int parse_param_list(callback_entry *e, const char *list, rs_error *err)
{
    e->type.num_params = 0;
    if (!list || !list[0])
        return 0;
    e->strings = strdup(list);
    RS_CHECK(e->strings, err, "out of memory");
    char *save = NULL;
    for (char *item = strtok_r(e->strings, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        RS_CHECK(eq && eq != item, err, "router %s: parameter '%s' is not name=default", e->name, item);
        *eq = '\0';
        RS_CHECK(e->type.num_params < MAX_CALLBACK_PARAMS, err, "router %s: more than %d parameters", e->name,
                 MAX_CALLBACK_PARAMS);
        for (int i = 0; i < e->type.num_params; i++)
            RS_CHECK(strcmp(e->defs[i].name, item) != 0, err, "router %s: parameter %s given twice", e->name, item);
        rs_param_def *d = &e->defs[e->type.num_params++];
        const char *value = eq + 1;
        *d = (rs_param_def){.name = item, .default_value = value, .help = "a parameter of the callback router"};
        if (is_integer(value)) {
            d->kind = RS_PARAM_INT;
            d->min = -9.0e15; /* every integer a double holds exactly */
            d->max = 9.0e15;
        } else if (is_number(value)) {
            d->kind = RS_PARAM_FLOAT;
            d->min = -DBL_MAX;
            d->max = DBL_MAX;
        } else if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0) {
            d->kind = RS_PARAM_BOOL;
        } else {
            d->kind = RS_PARAM_STRING;
        }
    }
    return 0;
}

static int callback_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                           rs_error *err);
static int callback_prepare_chunk(void *state, const rs_chunk *c, rs_error *err);
static void callback_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out);
static int callback_check_chunk(void *state, rs_error *err);
static void callback_destroy(void *state);

/* Every registration in order (replaced ones too: specs parsed before a
 * replacement still create from them); the latest of a name is registered. */
enum { MAX_ENTRIES = 1024 };
static callback_entry *entries[MAX_ENTRIES];
static int num_entries;

int rs_callback_router_register(const rs_callback_router *desc, rs_error *err)
{
    RS_CHECK(desc && desc->struct_size == sizeof(rs_callback_router), err,
             "callback router: descriptor of %zu bytes, this routesim expects %zu (rebuild the binding)",
             desc ? desc->struct_size : 0, sizeof(rs_callback_router));
    RS_CHECK(desc->name && desc->name[0] && strcspn(desc->name, ":,; =") == strlen(desc->name), err,
             "callback router: name '%s' must be non-empty without ':', ',', ';', '=' or spaces",
             desc->name ? desc->name : "");
    RS_CHECK(desc->fn, err, "router %s: no callback function", desc->name);
    RS_CHECK(desc->kmax >= 1 && desc->kmax <= 1024, err, "router %s: kmax %d out of range [1, 1024]", desc->name,
             desc->kmax);
    const rs_router_type *existing = rs_router_find(desc->name);
    int replaces = 0;
    for (int i = 0; i < num_entries && existing; i++)
        replaces |= existing == &entries[i]->type;
    RS_CHECK(!existing || replaces, err, "router %s: a built-in or plugin router has this name", desc->name);
    RS_CHECK(num_entries < MAX_ENTRIES, err, "too many callback routers (at most %d registrations)", MAX_ENTRIES);

    callback_entry *e = calloc(1, sizeof *e);
    RS_CHECK(e, err, "out of memory");
    e->name = strdup(desc->name);
    e->summary = strdup(desc->summary && desc->summary[0] ? desc->summary : "a router written in the host program");
    if (!e->name || !e->summary) {
        free(e->name);
        free(e->summary);
        free(e);
        return rs_fail(err, "out of memory");
    }
    if (parse_param_list(e, desc->params, err) != 0) {
        free(e->strings);
        free(e->name);
        free(e->summary);
        free(e);
        return -1;
    }
    e->kmax = desc->kmax;
    e->fn = desc->fn;
    e->user = desc->user;
    e->type = (rs_router_type){
        .name = e->name,
        .summary = e->summary,
        .formula = "decided by the host program's function (embed.h: rs_callback_router)",
        .source = "callback router (python/routesim Router or another host)",
        .params = e->defs,
        .num_params = e->type.num_params,
        .flags = RS_ROUTER_TOKEN_CHOICE | (desc->stateful ? RS_ROUTER_STATEFUL : RS_ROUTER_CAUSAL),
        .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS | RS_WANTS_TOKEN_IDS | RS_WANTS_PHASE,
        .create = callback_create,
        .prepare_chunk = callback_prepare_chunk,
        .route_layer = callback_route_layer,
        .destroy = callback_destroy,
        .check_chunk = callback_check_chunk,
        /* the host keeps a stateful function's state: such passes have no checkpoints */
        .checkpoint = desc->stateful ? NULL : rs_router_no_state,
    };
    /* A stateful host function may look back at earlier tokens: not causal
     * as far as the engine can tell. A per-token one sees only its block. */
    int rc = replaces ? rs_router_replace(existing, &e->type, err) : rs_router_register(&e->type, err);
    if (rc != 0) {
        free(e->strings);
        free(e->name);
        free(e->summary);
        free(e);
        return -1;
    }
    entries[num_entries++] = e;
    return 0;
}

static int callback_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                           rs_error *err)
{
    /* create does not learn its descriptor, but params->defs is the
     * descriptor's combined parameter table, cached per descriptor. */
    const callback_entry *e = NULL;
    for (int i = num_entries - 1; i >= 0 && !e; i--) {
        int n = 0;
        if (rs_router_param_defs(&entries[i]->type, &n, err) == params->defs)
            e = entries[i];
    }
    RS_CHECK(e, err, "%s: not a registered callback router", params->owner);
    callback_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "out of memory");
    s->entry = e;
    s->L = setup->trace->num_layers;
    s->E = setup->trace->num_experts;
    s->kmax = e->kmax;
    unsigned long long own = e->type.num_params >= 64 ? ~0ULL : (1ULL << e->type.num_params) - 1;
    rs_params_format(params, own, 0, ",", s->params, sizeof s->params);
    pthread_mutex_init(&s->lock, NULL);
    shape->kmax = e->kmax;
    /* The capacity stage's k (C = factor * group_tokens * k / E): a
     * parameter named k when the router has one (a top-k rule's k may be
     * below kmax), else kmax. */
    for (int i = 0; i < e->type.num_params; i++)
        if (strcmp(e->defs[i].name, "k") == 0 && e->defs[i].kind == RS_PARAM_INT) {
            long long k = rs_param_int(params, "k");
            if (k < 1 || k > e->kmax) {
                callback_destroy(s);
                return rs_fail(err, "router %s: parameter k=%lld out of range [1, kmax = %d]", e->name, k, e->kmax);
            }
            shape->capacity_k = (int)k;
        }
    *state = s;
    return 0;
}

/* Sequence index and position of every token of the chunk, for the blocks. */
static int callback_prepare_chunk(void *state, const rs_chunk *c, rs_error *err)
{
    callback_state *s = state;
    if (c->n > s->capacity) {
        int64_t *seq = realloc(s->sequence, (size_t)c->n * sizeof *seq);
        if (seq)
            s->sequence = seq;
        int64_t *pos = seq ? realloc(s->position, (size_t)c->n * sizeof *pos) : NULL;
        if (pos)
            s->position = pos;
        RS_CHECK(seq && pos, err, "router %s: out of memory", s->entry->name);
        s->capacity = c->n;
    }
    for (int t = 0; t < c->n; t++) {
        int w = c->seq_of_token[t];
        s->sequence[t] = c->first_seq + w;
        s->position[t] = c->t0 + t - c->seq_offsets[w];
    }
    s->chunk_t0 = c->t0;
    return 0;
}

static void record_failure(callback_state *s, const rs_chunk *c, int layer, const char *reason)
{
    pthread_mutex_lock(&s->lock);
    if (!s->failed) {
        s->failed = 1;
        snprintf(s->msg, sizeof s->msg, "layer %d, tokens %lld..%lld: %s", layer, (long long)c->t0,
                 (long long)(c->t0 + c->n - 1), reason);
    }
    pthread_mutex_unlock(&s->lock);
}

/* The rows the host wrote: ids in [-1, E), no expert twice, finite weights. */
static int check_rows(const rs_block *b, char *msg, size_t size)
{
    for (int t = 0; t < b->n; t++) {
        const int32_t *ids = b->ids + (size_t)t * b->out_stride;
        const float *w = b->weights + (size_t)t * b->out_stride;
        for (int j = 0; j < b->kmax; j++) {
            if (ids[j] < -1 || ids[j] >= b->num_experts) {
                snprintf(msg, size, "token %lld: expert id %d out of range [0, %d) (-1 pads)", (long long)(b->t0 + t),
                         ids[j], b->num_experts);
                return -1;
            }
            if (!isfinite(w[j])) {
                snprintf(msg, size, "token %lld: weight %g is not finite", (long long)(b->t0 + t), (double)w[j]);
                return -1;
            }
            for (int i = 0; i < j; i++) {
                if (ids[j] >= 0 && ids[i] == ids[j]) {
                    snprintf(msg, size, "token %lld: expert %d chosen twice", (long long)(b->t0 + t), ids[j]);
                    return -1;
                }
            }
        }
    }
    return 0;
}

static void callback_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    callback_state *s = state;
    const size_t first = rs_decision_row(c, out, 0, layer);
    const size_t stride = (size_t)c->L * (size_t)out->kmax;
    for (int t = 0; t < c->n; t++) {
        for (int j = 0; j < out->kmax; j++) {
            out->ids[first + (size_t)t * stride + (size_t)j] = -1;
            out->weights[first + (size_t)t * stride + (size_t)j] = 0.0f;
        }
    }
    pthread_mutex_lock(&s->lock);
    int failed = s->failed;
    pthread_mutex_unlock(&s->lock);
    if (failed || c->n == 0)
        return; /* the run stops after this chunk */
    const size_t off = (size_t)(c->t0 - s->chunk_t0);
    rs_block b = {
        .layer = layer,
        .num_layers = s->L, /* c->L counts only the layers a band view holds */
        .num_experts = c->E,
        .kmax = out->kmax,
        .t0 = c->t0,
        .n = c->n,
        .logits = rs_chunk_logits(c, 0, layer),
        .logits_stride = (size_t)c->L * (size_t)c->E,
        .probs = rs_chunk_probs(c, 0, layer),
        .probs_stride = (c->stat_token_stride) * (size_t)c->E,
        .token_ids = c->token_ids,
        .sequence = s->sequence + off,
        .position = s->position + off,
        .phase = c->phase,
        .ids = out->ids + first,
        .weights = out->weights + first,
        .out_stride = stride,
        .params = s->params,
        .user = s->entry->user,
    };
    char msg[MSG_MAX] = "";
    int bad = s->entry->fn(&b, msg, sizeof msg) != 0;
    if (bad && !msg[0])
        snprintf(msg, sizeof msg, "the callback failed (no reason given)");
    bad = bad || check_rows(&b, msg, sizeof msg) != 0;
    if (bad)
        record_failure(s, c, layer, msg);
    if (bad) /* no half-written rows reach the capacity stage or metrics */
        for (int t = 0; t < c->n; t++)
            for (int j = 0; j < out->kmax; j++)
                out->ids[first + (size_t)t * stride + (size_t)j] = -1;
}

static int callback_check_chunk(void *state, rs_error *err)
{
    callback_state *s = state;
    return s->failed ? rs_fail(err, "router %s: %s", s->entry->name, s->msg) : 0;
}

static void callback_destroy(void *state)
{
    callback_state *s = state;
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s->sequence);
    free(s->position);
    free(s);
}
