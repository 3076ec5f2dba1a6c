#include "routers/query/query_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/trace/sequence_cursor.h"
#include "workloads/trace/trace.h"

enum { SCAN_BLOCK = 8192, MAX_DOMAIN_LABELS = 1 << 20 };

int rs_query_check_trace(const rs_router_setup *setup, const char *router, rs_error *err)
{
    const rs_trace_info *info = setup->trace;
    RS_CHECK(strcmp(info->unit, "query") == 0 && info->num_layers == 1, err,
             "%s routes whole queries among models: %s has unit = \"%s\" (it needs a unit = \"query\" trace, e.g. "
             "from routesim import routellm)",
             router, info->path, info->unit);
    return 0;
}

int rs_query_number_list(const char *router, const char *param, const char *text, double *out, int max, int *count,
                         rs_error *err)
{
    *count = 0;
    for (const char *item = text;;) {
        const char *bar = strchr(item, '|');
        size_t len = bar ? (size_t)(bar - item) : strlen(item);
        char buf[64];
        RS_CHECK(len > 0 && len < sizeof buf, err, "%s: parameter %s: expected numbers separated by '|', got '%s'",
                 router, param, text);
        memcpy(buf, item, len);
        buf[len] = '\0';
        char *end = NULL;
        errno = 0;
        double v = strtod(buf, &end);
        RS_CHECK(end && *end == '\0' && errno == 0 && isfinite(v), err,
                 "%s: parameter %s: '%s' is not a number (values are separated by '|')", router, param, buf);
        RS_CHECK(*count < max, err, "%s: parameter %s: more than %d values", router, param, max);
        out[(*count)++] = v;
        if (!bar)
            break;
        item = bar + 1;
    }
    return 0;
}

int rs_query_split_init(rs_query_split *split, const rs_params *params, const char *router, rs_error *err)
{
    split->share = rs_param_float(params, "train_share");
    split->seed = (uint64_t)rs_param_int(params, "split_seed");
    RS_CHECK(split->share < 1, err, "%s: parameter train_share=%g leaves no query to evaluate (it must be below 1)",
             router, split->share);
    return 0;
}

/* ---- streaming pass ---- */

struct rs_query_scan {
    rs_trace *trace;
    const rs_trace_info *info;
    rs_sequence_cursor cursor;
    rs_seq_window window;
    int32_t *seq_of_token, *label, *domain;
    int64_t domain_capacity;
    float *quality, *cost, *logits;
    void *scratch;
    int64_t next;
};

void rs_query_scan_close(rs_query_scan *s)
{
    if (!s)
        return;
    rs_sequence_cursor_free(&s->cursor);
    rs_seq_window_free(&s->window);
    free(s->seq_of_token);
    free(s->label);
    free(s->domain);
    free(s->quality);
    free(s->cost);
    free(s->logits);
    free(s->scratch);
    rs_trace_close(s->trace);
    free(s);
}

int rs_query_scan_open(rs_query_scan **out, const rs_trace_info *info, int with_logits, const char *router,
                       rs_error *err)
{
    *out = NULL;
    rs_query_scan *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "%s: out of memory", router);
    if (rs_trace_open(&s->trace, info->path, err) != 0) {
        free(s);
        return rs_fail_context(err, "%s", router);
    }
    s->info = rs_trace_get_info(s->trace);
    const size_t cells = (size_t)SCAN_BLOCK * (size_t)s->info->num_experts;
    int ok = rs_sequence_cursor_init(&s->cursor, s->trace, err) == 0;
    ok = ok && (s->seq_of_token = malloc(SCAN_BLOCK * sizeof *s->seq_of_token)) != NULL;
    ok = ok && (s->label = malloc(SCAN_BLOCK * sizeof *s->label)) != NULL;
    if (ok && s->info->has_quality)
        ok = (s->quality = malloc(cells * sizeof *s->quality)) != NULL;
    if (ok && s->info->has_cost)
        ok = (s->cost = malloc(cells * sizeof *s->cost)) != NULL;
    if (ok && with_logits) {
        ok = s->info->has_logits;
        if (!ok) {
            rs_query_scan_close(s);
            return rs_fail(err, "%s: %s has no /router/logits", router, info->path);
        }
        ok = (s->logits = malloc(cells * sizeof *s->logits)) != NULL &&
             (s->scratch = malloc(cells * 2)) != NULL;
    }
    if (!ok) {
        rs_query_scan_close(s);
        return rs_fail(err, "%s: out of memory reading %s", router, info->path);
    }
    *out = s;
    return 0;
}

