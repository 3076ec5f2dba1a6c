/* The device path: buffers in the offload device's memory, the chunk's
 * upload (16-bit rows widened there), the softmax there, the routers' and
 * metrics' device hooks, then the decisions back into each router's dec
 * where the CPU reads them. Target regions run on the host when the device
 * is the host (ROUTESIM_ALLOW_HOST_FALLBACK=1), with the same code. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/progress.h"
#include "sim/engine/engine_device.h"
#include "sim/engine/engine_internal.h"
#include "sim/engine/softmax_core.h"
#include "workloads/trace/half.h"

typedef struct rs_engine engine;

struct rs_device_state {
    int device;
    int needs_probs;  /* some router on the device reads probabilities */
    int widens;       /* the device widens and checks every chunk (rs_engine_device_widens) */
    int64_t checked_t0; /* first token of the chunk the check left on the device; -1: none */
    int64_t capacity; /* tokens the buffers hold */
    float *logits, *probs, *bias;
    float *row_max; /* [n, L] softmax statistics of each row, with probs */
    double *row_sum, *row_dot;
    uint16_t *stored; /* 16-bit logits as the trace stores them (bf16, f16), widened on the device */
    rs_logits_dtype dtype;
    uint8_t *valid;
    int32_t *token_ids;
    int32_t *row_bad, *token_bad; /* the check's first non-finite position per row [n, L] and per token [n] */
    int32_t *host_bad;            /* [capacity]: token_bad brought back */
    int32_t **ids; /* [num_routers]: decisions of the routers on the device, NULL for the others */
    float **weights;
    /* what the pass moved and computed, for the line at its end */
    int64_t chunks;
    double upload_bytes, upload_seconds, route_seconds;
};

static void device_release(int device, void *p)
{
    if (p)
        omp_target_free(p, device);
}

static void free_chunk_buffers(engine *e, struct rs_device_state *d)
{
    device_release(d->device, d->logits);
    device_release(d->device, d->stored);
    device_release(d->device, d->probs);
    device_release(d->device, d->row_max);
    device_release(d->device, d->row_sum);
    device_release(d->device, d->row_dot);
    device_release(d->device, d->valid);
    device_release(d->device, d->token_ids);
    device_release(d->device, d->row_bad);
    device_release(d->device, d->token_bad);
    free(d->host_bad);
    d->row_bad = d->token_bad = d->host_bad = NULL;
    for (int r = 0; r < e->num_routers; r++) {
        device_release(d->device, d->ids[r]);
        device_release(d->device, d->weights[r]);
        d->ids[r] = NULL;
        d->weights[r] = NULL;
    }
    d->logits = d->probs = d->row_max = NULL;
    d->row_sum = d->row_dot = NULL;
    d->stored = NULL;
    d->valid = NULL;
    d->token_ids = NULL;
    d->capacity = 0;
}

void rs_engine_device_free(engine *e)
{
    struct rs_device_state *d = e->device;
    if (!d)
        return;
    if (d->chunks > 0) /* what scripts/gpu-check.sh reads: the transfer rate this pass achieved */
        fprintf(stderr,
                "routesim: device gpu: %lld chunks, %.0f bytes of logits to the device in %.6f s (%.3f GB/s); "
                "kernels and decisions back in %.6f s\n",
                (long long)d->chunks, d->upload_bytes, d->upload_seconds,
                d->upload_seconds > 0 ? d->upload_bytes / d->upload_seconds / 1e9 : 0.0, d->route_seconds);
    if (d->ids)
        free_chunk_buffers(e, d);
    device_release(d->device, d->bias);
    free(d->ids);
    free(d->weights);
    free(d);
    e->device = NULL;
}

static void *device_alloc(int device, size_t bytes) { return omp_target_alloc(bytes ? bytes : 1, device); }

static int upload(int device, void *dst, const void *src, size_t bytes, rs_error *err)
{
    if (bytes == 0)
        return 0;
    if (omp_target_memcpy(dst, (void *)src, bytes, 0, 0, device, omp_get_initial_device()) != 0)
        return rs_fail(err, "--device gpu: copying %zu bytes to the device failed", bytes);
    return 0;
}

