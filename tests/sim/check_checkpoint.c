/* Checkpoints of a pass: a pass stopped right after any of its checkpoints
 * and resumed from it gives the uninterrupted pass's results and decisions
 * bit for bit, for every registered metric family (in the parameter
 * variants that take other code paths) and every registered router; new
 * families and routers are covered automatically. Checkpoints fall inside
 * sequences and batches (chunks of 40 tokens, sequences of 30 to 80), and
 * resumed passes use another thread count and chunk size. A checkpoint
 * saved under another key or damaged is not used, one whose objects read
 * back differently is refused, and a pass whose router cannot save its
 * state saves none. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "routesim/embed.h"
#include "routesim/metric.h"
#include "routesim/router.h"
#include "core/state_io.h"
#include "sim/config/config.h"
#include "sim/engine/engine.h"
#include "tests/query/check_query.h"
#include "tests/test_util.h"
#include "workloads/trace/decisions_file.h"

enum { T = 300, L = 3, E = 16, K = 4, S = 6, BATCH = 40, QT = 160, QE = 4 };
static const int64_t offsets[S + 1] = {0, 30, 31, 100, 180, 257, 300};

static void add_dataset(hid_t f, const char *name, hid_t type, hid_t mem, int rank, const hsize_t *dims,
                        const void *data)
{
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(space);
}

/* Logits, token ids, recorded top-k, a bias and sequence domains; paired =
 * the same tokens with perturbed logits. */
static const char *token_trace(int paired)
{
    static char path[2][1024];
    if (path[paired][0])
        return path[paired];
    snprintf(path[paired], sizeof path[paired], "%s", rs_test_path(paired ? "ckpt-paired.h5" : "ckpt.h5"));
    float *z = rs_test_random_logits(T, L, E, 41);
    if (paired) {
        float *noise = rs_test_random_logits(T, L, E, 42);
        for (int i = 0; i < T * L * E; i++)
            z[i] += 0.5f * noise[i];
        free(noise);
    }
    for (int i = 0; i < T * L * E; i += 7) /* exact ties */
        z[i] = z[i + 1 < T * L * E ? i + 1 : i];
    int32_t *ids = malloc((size_t)T * sizeof *ids), *topk = malloc((size_t)T * L * K * sizeof *topk);
    for (int t = 0; t < T; t++)
        ids[t] = (t * 7) % 13;
    for (int i = 0; i < T * L * K; i++)
        topk[i] = i % K == K - 1 && i % 3 == 0 ? -1 : (i * 13) % E;
    rs_test_trace tt = {.T = T, .L = L, .E = E, .K = K, .num_seq = S, .offsets = offsets, .logits = z,
                        .topk_ids = topk, .token_ids = ids, .scoring = "softmax", .top_k = 2, .norm_topk = 1};
    rs_test_write_trace(path[paired], &tt);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path[paired], H5F_ACC_RDWR, H5P_DEFAULT);
    const int32_t domain[S] = {0, 1, 2, 0, 1, 0};
    hsize_t dims[2] = {S, 0};
    add_dataset(f, "/sequences/domain", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, dims, domain);
    float bias[L * E];
    for (int i = 0; i < L * E; i++)
        bias[i] = (float)((i * 7) % 11 - 5) * 0.01f;
    dims[0] = L;
    dims[1] = E;
    add_dataset(f, "/router/bias", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, dims, bias);
    H5Fclose(f);
    free(z);
    free(ids);
    free(topk);
    return path[paired];
}

/* Queries with recorded outcomes, costs, scores and domains. */
static const char *query_trace_path(void)
{
    static char path[1024];
    if (path[0])
        return path;
    snprintf(path, sizeof path, "%s", rs_test_path("ckpt-query.h5"));
    float quality[QT * QE], cost[QT * QE], scores[QT * QE];
    int32_t domain[QT];
    for (int t = 0; t < QT; t++) {
        domain[t] = t % 3;
        for (int e = 0; e < QE; e++) {
            quality[t * QE + e] = (float)(((t * 5 + e * 3) % 7) > 2 + e % 2);
            cost[t * QE + e] = 0.5f + (float)e;
            scores[t * QE + e] = (float)((t * 11 + e * 17) % 23) / 23.0f;
        }
    }
    query_trace q = {.T = QT, .E = QE, .quality = quality, .cost = cost, .logits = scores, .domain = domain,
                     .num_domains = 3};
    query_trace_write(path, &q);
    return path;
}