int rs_query_scan_next(rs_query_scan *s, rs_query_block *b, rs_error *err)
{
    const int64_t T = s->info->num_tokens;
    if (s->next >= T)
        return 0;
    int n = (int)(T - s->next < SCAN_BLOCK ? T - s->next : SCAN_BLOCK);
    int64_t t0 = s->next;
    RS_TRY(rs_sequence_cursor_window(&s->cursor, t0, n, &s->window, s->seq_of_token, err));
    if (s->info->has_domain) {
        int64_t count = s->window.num_seq;
        if (count > s->domain_capacity) {
            int32_t *grown = realloc(s->domain, (size_t)count * sizeof *grown);
            RS_CHECK(grown, err, "out of memory");
            s->domain = grown;
            s->domain_capacity = count;
        }
        RS_TRY(rs_trace_read_domain(s->trace, s->window.first_seq, count, s->domain, err));
    }
    for (int t = 0; t < n; t++)
        s->label[t] = s->info->has_domain ? s->domain[s->seq_of_token[t]] : -1;
    if (s->quality || s->cost)
        RS_TRY(rs_trace_read_outcome(s->trace, t0, n, s->quality, s->cost, err));
    if (s->logits) /* non-finite values stay: the run refuses or skips those queries */
        RS_TRY(rs_trace_read_logits(s->trace, t0, n, s->logits, s->scratch, err));
    *b = (rs_query_block){t0, n, s->label, s->quality, s->cost, s->logits};
    s->next = t0 + n;
    return 1;
}

int rs_query_domains_scan(rs_query_domains *d, const rs_trace_info *info, const char *router, rs_error *err)
{
    d->min_label = 0;
    d->num_labels = 0;
    if (!info->has_domain)
        return 0;
    rs_trace *tr = NULL;
    if (rs_trace_open(&tr, info->path, err) != 0)
        return rs_fail_context(err, "%s", router);
    const int64_t S = info->num_sequences;
    int32_t *buf = malloc(SCAN_BLOCK * sizeof *buf);
    int rc = buf ? 0 : rs_fail(err, "%s: out of memory", router);
    int64_t lo = INT64_MAX, hi = -1;
    for (int64_t s0 = 0; s0 < S && rc == 0; s0 += SCAN_BLOCK) {
        int64_t n = S - s0 < SCAN_BLOCK ? S - s0 : SCAN_BLOCK;
        rc = rs_trace_read_domain(tr, s0, n, buf, err);
        for (int64_t i = 0; i < n && rc == 0; i++) {
            if (buf[i] < 0) /* no domain */
                continue;
            lo = buf[i] < lo ? buf[i] : lo;
            hi = buf[i] > hi ? buf[i] : hi;
        }
    }
    free(buf);
    rs_trace_close(tr);
    RS_TRY(rc);
    if (hi < 0)
        return 0;
    RS_CHECK(hi - lo < MAX_DOMAIN_LABELS, err,
             "%s: /sequences/domain of %s spans labels %lld..%lld; per-domain tables take at most %d labels", router,
             info->path, (long long)lo, (long long)hi, MAX_DOMAIN_LABELS);
    d->min_label = (int32_t)lo;
    d->num_labels = (int)(hi - lo + 1);
    return 0;
}

int rs_query_mean_costs(const rs_trace_info *info, const char *router, double *out, int *has_cost, rs_error *err)
{
    const int E = info->num_experts;
    for (int e = 0; e < E; e++)
        out[e] = 0;
    *has_cost = info->has_cost;
    if (!info->has_cost || info->num_tokens == 0)
        return 0;
    rs_query_scan *scan = NULL;
    RS_TRY(rs_query_scan_open(&scan, info, 0, router, err));
    rs_query_block b;
    int rc;
    while ((rc = rs_query_scan_next(scan, &b, err)) == 1)
        for (int t = 0; t < b.n; t++)
            for (int e = 0; e < E; e++)
                out[e] += b.cost[(size_t)t * E + e];
    rs_query_scan_close(scan);
    RS_TRY(rc < 0 ? -1 : 0);
    for (int e = 0; e < E; e++)
        out[e] /= (double)info->num_tokens;
    return 0;
}