static int download(int device, void *dst, const void *src, size_t bytes, rs_error *err)
{
    if (bytes == 0)
        return 0;
    if (omp_target_memcpy(dst, (void *)src, bytes, 0, 0, omp_get_initial_device(), device) != 0)
        return rs_fail(err, "--device gpu: copying %zu bytes from the device failed", bytes);
    return 0;
}

/* Device buffers for chunks of n tokens. */
static int reserve(engine *e, struct rs_device_state *d, int64_t n, rs_error *err)
{
    if (n <= d->capacity)
        return 0;
    free_chunk_buffers(e, d);
    const size_t cells = (size_t)n * (size_t)e->L * (size_t)e->E;
    d->logits = e->needs & RS_NEEDS_LOGITS ? device_alloc(d->device, cells * sizeof(float)) : NULL;
    const int sixteen = (e->needs & RS_NEEDS_LOGITS) && d->dtype != RS_LOGITS_F32;
    d->stored = sixteen ? device_alloc(d->device, cells * sizeof(uint16_t)) : NULL;
    d->probs = d->needs_probs ? device_alloc(d->device, cells * sizeof(float)) : NULL;
    const size_t rows = (size_t)n * (size_t)e->L;
    d->row_max = d->needs_probs ? device_alloc(d->device, rows * sizeof(float)) : NULL;
    d->row_sum = d->needs_probs ? device_alloc(d->device, rows * sizeof(double)) : NULL;
    d->row_dot = d->needs_probs ? device_alloc(d->device, rows * sizeof(double)) : NULL;
    d->valid = device_alloc(d->device, (size_t)n);
    d->token_ids = device_alloc(d->device, (size_t)n * sizeof(int32_t));
    if (d->widens) {
        d->row_bad = device_alloc(d->device, rows * sizeof(int32_t));
        d->token_bad = device_alloc(d->device, (size_t)n * sizeof(int32_t));
        d->host_bad = malloc((size_t)n * sizeof(int32_t));
    }
    int ok = (!d->widens || (d->row_bad && d->token_bad && d->host_bad)) && (d->logits || !(e->needs & RS_NEEDS_LOGITS)) && (d->stored || !sixteen) && (d->probs || !d->needs_probs) &&
             ((d->row_max && d->row_sum && d->row_dot) || !d->needs_probs) && d->valid && d->token_ids;
    for (int r = 0; r < e->num_routers && ok; r++) {
        if (!e->routers[r].on_device)
            continue;
        const size_t slots = (size_t)n * (size_t)e->L * (size_t)e->routers[r].shape.kmax;
        d->ids[r] = device_alloc(d->device, slots * sizeof(int32_t));
        d->weights[r] = device_alloc(d->device, slots * sizeof(float));
        ok = d->ids[r] && d->weights[r];
    }
    if (!ok) {
        free_chunk_buffers(e, d);
        return rs_fail(err, "--device gpu: out of device memory for a chunk of %lld tokens (try a smaller "
                            "--chunk-tokens or --memory-mb)", (long long)n);
    }
    d->capacity = n;
    return 0;
}

/* Whether router r can route on the device: it has a hook, decides token
 * by token and accepts its configuration there (asked with n = 0), first
 * without the host's logits; *host_logits: only with them (it finishes
 * rows on the host from them). */
static int wants_device(engine *e, struct rs_device_state *d, int r, int *host_logits)
{
    router_slot *rs = &e->routers[r];
    const rs_router_type *t = rs->spec->type;
    *host_logits = 0;
    if (!t->route_device || (t->flags & (RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED)) ||
        rs->shape.group != RS_GROUP_NONE || ((rs->shape.needs & RS_NEEDS_TOPK) != 0))
        return 0;
    static const float any_logits[1];
    rs_device_chunk probe = {.device = d->device, .t0 = 0, .n = 0, .L = e->L, .E = e->E};
    rs_decisions none = {.kmax = rs->shape.kmax};
    if (t->route_device(rs->state, &probe, &none) == 0)
        return 1;
    probe.host_logits = any_logits;
    *host_logits = t->route_device(rs->state, &probe, &none) == 0;
    return *host_logits;
}

/* Whether metric slot m can be measured on the device: its family has a
 * hook that accepts, its router routes there without a capacity stage, and
 * it measures all tokens of its own router. */
