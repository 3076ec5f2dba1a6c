/* Blocks of whole sequences (sim/engine/engine_blocks.c), as the ranks of
 * an MPI job route one run: where the blocks start, that blocks routed by
 * separate engines and merged in order give the whole pass's rows bit for
 * bit, and that passes whose blocks would not are refused. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/engine/engine.h"
#include "tests/test_util.h"

enum { T = 777, L = 3, E = 8, BATCH = 50 };
/* 5 sequences: [0, 100), [100, 101), [101, 350), [350, 600), [600, 777) */
static const int64_t offsets[] = {0, 100, 101, 350, 600, 777};
/* 5 sequences, two of them empty: in 5 blocks, blocks 0 and 2 hold no token */
static const int64_t empty_offsets[] = {0, 0, 100, 100, 350, 777};

static const char *write_trace_with(const char *name, const int64_t *offs)
{
    const char *path = rs_test_path(name);
    float *z = rs_test_random_logits(T, L, E, 17);
    int32_t *ids = malloc(T * sizeof *ids);
    for (int t = 0; t < T; t++)
        ids[t] = (t * 11) % 40;
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 5, .offsets = offs, .logits = z, .token_ids = ids};
    rs_test_write_trace(path, &tt);
    free(ids);
    free(z);
    return path;
}

static const char *write_trace(void) { return write_trace_with("blocks.h5", offsets); }

/* Block k of N starts at sequence floor(k S / N). By hand: S = 10, N = 3:
 * 0, 10/3 = 3, 20/3 = 6, 10; S = 7, N = 2: 0, 3, 7; S = N = 5: every
 * sequence its own block; S = 5, N = 4: 0, 5/4 = 1, 10/4 = 2, 15/4 = 3, 5. */
START_TEST(first_sequences_by_hand)
{
    static const int64_t s10n3[] = {0, 3, 6, 10}, s7n2[] = {0, 3, 7}, s5n5[] = {0, 1, 2, 3, 4, 5},
                         s5n4[] = {0, 1, 2, 3, 5};
    for (int k = 0; k <= 3; k++)
        ck_assert_int_eq(rs_block_first_sequence(10, 3, k), s10n3[k]);
    for (int k = 0; k <= 2; k++)
        ck_assert_int_eq(rs_block_first_sequence(7, 2, k), s7n2[k]);
    for (int k = 0; k <= 5; k++)
        ck_assert_int_eq(rs_block_first_sequence(5, 5, k), s5n5[k]);
    for (int k = 0; k <= 4; k++)
        ck_assert_int_eq(rs_block_first_sequence(5, 4, k), s5n4[k]);
    /* no overflow for a trillion sequences: 10^12 * 6 / 7 = 857142857142 */
    ck_assert_int_eq(rs_block_first_sequence(1000000000000LL, 7, 6), 857142857142LL);
}
END_TEST

/* For S >= N the blocks cover the sequences 0..S once, in order, each
 * holding at least one, their sizes differing by at most one. */
START_TEST(blocks_cover_every_sequence_once)
{
    for (int64_t S = 1; S <= 60; S++)
        for (int N = 1; N <= S; N++) {
            int64_t smallest = S, largest = 0;
            ck_assert_int_eq(rs_block_first_sequence(S, N, 0), 0);
            ck_assert_int_eq(rs_block_first_sequence(S, N, N), S);
            for (int k = 0; k < N; k++) {
                int64_t size = rs_block_first_sequence(S, N, k + 1) - rs_block_first_sequence(S, N, k);
                smallest = size < smallest ? size : smallest;
                largest = size > largest ? size : largest;
            }
            ck_assert_int_ge(smallest, 1);
            ck_assert_int_le(largest - smallest, 1);
        }
}
END_TEST

/* Token ranges on the trace above (S = 5): N = 2 cuts at sequence 2,
 * token 101; N = 3 at sequences 1 and 3, tokens 100 and 350; N = 5 gives
 * each sequence, the one-token sequence [100, 101) included. */
START_TEST(block_tokens_by_hand)
{
    const char *path = write_trace();
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    static const int64_t n2[][2] = {{0, 101}, {101, 777}}, n3[][2] = {{0, 100}, {100, 350}, {350, 777}};
    int64_t b = -1, e = -1;
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(rs_block_tokens(tr, 2, k, &b, &e, &err), 0);
        ck_assert_int_eq(b, n2[k][0]);
        ck_assert_int_eq(e, n2[k][1]);
    }
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(rs_block_tokens(tr, 3, k, &b, &e, &err), 0);
        ck_assert_int_eq(b, n3[k][0]);
        ck_assert_int_eq(e, n3[k][1]);
    }
    for (int k = 0; k < 5; k++) {
        ck_assert_int_eq(rs_block_tokens(tr, 5, k, &b, &e, &err), 0);
        ck_assert_int_eq(b, offsets[k]);
        ck_assert_int_eq(e, offsets[k + 1]);
    }
    rs_trace_close(tr);
}
END_TEST

