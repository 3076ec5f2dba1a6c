/* nftw with FTW_DEPTH | FTW_PHYS is XSI */
#define _XOPEN_SOURCE 700

#include "tests/test_util.h"

#include "sim/engine/groups.h"
#include "sim/engine/kernels.h"
#include "core/metric_sink.h"
#include "routesim/router.h"
#include "sim/engine/engine.h"
#include "workloads/trace/decisions_file.h"

#include <check.h>
#include <hdf5.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char scratch_dir[512];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Each test process (Check forks one per test) removes its scratch directory at exit. */
static void remove_scratch(void)
{
    if (scratch_dir[0])
        nftw(scratch_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *rs_test_dir(void)
{
    if (!scratch_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(scratch_dir, sizeof scratch_dir, "%s/routesim-test-XXXXXX", base && base[0] ? base : "/tmp");
        ck_assert_msg(mkdtemp(scratch_dir) != NULL, "cannot create a scratch directory");
        atexit(remove_scratch);
    }
    return scratch_dir;
}

const char *rs_test_path(const char *name)
{
    static char buf[8][1024];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", rs_test_dir(), name);
    return p;
}

int32_t *rs_test_read_decisions(const char *path, size_t cells)
{
    int32_t *data = malloc(2 * cells * sizeof *data);
    ck_assert_ptr_nonnull(data);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s", path);
    hid_t di = H5Dopen2(f, "/decisions/ids", H5P_DEFAULT), dw = H5Dopen2(f, "/decisions/weights", H5P_DEFAULT);
    ck_assert_int_ge(H5Dread(di, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    ck_assert_int_ge(H5Dread(dw, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data + cells), 0);
    H5Dclose(di);
    H5Dclose(dw);
    H5Fclose(f);
    return data;
}

int32_t *rs_test_route_decisions(const char *path, const char *spec_text, const rs_engine_options *opt,
                                 const char *out, size_t *cells, rs_engine_stats *stats)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&spec, spec_text, &err) == 0, "%s", err.msg);
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    const rs_trace_info *info = rs_trace_get_info(tr);
    rs_results res;
    rs_results_init(&res);
    rs_engine *e = NULL;
    ck_assert_msg(rs_engine_create(&e, tr, &spec, 1, NULL, 0, opt, &res, &err) == 0, "%s: %s", spec_text, err.msg);
    int kmax = rs_engine_router_kmax(e, 0);
    rs_decisions_writer *w = NULL;
    ck_assert_int_eq(rs_decisions_writer_create(&w, out, info->num_layers, kmax, spec_text, path, &err), 0);
    rs_engine_stats run = {0};
    ck_assert_msg(rs_engine_run(e, w, &run, &err) == 0, "%s: %s", spec_text, err.msg);
    ck_assert_int_eq(rs_decisions_writer_finish(w, &err), 0);
    *cells = (size_t)info->num_tokens * (size_t)info->num_layers * (size_t)kmax;
    if (stats)
        *stats = run;
    rs_engine_destroy(e);
    rs_trace_close(tr);
    rs_results_free(&res);
    rs_router_spec_free(&spec);
    return rs_test_read_decisions(out, *cells);
}

void rs_test_write_trace(const char *path, const rs_test_trace *t)
{
    rs_trace_layout layout = {
        .num_layers = t->L,
        .num_experts = t->E,
        .logits = t->logits ? (t->dtype ? t->dtype : RS_LOGITS_F32) : RS_LOGITS_NONE,
        .topk_k = t->topk_ids ? t->K : 0,
        .topk_weights = t->topk_weights != NULL,
        .token_ids = t->token_ids != NULL,
        .model = t->model,
        .scoring = t->scoring,
        .top_k = t->top_k,
        .norm_topk = t->norm_topk ? t->norm_topk : -1,
        .phase = t->phase != NULL,
        .num_domains = t->domain ? t->num_domains : 0,
        .domain_names = t->domain_names,
    };
    rs_error err = {{0}};
    rs_trace_writer *w = NULL;
    ck_assert_msg(rs_trace_writer_create(&w, path, &layout, &err) == 0, "%s", err.msg);
    for (int s = 0; s < t->num_seq; s++) {
        int64_t a = t->offsets[s], b = t->offsets[s + 1];
        int n = (int)(b - a);
        size_t row = (size_t)a * (size_t)t->L;
        int rc = rs_trace_writer_append(w, n, t->logits ? t->logits + row * (size_t)t->E : NULL,
                                        t->topk_ids ? t->topk_ids + row * (size_t)t->K : NULL,
                                        t->topk_weights ? t->topk_weights + row * (size_t)t->K : NULL,
                                        t->token_ids ? t->token_ids + a : NULL, t->phase ? t->phase + a : NULL, &err);
        ck_assert_msg(rc == 0, "%s", err.msg);
        ck_assert_msg(rs_trace_writer_end_sequence(w, t->domain ? t->domain[s] : 0, &err) == 0, "%s", err.msg);
    }
    ck_assert_msg(rs_trace_writer_finish(w, &err) == 0, "%s", err.msg);
}

float *rs_test_random_logits(int T, int L, int E, unsigned seed)
{
    size_t n = (size_t)T * (size_t)L * (size_t)E;
    float *z = malloc(n * sizeof *z);
    ck_assert_ptr_nonnull(z);
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (size_t i = 0; i < n; i += 2) {
        /* Box-Muller on a xorshift stream: deterministic and dependency free. */
        double u[2];
        for (int j = 0; j < 2; j++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            u[j] = ((double)(s >> 11) + 0.5) * 0x1p-53;
        }
        double r = sqrt(-2.0 * log(u[0]));
        z[i] = (float)(r * cos(2 * M_PI * u[1]));
        if (i + 1 < n)
            z[i + 1] = (float)(r * sin(2 * M_PI * u[1]));
    }
    return z;
}

char *rs_test_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size + 1);
    if (buf) {
        size_t got = fread(buf, 1, (size_t)size, f);
        buf[got] = '\0';
    }
    fclose(f);
    return buf;
}