static int metric_wants_device(engine *e, struct rs_device_state *d, int m)
{
    metric_slot *ms = &e->metrics[m];
    const rs_metric_type *t = ms->spec->type;
    const router_slot *rs = &e->routers[ms->router];
    if (!t->update_device || !rs->on_device || rs->capacity.enabled || ms->by >= 0 || (t->flags & RS_METRIC_REFERENCE))
        return 0;
    rs_device_chunk probe = {.device = d->device, .t0 = 0, .n = 0, .L = e->L, .E = e->E};
    rs_decisions none = {.kmax = rs->shape.kmax};
    return t->update_device(ms->acc, &probe, &none) == 0;
}

/* Appends name to a comma-separated list unless it is there. */
static void list_add(char *list, size_t size, const char *name)
{
    for (const char *at = strstr(list, name); at; at = strstr(at + 1, name)) {
        size_t n = strlen(name);
        if ((at == list || at[-1] == ' ') && (at[n] == ',' || at[n] == '\0'))
            return;
    }
    size_t used = strlen(list);
    snprintf(list + used, size - used, "%s%s", used ? ", " : "", name);
}

static int host_needs_probs(const engine *e, int planned);

/* One line: the device, which routers and metrics run on it, and whether
 * the host still computes the softmax of each chunk. */
static void say_where(engine *e, const struct rs_device_state *d, int fallback)
{
    char on[512] = "", off[512] = "", metrics[512] = "";
    for (int r = 0; r < e->num_routers; r++)
        list_add(e->routers[r].on_device ? on : off, sizeof on, e->routers[r].spec->type->name);
    for (int m = 0; m < e->num_metric_slots; m++)
        if (e->metrics[m].on_device)
            list_add(metrics, sizeof metrics, e->metrics[m].spec->type->name);
    if (fallback)
        fprintf(stderr, "routesim: device gpu: no usable offload device, target regions run on the host (%s=1);",
                RS_HOST_FALLBACK_ENV);
    else
        fprintf(stderr, "routesim: device gpu: OpenMP device %d of %d;", d->device, omp_get_num_devices());
    fprintf(stderr, " on the device: %s%s%s%s%s%s; on the CPU: routers %s, capacity stage and %smetrics",
            d->needs_probs ? "softmax" : "", d->needs_probs && on[0] ? ", " : "", on[0] ? "routers " : "",
            on[0] ? on : d->needs_probs ? "" : "nothing", metrics[0] ? ", metrics " : "", metrics,
            off[0] ? off : "(none)", metrics[0] ? "other " : "");
    fprintf(stderr, "; softmax on the host: %s; logits widened and checked on the %s\n",
            (e->needs & RS_NEEDS_PROBS) && (host_needs_probs(e, 1) || !on[0]) ? "yes" : "no",
            d->widens ? "device" : "host");
}

/* Whether nothing on the CPU reads a chunk's float logits: every router
 * routes on the device without the host's logits and without a capacity
 * stage, every metric that reads logits or probabilities is measured there,
 * and there is no reference (its metrics, or a paired engine, read them). */
static int device_can_widen(const engine *e, int host_logits)
{
    if (!(e->needs & RS_NEEDS_LOGITS) || host_logits || e->num_routers == 0 || e->ref_router >= 0 || e->paired ||
        e->extra_needs)
        return 0;
    for (int r = 0; r < e->num_routers; r++)
        if (!e->routers[r].on_device || e->routers[r].capacity.enabled)
            return 0;
    for (int m = 0; m < e->num_metric_slots; m++)
        if (!e->metrics[m].on_device &&
            (e->metrics[m].spec->type->needs & (RS_NEEDS_LOGITS | RS_NEEDS_PROBS | RS_WANTS_PROBS)))
            return 0;
    return 1;
}

int rs_engine_device_widens(const engine *e) { return e->device && e->device->widens; }

/* Whether a target region on the device runs there: libgomp runs a region
 * on the host, silently, when the binary holds no code for the device (a
 * build without GPU=1 on a machine with a GPU), where it would then read
 * device memory through host pointers. */
static int device_runs_regions(int device)
{
    int on_host = 1;
#pragma omp target device(device) map(from : on_host)
    on_host = omp_is_initial_device();
    return !on_host;
}