typedef struct specs {
    rs_router_spec router;
    rs_metric_spec metrics[4];
    int nm;
} specs;

/* "name" or "name:k=v,..." */
static void make_specs(specs *s, const char *router, const char *const *metrics, int nm)
{
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&s->router, router, &err) == 0, "%s", err.msg);
    for (int m = 0; m < nm; m++) {
        char name[64];
        const char *colon = strchr(metrics[m], ':');
        snprintf(name, sizeof name, "%.*s", colon ? (int)(colon - metrics[m]) : 63, metrics[m]);
        ck_assert_msg(rs_metric_spec_init(&s->metrics[m], name, "test", &err) == 0, "%s", err.msg);
        if (colon)
            ck_assert_msg(rs_params_parse_list(&s->metrics[m].params, colon + 1, &err) == 0, "%s", err.msg);
    }
    s->nm = nm;
}

static void free_specs(specs *s)
{
    rs_router_spec_free(&s->router);
    for (int m = 0; m < s->nm; m++)
        rs_metric_spec_free(&s->metrics[m]);
}

static const char *const mergeable[] = {"load", "entropy", "cache", "srp"};

static void same_rows(const rs_results *a, const rs_results *b, int N)
{
    ck_assert_uint_eq(a->num_rows, b->num_rows);
    for (size_t i = 0; i < a->num_rows; i++) {
        ck_assert_str_eq(a->rows[i].metric, b->rows[i].metric);
        ck_assert_str_eq(a->rows[i].key, b->rows[i].key);
        ck_assert_int_eq(a->rows[i].layer, b->rows[i].layer);
        ck_assert_msg(memcmp(&a->rows[i].value, &b->rows[i].value, sizeof(double)) == 0 ||
                          (isnan(a->rows[i].value) && isnan(b->rows[i].value)),
                      "%d blocks: %s %s layer %d: %.17g vs %.17g", N, a->rows[i].metric, a->rows[i].key,
                      a->rows[i].layer, a->rows[i].value, b->rows[i].value);
    }
}

/* The whole pass, then the same pass in N = 1..5 blocks, each routed by
 * an engine of its own with smaller chunks and 2 threads (as another rank
 * would), saved as bytes and merged into block 0's engine in order; on
 * the trace above (_i = 0) and on one whose 5 blocks include empty ones,
 * the first among them (_i = 1). */