/* One configured pass. */
typedef struct pass {
    const char *trace;
    const char *routers[3];
    const char *metrics[2]; /* "family" or "family:k=v,..." */
    const char *reference;  /* spec or NULL */
    int paired;             /* the reference routes the paired trace */
    int bootstrap;
} pass;

/* How one engine run goes: stop after checkpoint `stop` (0: never), or
 * resume from the checkpoint first; decisions of router 0 to `decisions`. */
typedef struct attempt {
    int stop, resume, threads, chunk;
    int damaged; /* the checkpoint may be damaged: resuming may fail */
    const char *key;
    const char *decisions;
    int64_t position; /* out: where the stopped run saved last, or where the resumed one started */
    int stopped, resumed;
    char note[1100];
} attempt;

static int stop_after(void *ctx, int64_t position)
{
    attempt *a = ctx;
    a->position = position;
    return --a->stop == 0;
}

static const char *checkpoint_path(void) { return rs_test_path("pass.ckpt"); }

/* Runs p once as a describes; returns 0 when the engine could not be
 * created (the pass does not apply to its trace), else 1 with the results. */
static int run_pass(const pass *p, attempt *a, rs_results *res)
{
    rs_error err = {{0}};
    rs_router_spec routers[3], reference;
    int nr = 0;
    for (; nr < 3 && p->routers[nr]; nr++)
        ck_assert_msg(rs_router_spec_parse(&routers[nr], p->routers[nr], &err) == 0, "%s", err.msg);
    rs_metric_spec metrics[2];
    int nm = 0;
    for (; nm < 2 && p->metrics[nm]; nm++) {
        char name[64];
        const char *colon = strchr(p->metrics[nm], ':');
        snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - p->metrics[nm]) : 63, p->metrics[nm]);
        ck_assert_msg(rs_metric_spec_init(&metrics[nm], name, "test", &err) == 0, "%s", err.msg);
        if (colon)
            ck_assert_msg(rs_params_parse_list(&metrics[nm].params, colon + 1, &err) == 0, "%s", err.msg);
    }
    if (p->reference)
        ck_assert_msg(rs_router_spec_parse(&reference, p->reference, &err) == 0, "%s", err.msg);
    rs_trace *tr = NULL, *ref_tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, p->trace, &err) == 0, "%s", err.msg);
    if (p->paired)
        ck_assert_msg(rs_trace_open(&ref_tr, token_trace(1), &err) == 0, "%s", err.msg);
    rs_results_init(res);
    rs_engine_options opt = {.threads = a->threads,
                             .chunk_tokens = a->chunk,
                             .batch_tokens = BATCH,
                             .progress = 0,
                             .reference = p->reference ? &reference : NULL,
                             .reference_trace = ref_tr,
                             .bootstrap = p->bootstrap,
                             .bootstrap_blocks = 4,
                             .bootstrap_seed = 3,
                             .checkpoint = {.path = checkpoint_path(),
                                            .key = a->key ? a->key : "pass",
                                            .chunks = a->stop > 0 ? 1 : 0,
                                            .saved = a->stop > 0 ? stop_after : NULL,
                                            .saved_ctx = a}};
    rs_engine *e = NULL;
    int made = rs_engine_create(&e, tr, routers, nr, metrics, nm, &opt, res, &err) == 0;
    if (made && a->resume) {
        rs_error note = {{0}};
        int rc = rs_engine_resume(e, &note, &err);
        ck_assert_msg(rc >= 0 || a->damaged, "%s: %s", p->routers[0], err.msg);
        a->resumed = rc;
        a->position = rs_engine_start_token(e);
        snprintf(a->note, sizeof a->note, "%s", rc < 0 ? err.msg : note.msg);
        if (rc < 0) { /* the engine is spoilt: no run */
            rs_engine_destroy(e);
            e = NULL;
            made = 0;
        }
    }
    rs_decisions_writer *w = NULL;
    if (made && a->decisions)
        ck_assert_int_eq(rs_decisions_writer_create(&w, a->decisions, rs_trace_get_info(tr)->num_layers,
                                                    rs_engine_router_kmax(e, 0), "x",
                                                    p->trace, &err),
                         0);
    if (made) {
        int rc = rs_engine_run(e, w, NULL, &err);
        a->stopped = rc != 0 && a->stop == 0 && opt.checkpoint.saved;
        ck_assert_msg(rc == 0 || a->stopped, "%s (bootstrap %d, paired %d, resumed %d, threads %d, chunks %d): %s",
                      p->routers[0], p->bootstrap, p->paired, a->resume, a->threads, a->chunk, err.msg);
        if (w && rc == 0)
            ck_assert_int_eq(rs_decisions_writer_finish(w, &err), 0);
        else if (w)
            rs_decisions_writer_abort(w);
    }
    rs_engine_destroy(e);
    rs_trace_close(tr);
    rs_trace_close(ref_tr);
    for (int i = 0; i < nm; i++)
        rs_metric_spec_free(&metrics[i]);
    for (int i = 0; i < nr; i++)
        rs_router_spec_free(&routers[i]);
    if (p->reference)
        rs_router_spec_free(&reference);
    return made;
}