int rs_engine_device_setup(engine *e, rs_error *err)
{
    const char *allow = getenv(RS_HOST_FALLBACK_ENV);
    const int found = omp_get_num_devices() > 0;
    const int fallback = !found || !device_runs_regions(omp_get_default_device());
    RS_CHECK(!fallback || (allow && strcmp(allow, "1") == 0), err,
             "--device gpu: %s; set %s=1 to run the device path on the host",
             found ? "this binary holds no code for the GPU it found (build it with make GPU=1)"
                   : "no GPU found (no OpenMP offload device; a binary of make GPU=1 and a GPU driver are needed)",
             RS_HOST_FALLBACK_ENV);
    struct rs_device_state *d = calloc(1, sizeof *d);
    RS_CHECK(d, err, "out of memory");
    e->device = d;
    d->device = fallback ? omp_get_initial_device() : omp_get_default_device();
    d->dtype = rs_trace_logits_dtype(e->trace);
    d->ids = calloc((size_t)e->num_routers + 1, sizeof *d->ids);
    d->weights = calloc((size_t)e->num_routers + 1, sizeof *d->weights);
    RS_CHECK(d->ids && d->weights, err, "out of memory");
    int host_logits = 0;
    for (int r = 0; r < e->num_routers; r++) {
        int reads_host_logits;
        e->routers[r].on_device = wants_device(e, d, r, &reads_host_logits);
        host_logits |= reads_host_logits;
        if (e->routers[r].on_device && (e->routers[r].shape.needs & RS_NEEDS_PROBS))
            d->needs_probs = 1;
    }
    for (int m = 0; m < e->num_metric_slots; m++) {
        metric_slot *ms = &e->metrics[m];
        ms->on_device = metric_wants_device(e, d, m);
        if (ms->on_device && (ms->spec->type->needs & (RS_NEEDS_PROBS | RS_WANTS_PROBS)) && e->info->has_logits)
            d->needs_probs = 1;
    }
    d->widens = device_can_widen(e, host_logits);
    d->checked_t0 = -1;
    if (e->bias) {
        const size_t bytes = (size_t)e->L * (size_t)e->E * sizeof(float);
        d->bias = device_alloc(d->device, bytes);
        RS_CHECK(d->bias, err, "--device gpu: out of device memory");
        RS_TRY(upload(d->device, d->bias, e->bias, bytes, err));
    }
    say_where(e, d, fallback);
    return 0;
}

/* Float32 logits from the trace's 16-bit words, on the device: the rules
 * of workloads/trace/half.c, so the floats equal the host's widening. */
static void widen(int device, const uint16_t *stored, float *logits, size_t cells, int half)
{
#pragma omp target teams distribute parallel for device(device) is_device_ptr(stored, logits)
    for (size_t i = 0; i < cells; i++)
        logits[i] = half ? rs_half_to_float(stored[i]) : rs_bf16_to_float(stored[i]);
}

/* Softmax of every row of the chunk on the device: the probabilities the
 * CPU's rs_softmax_row writes, bit for bit (the same rs_softmax_core), and
 * each row's maximum and sums, from which the host takes the logarithms
 * (log-sum-exp, entropy) as rs_softmax_row does. */
static void softmax_rows(int device, const float *logits, float *probs, float *row_max, double *row_sum,
                         double *row_dot, int64_t rows, int E)
{
#pragma omp target teams distribute parallel for device(device) is_device_ptr(logits, probs, row_max, row_sum, row_dot)
    for (int64_t r = 0; r < rows; r++)
        row_max[r] = rs_softmax_core(logits + r * E, probs + r * E, E, &row_sum[r], &row_dot[r]);
}

/* Each row's first non-finite logit, then each token's (layer-major
 * position l * E + e, or -1), on the device; valid[t] = no such value. */
static void find_nonfinite(int device, const float *logits, int32_t *row_bad, int32_t *token_bad, uint8_t *valid,
                           int64_t n, int L, int E)
{
    const int64_t rows = n * L;
#pragma omp target teams distribute parallel for device(device) is_device_ptr(logits, row_bad)
    for (int64_t r = 0; r < rows; r++) {
        const float *z = logits + r * E;
        int32_t bad = -1;
        for (int e = 0; e < E && bad < 0; e++)
            if ((rs_float_bits(z[e]) & 0x7f800000u) == 0x7f800000u)
                bad = e;
        row_bad[r] = bad;
    }
#pragma omp target teams distribute parallel for device(device) is_device_ptr(row_bad, token_bad, valid)
    for (int64_t t = 0; t < n; t++) {
        int32_t bad = -1;
        for (int l = 0; l < L && bad < 0; l++)
            if (row_bad[t * L + l] >= 0)
                bad = l * E + row_bad[t * L + l];
        token_bad[t] = bad;
        valid[t] = bad < 0;
    }
}

