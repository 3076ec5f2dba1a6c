/* replay: the decisions a model actually made (/router/topk_ids of the
 * trace) or that another tool made (a decisions file), so every metric can
 * score recorded routing. Without recorded weights each valid expert gets
 * 1/k_t. A /router/topk_ids row of -1 only recorded nothing (an importer's
 * missing pair): it is replayed as RS_ID_UNOBSERVED, which every metric
 * leaves out. Decisions files are replayed as written (a row of -1 is a
 * token without experts, e.g. dropped by capacity; -3 a row not observed,
 * e.g. a skipped token's). */
#include <stdlib.h>
#include <string.h>

#include "routesim/router.h"
#include "workloads/trace/decisions_file.h"

typedef struct replay_state {
    int L, E;
    int query; /* unit = query: training markers allowed */
    rs_decisions_reader *file; /* NULL: replay the trace's own top-k */
    char *path;
    int file_k;
    int64_t chunk_t0; /* first token of the chunk read from the file */
    int32_t *ids;  /* the current chunk from the file [n, L, file_k] */
    float *weights;
    size_t capacity;
} replay_state;

static const rs_param_def replay_params[] = {
    {"decisions", RS_PARAM_STRING, NULL, 0, 0, NULL,
     "decisions file to replay (default: the trace's /router/topk_ids)"},
};

static void replay_destroy(void *state)
{
    replay_state *s = state;
    if (!s)
        return;
    rs_decisions_reader_close(s->file);
    free(s->path);
    free(s->ids);
    free(s->weights);
    free(s);
}

static int replay_create(void **state, rs_router_shape *shape, const rs_params *params,
                         const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    replay_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router replay: out of memory");
    s->L = tr->num_layers;
    s->E = tr->num_experts;
    s->query = strcmp(tr->unit, "query") == 0;
    const char *path = rs_param_str(params, "decisions");
    if (path) {
        int64_t T = 0;
        int L = 0;
        s->path = strdup(path);
        if (!s->path || rs_decisions_reader_open(&s->file, path, &T, &L, &s->file_k, err) != 0) {
            replay_destroy(s);
            return rs_fail_context(err, "router replay");
        }
        if (T != tr->num_tokens || L != tr->num_layers) {
            rs_fail(err, "router replay: %s: decisions cover [%lld tokens, %d layers], trace %s has [%lld, %d]",
                    path, (long long)T, L, tr->path, (long long)tr->num_tokens, tr->num_layers);
            replay_destroy(s);
            return -1;
        }
        shape->kmax = s->file_k;
    } else {
        if (tr->recorded_k == 0) {
            replay_destroy(s);
            return rs_fail(err,
                           "router replay: %s: /router/topk_ids: missing dataset (or give replay:decisions=FILE)",
                           tr->path);
        }
        shape->needs |= RS_NEEDS_TOPK;
        shape->kmax = tr->recorded_k;
    }
    shape->scoring = rs_scoring_of_name(tr->scoring); /* the model's routing, scored as the model scores */
    *state = s;
    return 0;
}

static int replay_prepare_chunk(void *state, const rs_chunk *c, rs_error *err)
{
    replay_state *s = state;
    if (!s->file)
        return 0;
    size_t count = (size_t)c->n * (size_t)c->L * (size_t)s->file_k;
    if (count > s->capacity) {
        int32_t *ids = realloc(s->ids, count * sizeof *ids);
        if (ids)
            s->ids = ids;
        float *w = realloc(s->weights, count * sizeof *w);
        if (w)
            s->weights = w;
        RS_CHECK(ids && w, err, "router replay: out of memory");
        s->capacity = count;
    }
    RS_TRY(rs_decisions_reader_read(s->file, c->t0, c->n, s->ids, s->weights, err));
    s->chunk_t0 = c->t0;
    /* query traces may mark training queries (RS_ID_TRAINING), any trace
     * rows not observed (RS_ID_UNOBSERVED, alone in its row): replayed as
     * they are */
    const int32_t lowest = s->query ? RS_ID_TRAINING : -1;
    const size_t per_token = (size_t)c->L * (size_t)s->file_k;
    for (size_t i = 0; i < count; i++) {
        const int32_t id = s->ids[i];
        if (id >= lowest && id < s->E)
            continue;
        const size_t slot = i % (size_t)s->file_k;
        const long long token = (long long)(c->t0 + (int64_t)(i / per_token));
        const int layer = (int)(i % per_token / (size_t)s->file_k);
        if (id == RS_ID_UNOBSERVED && slot == 0) {
            for (size_t j = 1; j < (size_t)s->file_k; j++)
                if (s->ids[i + j] != -1)
                    return rs_fail(err,
                                   "%s: /decisions/ids: token %lld, layer %d is marked not observed (-3) but lists "
                                   "expert %d",
                                   s->path, token, layer, s->ids[i + j]);
            continue;
        }
        return rs_fail(err, "%s: /decisions/ids: expert id %d at token %lld, layer %d is outside [%d, %d)", s->path,
                       id, token, layer, lowest, s->E);
    }
    return 0;
}

static void replay_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const replay_state *s = state;
    const int K = out->kmax;
    /* route_layer sees tiles (or layer bands) of the chunk prepare_chunk read, whose rows hold every layer */
    size_t skip = s->file ? (size_t)(c->t0 - s->chunk_t0) * (size_t)s->L * (size_t)K : 0;
    const int32_t *src_ids = s->file ? s->ids + skip : c->recorded_ids;
    const float *src_w = s->file ? s->weights + skip : c->recorded_weights;
    for (int t = 0; t < c->n; t++) {
        size_t row = rs_decision_row(c, out, t, layer); /* the trace's recorded rows have this layout too */
        size_t src = s->file ? ((size_t)t * (size_t)s->L + (size_t)layer) * (size_t)K : row;
        int32_t *ids = out->ids + row;
        float *w = out->weights + row;
        int valid = 0;
        for (int j = 0; j < K; j++) {
            ids[j] = src_ids[src + j];
            valid += ids[j] >= 0;
        }
        if (!valid && !s->file && !s->query)
            ids[0] = RS_ID_UNOBSERVED; /* the trace recorded nothing here */
        for (int j = 0; j < K; j++) {
            if (ids[j] < 0)
                w[j] = 0.0f;
            else
                w[j] = src_w ? src_w[src + j] : 1.0f / (float)valid;
        }
    }
}

static const rs_router_type replay_type = {
    .name = "replay",
    .summary = "the recorded decisions (/router/topk_ids or a decisions file)",
    .formula = "S = the recorded ids (-1 padding kept; a /router/topk_ids row of -1 only is not observed); w = "
               "recorded weights, else 1/k_t for each valid id",
    .source = "reference rule: what the model (or another tool) actually chose",
    .params = replay_params,
    .num_params = sizeof replay_params / sizeof replay_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = 0,
    .create = replay_create,
    .prepare_chunk = replay_prepare_chunk,
    .route_layer = replay_route_layer,
    .destroy = replay_destroy,
    .checkpoint = rs_router_no_state, /* scratch per group or chunk */
};

const rs_router_type *const rs_router_replay = &replay_type;