static void same_results(const rs_results *want, const rs_results *got, const char *what, int64_t at)
{
    ck_assert_msg(got->num_rows == want->num_rows, "%s resumed at %lld: %zu rows, %zu uninterrupted", what,
                  (long long)at, got->num_rows, want->num_rows);
    for (size_t i = 0; i < want->num_rows; i++) {
        const rs_result_row *a = &want->rows[i], *b = &got->rows[i];
        ck_assert_str_eq(a->metric, b->metric);
        ck_assert_str_eq(a->key, b->key);
        ck_assert_int_eq(a->layer, b->layer);
        ck_assert_msg(memcmp(&a->value, &b->value, sizeof a->value) == 0,
                      "%s resumed at token %lld: %s %s layer %d: %.17g, uninterrupted %.17g", what, (long long)at,
                      a->metric, a->key, a->layer, b->value, a->value);
    }
}

/* Decisions rows [from, from + n) of a decisions file. */
static void read_decisions(const char *path, int64_t from, int n, int32_t *ids, float *w)
{
    rs_error err = {{0}};
    rs_decisions_reader *r = NULL;
    int64_t tokens = 0;
    int layers = 0, kmax = 0;
    ck_assert_msg(rs_decisions_reader_open(&r, path, &tokens, &layers, &kmax, &err) == 0, "%s", err.msg);
    ck_assert_int_ge(tokens, from + n);
    ck_assert_int_eq(rs_decisions_reader_read(r, from, n, ids, w, &err), 0);
    rs_decisions_reader_close(r);
}

static void same_decisions(const char *whole, const char *tail, int64_t from, int64_t total, int layers, int kmax,
                           const char *what)
{
    const int n = (int)(total - from);
    size_t cells = (size_t)n * (size_t)layers * (size_t)kmax;
    int32_t *a = malloc(cells * sizeof *a), *b = malloc(cells * sizeof *b);
    float *x = malloc(cells * sizeof *x), *y = malloc(cells * sizeof *y);
    read_decisions(whole, from, n, a, x);
    read_decisions(tail, 0, n, b, y);
    for (size_t i = 0; i < cells; i++)
        ck_assert_msg(a[i] == b[i] && memcmp(&x[i], &y[i], sizeof x[i]) == 0,
                      "%s resumed at token %lld: token %lld differs (expert %d weight %g, uninterrupted %d %g)",
                      what, (long long)from, (long long)(from + (int64_t)(i / ((size_t)layers * (size_t)kmax))), b[i],
                      y[i], a[i], x[i]);
    free(a);
    free(b);
    free(x);
    free(y);
}

/* Stops p after its checkpoints 1, 2, 5, 8... in turn and resumes; the results
 * (and router 0's decisions when decisions) equal the uninterrupted run's.
 * Returns the checkpoints seen, 0 when p does not apply to its trace. */