int rs_engine_device_check(engine *e, rs_loaded_chunk *b, int64_t *skipped, int *any_invalid, rs_error *err)
{
    struct rs_device_state *d = e->device;
    RS_TRY(reserve(e, d, b->n, err));
    const double t_upload = rs_now();
    const int64_t n = b->n;
    const size_t per_token = (size_t)e->L * (size_t)e->E, cells = (size_t)n * per_token;
    const size_t bytes = cells * (b->stored ? sizeof(uint16_t) : sizeof(float));
    if (b->stored)
        RS_TRY(upload(d->device, d->stored, b->stored, bytes, err));
    else
        RS_TRY(upload(d->device, d->logits, b->logits, bytes, err));
    const double t_check = rs_now();
    d->upload_seconds += t_check - t_upload;
    d->upload_bytes += (double)bytes;
    if (b->stored)
        widen(d->device, d->stored, d->logits, cells, d->dtype == RS_LOGITS_F16);
    find_nonfinite(d->device, d->logits, d->row_bad, d->token_bad, d->valid, n, e->L, e->E);
    RS_TRY(download(d->device, d->host_bad, d->token_bad, (size_t)n * sizeof(int32_t), err));
    d->route_seconds += rs_now() - t_check;
    d->checked_t0 = b->t0;
    int64_t bad_tokens = 0, first = -1;
    for (int64_t t = 0; t < n; t++) {
        b->valid[t] = d->host_bad[t] < 0;
        if (d->host_bad[t] >= 0 && bad_tokens++ == 0)
            first = t;
    }
    *any_invalid = bad_tokens > 0;
    if (bad_tokens == 0)
        return 0;
    if (!e->opt->skip_nonfinite) { /* the host's message: the value, widened here alone */
        const int32_t at = d->host_bad[first];
        const size_t flat = (size_t)first * per_token + (size_t)at;
        float value = b->stored ? 0.0f : b->logits[flat];
        if (b->stored)
            rs_trace_widen_logits(e->trace, b->stored + flat, &value, 1);
        d->checked_t0 = -1;
        return rs_engine_nonfinite_error(e, b->t0 + first, at / e->E, at % e->E, value != value, err);
    }
    *skipped += bad_tokens;
    return 0;
}

/* Whether the CPU reads router r's decisions of this chunk: a metric of it
 * measured there, its capacity stage, the reference of agreement metrics,
 * cross-layer metrics or the decisions file (needs_full). */
static int decisions_needed(const engine *e, int r)
{
    if (e->needs_full || e->routers[r].capacity.enabled || r == e->ref_router)
        return 1;
    for (int m = 0; m < e->num_metric_slots; m++)
        if (e->metrics[m].router == r && !e->metrics[m].device_done)
            return 1;
    return 0;
}

/* Whether the CPU needs the chunk's softmax: a router or metric there that
 * reads probabilities, a capacity stage (drop_policy=probs), a reference.
 * planned: as set up (metrics marked for the device), else for the chunk
 * just routed (metrics measured there). */
static int host_needs_probs(const engine *e, int planned)
{
    if (e->ref_router >= 0 || e->paired)
        return 1;
    for (int r = 0; r < e->num_routers; r++)
        if ((!e->routers[r].on_device && (e->routers[r].shape.needs & RS_NEEDS_PROBS)) ||
            e->routers[r].capacity.enabled)
            return 1;
    for (int m = 0; m < e->num_metric_slots; m++) {
        const metric_slot *ms = &e->metrics[m];
        const int done = planned ? ms->on_device : ms->device_done;
        if (!done && (ms->spec->type->needs & (RS_NEEDS_PROBS | RS_WANTS_PROBS)))
            return 1;
    }
    return 0;
}