int rs_test_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int rs_test_run_cli(const char *args, char **out, char **err)
{
    const char *bin = getenv("ROUTESIM_BIN");
    ck_assert_msg(bin != NULL, "ROUTESIM_BIN is not set (run the tests through make check)");
    static int counter;
    char out_path[1024], err_path[1024];
    snprintf(out_path, sizeof out_path, "%s/cli-%d-%d.out", rs_test_dir(), (int)getpid(), counter);
    snprintf(err_path, sizeof err_path, "%s/cli-%d-%d.err", rs_test_dir(), (int)getpid(), counter++);
    size_t len = strlen(bin) + strlen(args) + 2 * sizeof out_path + 64;
    char *cmd = malloc(len);
    ck_assert_ptr_nonnull(cmd);
    snprintf(cmd, len, "ROUTESIM_NO_PROGRESS=1 '%s' %s >'%s' 2>'%s'", bin, args, out_path, err_path);
    int status = system(cmd);
    free(cmd);
    if (out)
        *out = rs_test_read_file(out_path);
    if (err)
        *err = rs_test_read_file(err_path);
    unlink(out_path);
    unlink(err_path);
    ck_assert_msg(status != -1 && WIFEXITED(status), "routesim did not exit normally (signal?) for: %s", args);
    return WEXITSTATUS(status);
}

void rs_test_chunk_init(rs_test_chunk *tc, int64_t t0, int n, int L, int E, const float *logits)
{
    memset(tc, 0, sizeof *tc);
    size_t cells = (size_t)n * (size_t)L * (size_t)E;
    tc->logits = malloc(cells * sizeof *tc->logits);
    tc->probs = malloc(cells * sizeof *tc->probs);
    const size_t rows = (size_t)n * (size_t)L;
    tc->lse = malloc(rows * sizeof *tc->lse);
    tc->mean_logit = malloc(rows * sizeof *tc->mean_logit);
    tc->log_norm = malloc(rows * sizeof *tc->log_norm);
    tc->entropy = malloc(rows * sizeof *tc->entropy);
    tc->seq_of_token = calloc((size_t)n, sizeof *tc->seq_of_token);
    ck_assert(tc->logits && tc->probs && tc->lse && tc->mean_logit && tc->log_norm && tc->entropy &&
              tc->seq_of_token);
    memcpy(tc->logits, logits, cells * sizeof *tc->logits);
    for (size_t r = 0; r < rows; r++) {
        rs_softmax_stat stat;
        rs_softmax_row(tc->logits + r * (size_t)E, tc->probs + r * (size_t)E, E, &stat);
        tc->lse[r] = stat.lse;
        tc->mean_logit[r] = stat.mean_logit;
        tc->log_norm[r] = stat.log_norm;
        tc->entropy[r] = stat.entropy;
    }
    tc->offsets[0] = t0;
    tc->offsets[1] = t0 + n;
    rs_chunk *c = &tc->chunk;
    c->t0 = t0;
    c->n = n;
    c->L = L;
    c->E = E;
    c->logits = tc->logits;
    c->probs = tc->probs;
    c->lse = tc->lse;
    c->mean_logit = tc->mean_logit;
    c->log_norm = tc->log_norm;
    c->entropy = tc->entropy;
    c->stat_token_stride = (size_t)L; /* chunk-wide statistics: row t * L + l */
    c->stat_layer_stride = 1;
    c->num_seq = 1;
    c->seq_offsets = tc->offsets;
    c->seq_of_token = tc->seq_of_token;
}