static int check_resumes(const pass *p, int decisions, const char *what)
{
    const int64_t total = p->trace == query_trace_path() ? QT : T;
    char whole[1100], tail[1100];
    snprintf(whole, sizeof whole, "%s", rs_test_path("whole.h5"));
    snprintf(tail, sizeof tail, "%s", rs_test_path("tail.h5"));
    rs_results want;
    attempt plain = {.threads = 1, .chunk = 37, .decisions = decisions ? whole : NULL};
    if (!run_pass(p, &plain, &want)) {
        rs_results_free(&want);
        return 0;
    }
    int kmax = 0, layers = 0;
    if (decisions) {
        rs_error err = {{0}};
        rs_decisions_reader *r = NULL;
        int64_t tokens = 0;
        ck_assert_int_eq(rs_decisions_reader_open(&r, whole, &tokens, &layers, &kmax, &err), 0);
        rs_decisions_reader_close(r);
    }
    int seen = 0;
    for (int stop = 1;; stop += stop < 2 ? 1 : 3) { /* 1, 2, 5, 8...: in the first chunks and later */
        remove(checkpoint_path());
        attempt cut = {.stop = stop, .threads = 1, .chunk = 37};
        rs_results part;
        run_pass(p, &cut, &part);
        rs_results_free(&part);
        if (!cut.stopped)
            break; /* the pass ended before checkpoint `stop` */
        seen++;
        /* resumed with other threads and chunks every other time */
        attempt again = {.resume = 1, .threads = seen % 2 ? 2 : 1, .chunk = seen % 2 ? 23 : 37,
                         .decisions = decisions ? tail : NULL};
        rs_results got;
        run_pass(p, &again, &got);
        ck_assert_msg(again.resumed == 1, "%s: checkpoint %d not used: %s", what, stop, again.note);
        ck_assert_int_eq(again.position, cut.position);
        same_results(&want, &got, what, again.position);
        if (decisions)
            same_decisions(whole, tail, again.position, total, layers, kmax, what);
        rs_results_free(&got);
    }
    rs_results_free(&want);
    return seen;
}

/* Parameters that take other code paths of a family. */
static const struct {
    const char *family;
    const char *variants[14];
} variants[] = {
    {"load", {"", "per_expert=1"}},
    {"entropy", {"", "k=3"}},
    {"affinity", {"", "matrix=1"}},
    {"srp", {"", "m=3"}},
    {"sch", {"", "m=3,rho=2"}},
    {"cache",
     {"", "policy=lfu,curve=1", "policy=fifo,prefetch=prev_token", "policy=random,seed=3,curve=1",
      "policy=belady,curve=1", "policy=static,curve=1", "policy=sch,m=4", "scope=global,curve=1",
      "prefetch=affinity", "prefetch=oracle_next,gap=0", "reset=never", "policy=belady,reset=never",
      "policy=sch,scope=global,m=3"}},
    {"placement",
     {"", "replicas=8,nodes=2,dispatch=round_robin,source=token,per_device=1", "replicas=8,nodes=4",
      "policy=eplb,replicas=8,nodes=2,groups=4"}},
};

/* Every variant of family i, on the token trace (the query trace for
 * families that need outcomes), with and without bootstrap, with a
 * reference on the same and on a paired trace. */
static void check_family(int i)
{
    const rs_metric_type *family = rs_metric_at(i);
    const char *none[] = {""};
    const char *const *list = none;
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)
        if (strcmp(variants[v].family, family->name) == 0)
            list = variants[v].variants;
    const int query = (family->needs & RS_NEEDS_OUTCOME) != 0;
    for (int v = 0; v == 0 || (list != none && list[v]); v++) {
        char metric[256], what[300];
        snprintf(metric, sizeof metric, "%s%s%s", family->name, list[v][0] ? ":" : "", list[v]);
        /* reset=never caches cannot merge bootstrap blocks */
        const int shapes = query ? 1 : strstr(metric, "reset=never") ? 2 : 3;
        for (int shape = 0; shape < shapes; shape++) {
            /* bootstrap blocks end on sequence boundaries only without batch-grouped routers */
            pass p = {.trace = query ? query_trace_path() : token_trace(0),
                      .routers = {query ? "bandit:seed=2" : "topk:k=2",
                                  query ? "fixed" : shape == 2 ? "sticky" : "topk:k=2,capacity_factor=1,group=batch"},
                      .metrics = {metric},
                      .reference = query ? NULL : "topk:k=3",
                      .paired = shape == 1,
                      .bootstrap = shape == 2 ? 20 : 0};
            snprintf(what, sizeof what, "metric %s (%s)", metric,
                     shape == 0 ? "plain" : shape == 1 ? "paired reference" : "bootstrap");
            ck_assert_msg(check_resumes(&p, 0, what) >= 3, "%s: fewer than 3 checkpoints", what);
        }
    }
}