/* ---- scores ---- */

void rs_query_scores_free(rs_query_scores *s)
{
    free(s->prior);
    s->prior = NULL;
}

/* Mean quality of each model on the training queries of each domain; a
 * domain without training data for a model falls back to the model's mean
 * over all training queries, and that to 0. Sums run in token order. */
static int fit_domain_prior(rs_query_scores *s, const rs_router_setup *setup, const rs_query_split *split,
                            const char *router, rs_error *err)
{
    const rs_trace_info *info = setup->trace;
    const int E = info->num_experts;
    RS_TRY(rs_query_domains_scan(&s->domains, info, router, err));
    const size_t rows = (size_t)s->domains.num_labels + 1, cells = rows * (size_t)E;
    double *sum = calloc(2 * cells + 2 * (size_t)E, sizeof *sum);
    s->prior = malloc(cells * sizeof *s->prior);
    if (!sum || !s->prior) {
        free(sum);
        return rs_fail(err, "%s: out of memory", router);
    }
    double *count = sum + cells, *global_sum = count + cells, *global_count = global_sum + E;
    int64_t training = 0;
    rs_query_scan *scan = NULL;
    int rc = rs_query_scan_open(&scan, info, 0, router, err);
    rs_query_block b;
    while (rc == 0 && (rc = rs_query_scan_next(scan, &b, err)) == 1) {
        rc = 0;
        for (int t = 0; t < b.n; t++) {
            if (!rs_query_is_training(split, b.t0 + t))
                continue;
            training++;
            size_t row = (size_t)rs_query_domain_row(&s->domains, b.label[t]) * (size_t)E;
            for (int e = 0; e < E; e++) {
                float q = b.quality[(size_t)t * E + e];
                if (q != q) /* not evaluated */
                    continue;
                sum[row + e] += q;
                count[row + e] += 1;
                global_sum[e] += q;
                global_count[e] += 1;
            }
        }
    }
    rs_query_scan_close(scan);
    if (rc < 0) {
        free(sum);
        return -1;
    }
    if (training == 0) {
        free(sum);
        return rs_fail(err, "%s: the training split of %s is empty (train_share=%g over %lld queries): domain_prior "
                       "has nothing to fit", router, info->path, split->share, (long long)info->num_tokens);
    }
    for (size_t r = 0; r < rows; r++) {
        for (int e = 0; e < E; e++) {
            size_t i = r * (size_t)E + (size_t)e;
            double mean = count[i] > 0 ? sum[i] / count[i] : global_count[e] > 0 ? global_sum[e] / global_count[e] : 0;
            s->prior[i] = (float)mean;
        }
    }
    free(sum);
    return 0;
}

int rs_query_scores_init(rs_query_scores *s, const rs_params *params, const rs_router_setup *setup,
                         const rs_query_split *split, const char *router, unsigned *needs, rs_error *err)
{
    memset(s, 0, sizeof *s);
    const rs_trace_info *info = setup->trace;
    s->E = info->num_experts;
    const char *source = rs_param_str(params, "score");
    if (strcmp(source, "auto") == 0)
        source = info->has_logits ? "logits" : "domain_prior";
    if (strcmp(source, "logits") == 0) {
        RS_CHECK(info->has_logits, err, "%s: score=logits needs /router/logits, which %s lacks (use score=domain_prior "
                 "with a train_share)", router, info->path);
        s->source = RS_SCORE_LOGITS;
        *needs |= RS_NEEDS_LOGITS;
        return 0;
    }
    s->source = RS_SCORE_DOMAIN_PRIOR;
    RS_CHECK(info->has_quality, err, "%s: score=domain_prior needs /outcome/quality, which %s lacks", router,
             info->path);
    RS_CHECK(split->share > 0, err,
             "%s: score=domain_prior fits each model's mean quality per domain on a training split: set train_share "
             "(e.g. train_share=0.5, the same for every router you compare; %s has no /router/logits to score with)",
             router, info->path);
    return fit_domain_prior(s, setup, split, router, err);
}