START_TEST(blocks_merge_to_the_whole_pass)
{
    const char *path = _i == 0 ? write_trace() : write_trace_with("empty-blocks.h5", empty_offsets);
    specs s;
    make_specs(&s, "topk:k=2", mergeable, 4);
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    rs_engine_options opt = {.threads = 1, .batch_tokens = BATCH, .progress = 0};
    rs_engine_options block_opt = {.threads = 2, .chunk_tokens = 64, .batch_tokens = BATCH, .progress = 0};
    rs_results whole;
    rs_results_init(&whole);
    rs_engine *e = NULL;
    ck_assert_msg(rs_engine_create(&e, tr, &s.router, 1, s.metrics, s.nm, &opt, &whole, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_engine_run(e, NULL, NULL, &err) == 0, "%s", err.msg);
    rs_engine_destroy(e);
    ck_assert_uint_gt(whole.num_rows, 0);
    for (int N = 1; N <= 5; N++) {
        rs_results merged;
        rs_results_init(&merged);
        rs_engine *first = NULL;
        ck_assert_msg(rs_engine_create(&first, tr, &s.router, 1, s.metrics, s.nm, &block_opt, &merged, &err) == 0,
                      "%s", err.msg);
        int64_t b = 0, end = 0, starts[5];
        for (int k = 1; k < N; k++)
            ck_assert_int_eq(rs_block_tokens(tr, N, k, &starts[k - 1], &end, &err), 0);
        char why[400] = "";
        ck_assert_msg(rs_engine_blocks_check(first, starts, N - 1, why, sizeof why, &err) == 1, "%s", why);
        ck_assert_int_eq(rs_block_tokens(tr, N, 0, &b, &end, &err), 0);
        ck_assert_msg(rs_engine_run_block(first, b, end, NULL, &err) == 0, "%s", err.msg);
        for (int k = 1; k < N; k++) {
            rs_results scratch;
            rs_results_init(&scratch);
            rs_engine *other = NULL;
            ck_assert_msg(rs_engine_create(&other, tr, &s.router, 1, s.metrics, s.nm, &block_opt, &scratch, &err) == 0,
                          "%s", err.msg);
            ck_assert_int_eq(rs_block_tokens(tr, N, k, &b, &end, &err), 0);
            ck_assert_msg(rs_engine_run_block(other, b, end, NULL, &err) == 0, "%s", err.msg);
            char *bytes = NULL;
            size_t len = 0;
            ck_assert_msg(rs_engine_blocks_save(other, &bytes, &len, &err) == 0, "%s", err.msg);
            rs_engine_destroy(other);
            rs_results_free(&scratch);
            if (k == 1) { /* bytes cut short are refused, not read past (into an engine of its own) */
                rs_results spoilt_res;
                rs_results_init(&spoilt_res);
                rs_engine *spoilt = NULL;
                ck_assert_int_eq(
                    rs_engine_create(&spoilt, tr, &s.router, 1, s.metrics, s.nm, &block_opt, &spoilt_res, &err), 0);
                ck_assert_int_ne(rs_engine_blocks_merge(spoilt, bytes, len - 8, &err), 0);
                rs_engine_destroy(spoilt);
                rs_results_free(&spoilt_res);
            }
            ck_assert_msg(rs_engine_blocks_merge(first, bytes, len, &err) == 0, "%s", err.msg);
            free(bytes);
        }
        ck_assert_msg(rs_engine_blocks_file(first, &err) == 0, "%s", err.msg);
        rs_engine_destroy(first);
        same_rows(&whole, &merged, N);
        rs_results_free(&merged);
    }
    rs_results_free(&whole);
    rs_trace_close(tr);
    free_specs(&s);
}
END_TEST

/* rs_engine_blocks_check on one router and metrics, for blocks starting
 * at the tokens starts[0..n) of the trace above. */
static int check(const char *router, const char *const *metrics, int nm, const int64_t *starts, int n, int bootstrap,
                 char *why, size_t size)
{
    const char *path = write_trace();
    specs s;
    make_specs(&s, router, metrics, nm);
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    rs_engine_options opt = {
        .threads = 1, .batch_tokens = BATCH, .progress = 0, .measure_only = 1, .bootstrap = bootstrap};
    rs_engine *e = NULL;
    ck_assert_msg(rs_engine_create(&e, tr, &s.router, 1, s.metrics, s.nm, &opt, NULL, &err) == 0, "%s", err.msg);
    why[0] = '\0';
    int ok = rs_engine_blocks_check(e, starts, n, why, size, &err);
    rs_engine_destroy(e);
    rs_trace_close(tr);
    free_specs(&s);
    return ok;
}

START_TEST(passes_that_blocks_would_change_are_refused)
{
    static const int64_t n2[] = {101}, n3[] = {100, 350}, n5[] = {100, 101, 350, 600};
    static const char *const load[] = {"load"}, *const never[] = {"load", "cache:reset=never"};
    char why[400];
    /* per-token routers, and a grouped one whose groups are whole sequences */
    ck_assert_int_eq(check("topk:k=2", mergeable, 4, n3, 2, 0, why, sizeof why), 1);
    ck_assert_int_eq(check("expert_choice:group=sequence", load, 1, n3, 2, 0, why, sizeof why), 1);
    /* batches of 50 tokens: N = 3 cuts at 100 and 350, between batches; N = 2
     * and N = 5 at 101, inside the batch [100, 150)... */
    ck_assert_int_eq(check("expert_choice:group=batch", load, 1, n3, 2, 0, why, sizeof why), 1);
    ck_assert_int_eq(check("expert_choice:group=batch", load, 1, n2, 1, 0, why, sizeof why), 0);
    ck_assert_msg(strstr(why, "batch_tokens=50") && strstr(why, "token 101"), "%s", why);
    ck_assert_int_eq(check("expert_choice:group=batch", load, 1, n5, 4, 0, why, sizeof why), 0);
    /* ...and decode steps are formed from the trace's start */
    ck_assert_int_eq(check("expert_choice:group=step", load, 1, n3, 2, 0, why, sizeof why), 0);
    ck_assert_msg(strstr(why, "decode steps"), "%s", why);
    /* a router carrying state across sequences (its checkpoint saves bytes) */
    ck_assert_int_eq(check("aux_free_bias:k=2,group=sequence", load, 1, n3, 2, 0, why, sizeof why), 0);
    ck_assert_msg(strstr(why, "router aux_free_bias") && strstr(why, "carries state"), "%s", why);
    /* a metric whose accumulators cannot merge */
    ck_assert_int_eq(check("topk:k=2", never, 2, n3, 2, 0, why, sizeof why), 0);
    ck_assert_msg(strstr(why, "reset=never"), "%s", why);
    /* bootstrap */
    ck_assert_int_eq(check("topk:k=2", load, 1, n3, 2, 10, why, sizeof why), 0);
    ck_assert_msg(strstr(why, "bootstrap"), "%s", why);
}
END_TEST

Suite *engine_blocks_suite(void)
{
    Suite *s = suite_create("engine_blocks");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, first_sequences_by_hand);
    tcase_add_test(tc, blocks_cover_every_sequence_once);
    tcase_add_test(tc, block_tokens_by_hand);
    tcase_add_loop_test(tc, blocks_merge_to_the_whole_pass, 0, 2);
    tcase_add_test(tc, passes_that_blocks_would_change_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
