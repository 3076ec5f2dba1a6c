/* activation: how many experts each token gets (docs/metrics.md#activation).
 * k_t = kept experts of token t at one layer (ids >= 0, after capacity).
 * Everything is an integer histogram of k_t, so values do not depend on
 * chunking or merge order. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "routesim/metric.h"
#include "routesim/router.h"

enum { OUT_EXPERTS_PER_TOKEN, OUT_EXPERTS_PER_TOKEN_HIST, OUT_COMPUTE_RATIO };

static const rs_metric_output activation_outputs[] = {
    [OUT_EXPERTS_PER_TOKEN] = {"experts_per_token", "mean over tokens of k_t = |S_t| (kept experts)", 0, RS_AGG_MEAN,
                               .label = "experts per token"},
    [OUT_EXPERTS_PER_TOKEN_HIST] = {"experts_per_token_hist",
                                    "share of tokens with k_t = k (key k=0..kmax of the router)", 0, RS_AGG_MEAN,
                                    .label = "tokens", .unit = "%", .unit_scale = 100},
    [OUT_COMPUTE_RATIO] = {"compute_ratio",
                           "mean k_t / the trace's top_k attribute (the model's own k; absent: not reported)", 0,
                           RS_AGG_MEAN, .label = "compute ratio (k_t / top_k)"},
};

typedef struct activation_acc {
    int L, kmax;
    int native_k;   /* the trace's top_k, 0 when absent */
    int64_t *hist;  /* [L][kmax + 1]: valid tokens by k_t */
} activation_acc;

static void activation_destroy(void *p)
{
    activation_acc *a = p;
    if (a)
        free(a->hist);
    free(a);
}

static int activation_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    (void)params;
    activation_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric activation: out of memory");
    a->L = setup->trace->num_layers;
    a->kmax = setup->kmax > 0 ? setup->kmax : 0;
    a->native_k = setup->trace->top_k > 0 ? setup->trace->top_k : 0;
    a->hist = calloc((size_t)a->L * (size_t)(a->kmax + 1), sizeof *a->hist);
    if (!a->hist) {
        free(a);
        return rs_fail(err, "metric activation: out of memory");
    }
    *out = a;
    return 0;
}

/* k_t of one decision row: its kept experts among the first K slots. The
 * same function on the CPU and the device. */
static int activation_kept(const int32_t *ids, int K)
{
    int k = 0;
    for (int j = 0; j < K; j++)
        k += ids[j] >= 0;
    return k;
}

static void activation_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec,
                                    const rs_metric_ref *ref)
{
    (void)ref;
    activation_acc *a = p;
    int64_t *hist = a->hist + (size_t)layer * (size_t)(a->kmax + 1);
    const int K = dec->kmax < a->kmax ? dec->kmax : a->kmax;
    for (int t = 0; t < c->n; t++) {
        if (!rs_row_observed(c, dec, t, layer))
            continue;
        hist[activation_kept(dec->ids + rs_decision_row(c, dec, t, layer), K)]++;
    }
}

/* The histogram of the chunk counted on the device (atomic integer adds:
 * the order does not matter), then added to acc's. */
static int activation_update_device(void *p, const rs_device_chunk *c, const rs_decisions *dec)
{
    activation_acc *a = p;
    if (c->n == 0)
        return 0;
    const int L = c->L, width = a->kmax + 1, kmax = dec->kmax, K = dec->kmax < a->kmax ? dec->kmax : a->kmax;
    const size_t cells = (size_t)L * (size_t)width;
    int64_t *counts = calloc(cells, sizeof *counts);
    int64_t *hist = omp_target_alloc(cells * sizeof *hist, c->device);
    const int host = omp_get_initial_device();
    if (!counts || !hist || omp_target_memcpy(hist, counts, cells * sizeof *hist, 0, 0, c->device, host) != 0) {
        free(counts);
        if (hist)
            omp_target_free(hist, c->device);
        return -1;
    }
    const int32_t *ids = dec->ids;
    const uint8_t *valid = c->valid;
    const int64_t rows = (int64_t)c->n * L;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(hist, ids, valid)
    for (int64_t r = 0; r < rows; r++) {
        if (valid && valid[r / L] != 1)
            continue;
        const int64_t cell = (r % L) * width + activation_kept(ids + r * kmax, K);
#pragma omp atomic update
        hist[cell] += 1;
    }
    int rc = omp_target_memcpy(counts, hist, cells * sizeof *hist, 0, 0, host, c->device);
    omp_target_free(hist, c->device);
    if (rc == 0)
        for (size_t i = 0; i < cells; i++)
            a->hist[i] += counts[i];
    free(counts);
    return rc != 0 ? -1 : 0;
}

static int activation_merge(void *p, const void *q, rs_error *err)
{
    activation_acc *a = p;
    const activation_acc *b = q;
    RS_CHECK(a->L == b->L && a->kmax == b->kmax, err, "metric activation: merging unlike accumulators");
    size_t cells = (size_t)a->L * (size_t)(a->kmax + 1);
    for (size_t i = 0; i < cells; i++)
        a->hist[i] += b->hist[i];
    return 0;
}

static void activation_finalize(const void *p, rs_metric_sink *sink)
{
    const activation_acc *a = p;
    for (int l = 0; l < a->L; l++) {
        const int64_t *hist = a->hist + (size_t)l * (size_t)(a->kmax + 1);
        int64_t tokens = 0, experts = 0;
        for (int k = 0; k <= a->kmax; k++) {
            tokens += hist[k];
            experts += (int64_t)k * hist[k];
        }
        double mean = tokens > 0 ? (double)experts / (double)tokens : NAN;
        rs_metric_emit(sink, OUT_EXPERTS_PER_TOKEN, l, NULL, mean);
        for (int k = 0; k <= a->kmax; k++) {
            char key[32];
            snprintf(key, sizeof key, "k=%d", k);
            rs_metric_emit(sink, OUT_EXPERTS_PER_TOKEN_HIST, l, key,
                           tokens > 0 ? (double)hist[k] / (double)tokens : NAN);
        }
        if (a->native_k > 0)
            rs_metric_emit(sink, OUT_COMPUTE_RATIO, l, NULL,
                           tokens > 0 ? (double)experts / ((double)tokens * (double)a->native_k) : NAN);
    }
}

static void activation_checkpoint(void *p, rs_state_io *io)
{
    activation_acc *a = p;
    RS_STATE_ARRAY(io, a->hist, (size_t)a->L * (size_t)(a->kmax + 1));
}

static const rs_metric_type activation_type = {
    .name = "activation",
    .summary = "experts per token (mean and histogram) and compute relative to the model's own k",
    .source = "metrics.md; dynamic-k routing as in Dynamic_MoE arXiv:2403.07652 and XMoE arXiv:2403.18926",
    .params = NULL,
    .num_params = 0,
    .outputs = activation_outputs,
    .num_outputs = sizeof activation_outputs / sizeof activation_outputs[0],
    .needs = 0, /* decisions only: works on top-k-only traces */
    .create = activation_create,
    .update_layer = activation_update_layer,
    .merge = activation_merge,
    .finalize = activation_finalize,
    .destroy = activation_destroy,
    .checkpoint = activation_checkpoint,
    .update_device = activation_update_device,
};

const rs_metric_type *const rs_metric_activation = &activation_type;