START_TEST(every_metric_family_resumes_bit_for_bit)
{
    const rs_metric_type *family = rs_metric_at(_i);
    ck_assert_msg(family->checkpoint, "metric %s cannot save its state", family->name);
    check_family(_i);
}
END_TEST

/* Every router (presets too) with its default parameters; query routers on
 * the query trace. Its decisions from the checkpoint on equal the
 * uninterrupted run's, and so do its results. */
START_TEST(every_router_resumes_bit_for_bit)
{
    const rs_router_type *type = rs_router_at(_i);
    const int query = (type->flags & RS_ROUTER_QUERY) != 0;
    pass p = {.trace = query ? query_trace_path() : token_trace(0),
              .routers = {type->name},
              .metrics = {query ? "outcome" : "load:per_expert=1", query ? NULL : "locality"}};
    char what[300];
    snprintf(what, sizeof what, "router %s", type->name);
    int seen = check_resumes(&p, 1, what);
    /* routers that need what this trace lacks (parameters without defaults, other inputs) are not run */
    if (seen == 0) {
        attempt plain = {.threads = 1, .chunk = 37};
        rs_results res;
        ck_assert_msg(!run_pass(&p, &plain, &res), "%s: no checkpoint saved", what);
        rs_results_free(&res);
    }
}
END_TEST

START_TEST(every_builtin_router_can_save_its_state)
{
    for (int i = 0; i < rs_router_count(); i++) {
        const rs_router_type *t = rs_router_at(i);
        if (t->flags & RS_ROUTER_PRESET)
            continue;
        int carries = (t->flags & (RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED)) || t->prepare_chunk;
        ck_assert_msg(!carries || t->checkpoint, "router %s keeps state across chunks but cannot save it",
                      t->name);
    }
}
END_TEST

/* A checkpoint saved under another key is not used; the pass starts over. */
START_TEST(a_checkpoint_of_another_pass_is_not_used)
{
    pass p = {.trace = token_trace(0), .routers = {"aux_free_bias:group=sequence"}, .metrics = {"srp"}};
    rs_results want, part, got;
    attempt plain = {.threads = 1, .chunk = 37};
    run_pass(&p, &plain, &want);
    remove(checkpoint_path());
    attempt cut = {.stop = 2, .threads = 1, .chunk = 37, .key = "another pass"};
    run_pass(&p, &cut, &part);
    ck_assert(cut.stopped);
    attempt again = {.resume = 1, .threads = 1, .chunk = 37};
    run_pass(&p, &again, &got);
    ck_assert_int_eq(again.resumed, 0);
    ck_assert_int_eq(again.position, 0);
    ck_assert_msg(strstr(again.note, "not used"), "%s", again.note);
    same_results(&want, &got, "another key", 0);
    rs_results_free(&want);
    rs_results_free(&part);
    rs_results_free(&got);
}
END_TEST

/* Damage anywhere (a flipped byte in the header, the state or the
 * checksum, a truncated file) is found before anything is restored: the
 * checkpoint is not used and the pass starts over, with the same results. */