void rs_test_chunk_sequences(rs_test_chunk *tc, const int *lengths, int count)
{
    free(tc->seq_offsets);
    tc->seq_offsets = malloc((size_t)(count + 1) * sizeof *tc->seq_offsets);
    ck_assert_ptr_nonnull(tc->seq_offsets);
    tc->seq_offsets[0] = tc->chunk.t0;
    for (int s = 0; s < count; s++)
        tc->seq_offsets[s + 1] = tc->seq_offsets[s] + lengths[s];
    ck_assert_msg(tc->seq_offsets[count] == tc->chunk.t0 + tc->chunk.n, "sequence lengths must sum to n");
    for (int s = 0, t = 0; s < count; s++)
        for (int i = 0; i < lengths[s]; i++)
            tc->seq_of_token[t++] = s;
    tc->chunk.num_seq = count;
    tc->chunk.seq_offsets = tc->seq_offsets;
}

void rs_test_chunk_groups(rs_test_chunk *tc, rs_group mode, int batch_tokens)
{
    if (!tc->group_buffers) {
        tc->group_buffers = calloc(RS_GROUP_COUNT, sizeof(rs_group_buffer));
        ck_assert_ptr_nonnull(tc->group_buffers);
    }
    rs_group_buffer *b = (rs_group_buffer *)tc->group_buffers + mode;
    rs_error err = {{0}};
    tc->chunk.batch_tokens = batch_tokens;
    ck_assert_msg(rs_groups_build(b, &tc->chunk, mode, batch_tokens, &err) == 0, "%s", err.msg);
    tc->chunk.groups[mode] = &b->groups;
}

void rs_test_chunk_free(rs_test_chunk *tc)
{
    if (tc->group_buffers) {
        for (int m = 0; m < RS_GROUP_COUNT; m++)
            rs_group_buffer_free((rs_group_buffer *)tc->group_buffers + m);
        free(tc->group_buffers);
    }
    free(tc->seq_offsets);
    free(tc->logits);
    free(tc->probs);
    free(tc->lse);
    free(tc->mean_logit);
    free(tc->log_norm);
    free(tc->entropy);
    free(tc->seq_of_token);
}

char *rs_test_run_csv(const char *config, int threads, int chunk)
{
    static int runs;
    char name[64], dir[1200], args[2600], path[1300];
    snprintf(name, sizeof name, "csv-run-%d-%d-%d", threads, chunk, runs++);
    snprintf(dir, sizeof dir, "%s", rs_test_path(name));
    snprintf(args, sizeof args, "run %s --output %s --threads %d --chunk-tokens %d -q --no-progress", config, dir,
             threads, chunk);
    char *out = NULL, *err = NULL;
    ck_assert_msg(rs_test_run_cli(args, &out, &err) == 0, "%s", err);
    free(out);
    free(err);
    snprintf(path, sizeof path, "%s/results.csv", dir);
    char *csv = rs_test_read_file(path);
    ck_assert_ptr_nonnull(csv);
    return csv;
}

char *rs_test_invariant_csv(const char *config, int a, int b, int c)
{
    char *ref = rs_test_run_csv(config, 1, a);
    const int runs[3][2] = {{1, b}, {2, a}, {2, c}};
    for (int i = 0; i < 3; i++) {
        char *other = rs_test_run_csv(config, runs[i][0], runs[i][1]);
        ck_assert_msg(strcmp(ref, other) == 0, "results.csv differs with %d threads, chunks of %d", runs[i][0],
                      runs[i][1]);
        free(other);
    }
    return ref;
}

char *rs_test_config_csv(const char *name, const rs_test_trace *tt, const char *entries, int a, int b, int c)
{
    char file[256];
    snprintf(file, sizeof file, "%s.h5", name);
    char trace[1100];
    snprintf(trace, sizeof trace, "%s", rs_test_path(file));
    rs_test_write_trace(trace, tt);
    snprintf(file, sizeof file, "%s.json", name);
    const char *config = rs_test_path(file);
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\"name\": \"%s\", \"traces\": [\"%s\"], %s, \"batch_tokens\": 50}", name, trace, entries);
    fclose(f);
    return rs_test_invariant_csv(config, a, b, c);
}

void rs_test_same_rows(const rs_metric_type *t, const void *x, const void *y, const char *what)
{
    rs_metric_sink s1 = {0}, s2 = {0};
    t->finalize(x, &s1);
    t->finalize(y, &s2);
    ck_assert_msg(s1.n == s2.n, "%s: %s emitted %zu rows, then %zu", what, t->name, s1.n, s2.n);
    for (size_t i = 0; i < s1.n; i++) {
        ck_assert_int_eq(s1.rows[i].output, s2.rows[i].output);
        ck_assert_int_eq(s1.rows[i].layer, s2.rows[i].layer);
        ck_assert_msg(memcmp(&s1.rows[i].value, &s2.rows[i].value, sizeof(double)) == 0,
                      "%s: %s.%s layer %d: %.17g != %.17g", what, t->name, t->outputs[s1.rows[i].output].name,
                      s1.rows[i].layer, s1.rows[i].value, s2.rows[i].value);
    }
    rs_metric_sink_free(&s1);
    rs_metric_sink_free(&s2);
}

char *rs_test_cmd(const char *fmt, ...)
{
    static char buf[4][4096];
    static int next;
    char *b = buf[next++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof buf[0], fmt, ap);
    va_end(ap);
    return b;
}