int rs_engine_device_route(engine *e, const rs_chunk *c, rs_error *err)
{
    struct rs_device_state *d = e->device;
    int any = 0;
    for (int r = 0; d && r < e->num_routers; r++)
        any |= e->routers[r].on_device;
    /* the check left this chunk's widened logits and validity there */
    const int checked = d && d->checked_t0 == c->t0;
    const int have_logits = c->logits || checked;
    if (d)
        d->checked_t0 = -1;
    if (!any || c->L != e->L || ((e->needs & RS_NEEDS_LOGITS) && !have_logits))
        return 0;
    RS_TRY(reserve(e, d, c->n, err));
    const double t_upload = rs_now();
    const int64_t rows = (int64_t)c->n * e->L;
    const size_t cells = (size_t)rows * (size_t)e->E;
    /* 16-bit rows go as stored and are widened there: half the bytes */
    const uint16_t *stored = !checked && d->stored && c->logits && e->chunk_stored ? e->chunk_stored : NULL;
    const float *host_logits = checked ? NULL : c->logits;
    if (stored)
        RS_TRY(upload(d->device, d->stored, stored, cells * sizeof(uint16_t), err));
    else if (host_logits)
        RS_TRY(upload(d->device, d->logits, host_logits, cells * sizeof(float), err));
    if (c->valid && !checked)
        RS_TRY(upload(d->device, d->valid, c->valid, (size_t)c->n, err));
    if (c->token_ids)
        RS_TRY(upload(d->device, d->token_ids, c->token_ids, (size_t)c->n * sizeof(int32_t), err));
    const double t_route = rs_now();
    d->upload_seconds += t_route - t_upload;
    d->upload_bytes += stored ? (double)(cells * sizeof(uint16_t)) : host_logits ? (double)(cells * sizeof(float)) : 0.0;
    if (stored)
        widen(d->device, d->stored, d->logits, cells, d->dtype == RS_LOGITS_F16);
    if (d->needs_probs && have_logits)
        softmax_rows(d->device, d->logits, d->probs, d->row_max, d->row_sum, d->row_dot, rows, e->E);
    rs_device_chunk view = {.device = d->device,
                            .t0 = c->t0,
                            .n = c->n,
                            .L = e->L,
                            .E = e->E,
                            .logits = have_logits ? d->logits : NULL,
                            .probs = d->needs_probs && have_logits ? d->probs : NULL,
                            .valid = c->valid ? d->valid : NULL,
                            .bias = d->bias,
                            .token_ids = c->token_ids ? d->token_ids : NULL,
                            .row_max = d->needs_probs && have_logits ? d->row_max : NULL,
                            .row_sum = d->needs_probs && have_logits ? d->row_sum : NULL,
                            .row_dot = d->needs_probs && have_logits ? d->row_dot : NULL,
                            .host_logits = c->logits};
    for (int r = 0; r < e->num_routers; r++) {
        router_slot *rs = &e->routers[r];
        if (!rs->on_device)
            continue;
        rs_decisions out = {.kmax = rs->shape.kmax, .ids = d->ids[r], .weights = d->weights[r]};
        RS_CHECK(rs->spec->type->route_device(rs->state, &view, &out) == 0, err,
                 "--device gpu: router %s declined a chunk it accepted before", rs->spec->type->name);
        for (int m = 0; m < e->num_metric_slots; m++) {
            metric_slot *ms = &e->metrics[m];
            if (ms->on_device && ms->router == r)
                ms->device_done = ms->spec->type->update_device(ms->acc, &view, &out) == 0;
            /* the CPU cannot measure it instead: it has no float logits */
            RS_CHECK(!ms->on_device || ms->router != r || ms->device_done || !checked, err,
                     "--device gpu: metric %s failed on the device (out of device memory?)", ms->spec->type->name);
        }
        if (!decisions_needed(e, r))
            continue;
        const size_t slots = (size_t)rows * (size_t)rs->shape.kmax;
        RS_TRY(download(d->device, rs->dec.ids, d->ids[r], slots * sizeof(int32_t), err));
        RS_TRY(download(d->device, rs->dec.weights, d->weights[r], slots * sizeof(float), err));
    }
    e->device_host_probs = host_needs_probs(e, 0);
    d->route_seconds += rs_now() - t_route;
    d->chunks++;
    e->device_routed = 1;
    return 0;
}