START_TEST(a_damaged_checkpoint_is_not_used)
{
    pass p = {.trace = token_trace(0), .routers = {"sticky", "topk:k=2"}, .metrics = {"cache:policy=belady"}};
    rs_results want, part;
    attempt plain = {.threads = 1, .chunk = 37};
    run_pass(&p, &plain, &want);
    remove(checkpoint_path());
    attempt cut = {.stop = 3, .threads = 1, .chunk = 37};
    run_pass(&p, &cut, &part);
    rs_results_free(&part);
    ck_assert(cut.stopped);
    FILE *f = fopen(checkpoint_path(), "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    rewind(f);
    char *body = malloc((size_t)size);
    ck_assert_int_eq(fread(body, 1, (size_t)size, f), size);
    fclose(f);
    const long at[] = {3, 30, size / 2, size - 3, -1};
    for (int d = 0; d < 5; d++) {
        f = fopen(checkpoint_path(), "wb");
        ck_assert_ptr_nonnull(f);
        if (at[d] >= 0) {
            body[at[d]] ^= 0x5a;
            fwrite(body, 1, (size_t)size, f);
            body[at[d]] ^= 0x5a;
        } else {
            fwrite(body, 1, (size_t)size / 2, f); /* truncated */
        }
        fclose(f);
        attempt again = {.resume = 1, .threads = 1, .chunk = 37};
        rs_results got;
        ck_assert(run_pass(&p, &again, &got));
        ck_assert_msg(again.resumed == 0, "damage at byte %ld: resumed from it", at[d]);
        ck_assert_msg(strstr(again.note, "not used"), "damage at byte %ld: %s", at[d], again.note);
        same_results(&want, &got, "damaged checkpoint", 0);
        rs_results_free(&got);
    }
    free(body);
    rs_results_free(&want);
}
END_TEST

/* A whole checkpoint whose objects read back differently (a build whose
 * routers or accumulators changed, here: another pass under the same key)
 * is refused once restoring began: the engine must be made anew, and the
 * pass run afresh has the same results. */
START_TEST(a_checkpoint_whose_objects_differ_is_refused)
{
    pass saved = {.trace = token_trace(0), .routers = {"sticky"}, .metrics = {"srp"}};
    pass p = {.trace = token_trace(0), .routers = {"sticky", "aux_free_bias:group=sequence"}, .metrics = {"srp"}};
    rs_results want, part, got;
    attempt plain = {.threads = 1, .chunk = 37};
    run_pass(&p, &plain, &want);
    remove(checkpoint_path());
    attempt cut = {.stop = 2, .threads = 1, .chunk = 37};
    run_pass(&saved, &cut, &part);
    rs_results_free(&part);
    ck_assert(cut.stopped);
    attempt again = {.resume = 1, .threads = 1, .chunk = 37, .damaged = 1};
    ck_assert(!run_pass(&p, &again, &got));
    ck_assert_int_eq(again.resumed, -1);
    ck_assert_msg(strstr(again.note, "do not read back"), "%s", again.note);
    rs_results_free(&got);
    attempt fresh = {.threads = 1, .chunk = 37};
    run_pass(&p, &fresh, &got);
    same_results(&want, &got, "fresh engine", 0);
    rs_results_free(&want);
    rs_results_free(&got);
}
END_TEST

static int identity_router(rs_block *b, char *msg, size_t size)
{
    (void)msg;
    (void)size;
    for (int i = 0; i < b->n; i++)
        b->ids[(size_t)i * b->out_stride] = 0;
    return 0;
}

/* A stateful host router keeps its state where routesim cannot save it:
 * its passes run without checkpoints (and say why). */
START_TEST(a_pass_with_a_router_that_cannot_save_its_state_has_no_checkpoints)
{
    rs_error err = {{0}};
    rs_callback_router desc = {.struct_size = sizeof desc, .name = "held_state", .kmax = 1, .stateful = 1,
                               .fn = identity_router};
    ck_assert_msg(rs_callback_router_register(&desc, &err) == 0, "%s", err.msg);
    pass p = {.trace = token_trace(0), .routers = {"held_state", "topk:k=2"}, .metrics = {"load"}};
    remove(checkpoint_path());
    rs_results res;
    attempt cut = {.stop = 1, .threads = 1, .chunk = 37};
    ck_assert(run_pass(&p, &cut, &res));
    ck_assert(!cut.stopped);
    ck_assert(!rs_test_file_exists(checkpoint_path()));
    rs_results_free(&res);
}
END_TEST

/* The checksum of a stream does not depend on how it was split into
 * calls (a checkpoint is summed object by object when saved and in large
 * blocks when verified), and changes with any byte. */
START_TEST(the_checksum_ignores_how_the_bytes_were_split)
{
    unsigned char data[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (unsigned char)(i * 37 + 11);
    rs_state_io whole;
    rs_state_io_start(&whole, NULL, 0);
    rs_state_io_sum(&whole, data, sizeof data);
    const size_t pieces[][4] = {{1, 2, 3, 994}, {7, 1, 1, 991}, {8, 8, 9, 975}, {0, 999, 1, 0}, {500, 3, 1, 496}};
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
        rs_state_io split;
        rs_state_io_start(&split, NULL, 0);
        size_t at = 0;
        for (int j = 0; j < 4; j++) {
            rs_state_io_sum(&split, data + at, pieces[k][j]);
            at += pieces[k][j];
        }
        ck_assert_uint_eq(at, sizeof data);
        ck_assert_uint_eq(rs_state_io_digest(&split), rs_state_io_digest(&whole));
    }
    data[999] ^= 1;
    rs_state_io changed;
    rs_state_io_start(&changed, NULL, 0);
    rs_state_io_sum(&changed, data, sizeof data);
    ck_assert_uint_ne(rs_state_io_digest(&changed), rs_state_io_digest(&whole));
}
END_TEST

/* The settings: defaults, overrides, and one line naming the key for a
 * bad value. */
START_TEST(checkpoint_settings_are_read_and_checked)
{
    rs_config cfg;
    rs_error err = {{0}};
    const char *base = "{\"traces\": [\"t.h5\"], \"routers\": [\"topk:k=2\"]";
    char text[512];
    snprintf(text, sizeof text, "%s}", base);
    ck_assert_msg(rs_config_parse(&cfg, text, "c.json", &err) == 0, "%s", err.msg);
    ck_assert(cfg.checkpoint_seconds == RS_DEFAULT_CHECKPOINT_SECONDS && cfg.checkpoint_chunks == 0);
    rs_config_free(&cfg);
    snprintf(text, sizeof text, "%s, \"checkpoint_seconds\": 2.5, \"checkpoint_chunks\": 8}", base);
    ck_assert_msg(rs_config_parse(&cfg, text, "c.json", &err) == 0, "%s", err.msg);
    ck_assert(cfg.checkpoint_seconds == 2.5 && cfg.checkpoint_chunks == 8);
    rs_config_free(&cfg);
    const char *bad[] = {"\"checkpoint_seconds\": -1", "\"checkpoint_seconds\": \"often\"",
                         "\"checkpoint_chunks\": 1.5", "\"checkpoint_chunks\": -2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "%s, %s}", base, bad[i]);
        ck_assert_int_ne(rs_config_parse(&cfg, text, "c.json", &err), 0);
        ck_assert_msg(strstr(err.msg, "c.json: checkpoint_"), "%s", err.msg);
        rs_config_free(&cfg);
    }
    char *out = NULL, *msg = NULL;
    ck_assert_int_eq(rs_test_run_cli("run c.json --checkpoint-chunks x", &out, &msg), 2);
    ck_assert_msg(strstr(msg, "--checkpoint-chunks"), "%s", msg);
    free(out);
    free(msg);
}
END_TEST

/* The name of the first checkpoint in dir, or 0. */
static int find_checkpoint(const char *dir, char *name, size_t size)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len > 5 && strcmp(e->d_name + len - 5, ".ckpt") == 0) {
            snprintf(name, size, "%s/%s", dir, e->d_name);
            found = 1;
        }
    }
    closedir(d);
    return found;
}

/* `routesim run` killed (SIGKILL) right after its pass saved a checkpoint:
 * the rerun says it resumes, ends with the uninterrupted run's results.csv
 * byte for byte, and removes the checkpoint. */
START_TEST(a_killed_sweep_resumes_from_its_checkpoint)
{
    enum { BT = 12000, BL = 4, BE = 8, BS = 12 };
    const char *trace = rs_test_path("sweep.h5");
    float *z = rs_test_random_logits(BT, BL, BE, 5);
    int64_t bounds[BS + 1];
    for (int i = 0; i <= BS; i++)
        bounds[i] = (int64_t)BT * i / BS;
    rs_test_trace tt = {.T = BT, .L = BL, .E = BE, .num_seq = BS, .offsets = bounds, .logits = z};
    rs_test_write_trace(trace, &tt);
    free(z);
    const char *config = rs_test_path("sweep.json");
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"name\": \"sweep\", \"traces\": [\"%s\"], \"routers\": [\"topk:k=2\", \"aux_free_bias:k=2\", "
            "\"sticky:k=2\", \"cache_prior:k=2\"], \"metrics\": [\"load\", \"locality\", \"srp\", \"cache\"], "
            "\"chunk_tokens\": 40, \"batch_tokens\": 40, \"threads\": 1, \"checkpoint_chunks\": 1}",
            trace);
    fclose(f);
    char killed_dir[1100], args[3000];
    snprintf(killed_dir, sizeof killed_dir, "%s", rs_test_path("killed"));
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        const char *bin = getenv("ROUTESIM_BIN");
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execl(bin, bin, "run", config, "--output", killed_dir, "-q", "--no-plots", "--no-progress", (char *)NULL);
        _exit(127);
    }
    char runs[1200], checkpoint[1500];
    snprintf(runs, sizeof runs, "%s/runs", killed_dir);
    int status = 0, exited = 0;
    for (int i = 0; i < 60000 && !find_checkpoint(runs, checkpoint, sizeof checkpoint); i++) {
        if (waitpid(child, &status, WNOHANG) == child) {
            exited = 1;
            break;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    if (!exited) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
    }
    ck_assert_msg(!exited, "the run ended before it saved a checkpoint");
    ck_assert(rs_test_file_exists(checkpoint));
    snprintf(args, sizeof args, "run '%s' --output '%s' -q --no-plots", config, killed_dir);
    char *out = NULL, *msg = NULL;
    ck_assert_int_eq(rs_test_run_cli(args, &out, &msg), 0);
    ck_assert_msg(strstr(msg, "resuming the pass at token"), "the rerun did not resume: %s", msg);
    free(out);
    free(msg);
    ck_assert_msg(!find_checkpoint(runs, checkpoint, sizeof checkpoint), "%s left behind", checkpoint);
    char whole_dir[1100];
    snprintf(whole_dir, sizeof whole_dir, "%s", rs_test_path("whole"));
    snprintf(args, sizeof args, "run '%s' --output '%s' -q --no-plots", config, whole_dir);
    ck_assert_int_eq(rs_test_run_cli(args, &out, &msg), 0);
    free(out);
    free(msg);
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/results.csv", whole_dir);
    snprintf(b, sizeof b, "%s/results.csv", killed_dir);
    char *want = rs_test_read_file(a), *got = rs_test_read_file(b);
    ck_assert_ptr_nonnull(want);
    ck_assert_ptr_nonnull(got);
    ck_assert_msg(strcmp(want, got) == 0, "the resumed sweep's results.csv differs from an uninterrupted one's");
    free(want);
    free(got);
}
END_TEST

Suite *checkpoint_suite(void)
{
    Suite *s = suite_create("checkpoint");
    TCase *families = tcase_create("checkpoint_families");
    tcase_set_timeout(families, 300);
    tcase_add_loop_test(families, every_metric_family_resumes_bit_for_bit, 0, rs_metric_count());
    suite_add_tcase(s, families);
    TCase *routers = tcase_create("checkpoint_routers");
    tcase_set_timeout(routers, 300);
    tcase_add_loop_test(routers, every_router_resumes_bit_for_bit, 0, rs_router_count());
    suite_add_tcase(s, routers);
    TCase *tc = tcase_create("checkpoint");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, every_builtin_router_can_save_its_state);
    tcase_add_test(tc, a_checkpoint_of_another_pass_is_not_used);
    tcase_add_test(tc, a_damaged_checkpoint_is_not_used);
    tcase_add_test(tc, a_checkpoint_whose_objects_differ_is_refused);
    tcase_add_test(tc, a_pass_with_a_router_that_cannot_save_its_state_has_no_checkpoints);
    tcase_add_test(tc, checkpoint_settings_are_read_and_checked);
    tcase_add_test(tc, the_checksum_ignores_how_the_bytes_were_split);
    tcase_add_test(tc, a_killed_sweep_resumes_from_its_checkpoint);
    suite_add_tcase(s, tc);
    return s;
}
