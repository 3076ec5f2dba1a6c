/* routesim import llamacpp: files written as llama.cpp's moe-trace writes
 * them (PR #28544's layer,expert rows, and the forks' phase,token,layer,
 * rank,expert rows, read with and without the top-k view's stride), imported
 * with the CLI and checked token by token; malformed files get one line
 * and leave no trace. */
#include <check.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tests/test_util.h"
#include "workloads/trace/trace.h"

/* The run the files record: a 6-layer model whose layers 1, 3 and 5 are MoE
 * (5 is the model's last: llama.cpp runs it only on the token that produces
 * logits, the batch's last), E = 8 experts, k = 2; a 5-token prompt decoded
 * in batches of n_ubatch = 3 tokens, then 3 one-token decode steps. */
enum { E = 8, K = 2, N_LAYER = 6, NL = 3, PROMPT = 5, UBATCH = 3, DECODE = 3, T = PROMPT + DECODE };
static const int moe_layers[NL] = {1, 3, 5};
static const int32_t base_order[NL][E] = {{3, 6, 1, 5, 7, 0, 2, 4}, {0, 7, 2, 4, 6, 1, 5, 3}, {5, 2, 7, 0, 3, 4, 6, 1}};

/* Token t's experts at MoE layer li by descending router score (ggml_argsort
 * of one row): consecutive tokens share an expert, as real routing does. */
static int32_t argsort_entry(int seq, int t, int li, int r)
{
    return (base_order[li][(t + r) % E] + seq) % E;
}

typedef struct batch {
    int first, count, decode;
} batch;

static int batches(batch *out)
{
    int n = 0;
    for (int i = 0; i < PROMPT; i += UBATCH)
        out[n++] = (batch){i, PROMPT - i < UBATCH ? PROMPT - i : UBATCH, 0};
    for (int i = 0; i < DECODE; i++)
        out[n++] = (batch){PROMPT + i, 1, 1};
    return n;
}

/* The tokens of one ffn_moe_topk tensor: the batch's, or only its last at the model's last layer. */
static void tensor_tokens(const batch *b, int li, int *first, int *count)
{
    int last_layer = moe_layers[li] == N_LAYER - 1;
    *first = last_layer ? b->first + b->count - 1 : b->first;
    *count = last_layer ? 1 : b->count;
}

/* What the writer prints for row j, rank r of a tensor: read through the
 * view's stride, or (PR #28544's ggml_backend_tensor_get of n*k ints from
 * the view's start) straight through the [tokens, E] argsort buffer. */
static int32_t written_id(int seq, int first, int j, int li, int r, int contiguous)
{
    if (!contiguous)
        return argsort_entry(seq, first + j, li, r);
    int at = j * K + r;
    return argsort_entry(seq, first + at / E, li, at % E);
}

typedef struct out_file {
    FILE *f;
    gzFile gz;
} out_file;

static void put(out_file *o, const char *line)
{
    if (o->gz)
        gzputs(o->gz, line);
    else
        fputs(line, o->f);
}

/* examples/moe-trace of PR #28544: `layer,expert` rows, no header. */
static const char *write_pr_file(const char *name, int seq, int gzip)
{
    const char *path = rs_test_path(name);
    out_file o = {0};
    if (gzip)
        o.gz = gzopen(path, "wb");
    else
        o.f = fopen(path, "w");
    ck_assert(o.gz || o.f);
    batch b[16];
    int nb = batches(b);
    char line[64];
    for (int i = 0; i < nb; i++)
        for (int li = 0; li < NL; li++) {
            int first, count;
            tensor_tokens(&b[i], li, &first, &count);
            for (int j = 0; j < count; j++)
                for (int r = 0; r < K; r++) {
                    snprintf(line, sizeof line, "%d,%d\n", moe_layers[li], written_id(seq, first, j, li, r, 1));
                    put(&o, line);
                }
        }
    if (o.gz)
        gzclose(o.gz);
    else
        fclose(o.f);
    return path;
}

/* The forks: a header, then phase,token,layer,rank,expert with token =
 * the batch's first token + the row's index in the tensor. */
static const char *write_fork_file(const char *name, int seq, int contiguous)
{
    const char *path = rs_test_path(name);
    out_file o = {.f = fopen(path, "w")};
    ck_assert_ptr_nonnull(o.f);
    put(&o, "phase,token,layer,rank,expert\n");
    batch b[16];
    int nb = batches(b);
    char line[96];
    for (int i = 0; i < nb; i++)
        for (int li = 0; li < NL; li++) {
            int first, count;
            tensor_tokens(&b[i], li, &first, &count);
            for (int j = 0; j < count; j++)
                for (int r = 0; r < K; r++) {
                    snprintf(line, sizeof line, "%s,%d,%d,%d,%d\n", b[i].decode ? "decode" : "prefill",
                             b[i].first + j, moe_layers[li], r, written_id(seq, first, j, li, r, contiguous));
                    put(&o, line);
                }
        }
    fclose(o.f);
    return path;
}

/* What a sequence of the trace must hold: ids [T, NL, K]. keep: "first"
 * keeps only each tensor's first token (a contiguous read judged as such),
 * "all" every row as written. */
static void expected_ids(int seq, int contiguous_file, int keep_all, int32_t *ids)
{
    for (int i = 0; i < T * NL * K; i++)
        ids[i] = -1;
    batch b[16];
    int nb = batches(b);
    for (int i = 0; i < nb; i++)
        for (int li = 0; li < NL; li++) {
            int first, count;
            tensor_tokens(&b[i], li, &first, &count);
            for (int j = 0; j < count; j++) {
                if (!keep_all && j > 0)
                    continue;
                for (int r = 0; r < K; r++)
                    ids[((first + j) * NL + li) * K + r] = written_id(seq, first, j, li, r, contiguous_file);
            }
        }
}

typedef struct loaded {
    rs_trace_info info;
    int64_t offsets[4];
    int32_t ids[3 * T * NL * K];
    uint8_t phase[3 * T];
    int32_t layer_index[NL];
    char notes[4096];
} loaded;

static void load(const char *path, loaded *t)
{
    rs_error err = {{0}};
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    t->info = *rs_trace_get_info(tr);
    ck_assert_int_le(t->info.num_sequences, 3);
    ck_assert_int_le(t->info.num_tokens, 3 * T);
    ck_assert_int_eq(t->info.num_layers, NL);
    ck_assert_int_eq(t->info.recorded_k, K);
    ck_assert_int_eq(rs_trace_read_offsets(tr, 0, t->info.num_sequences + 1, t->offsets, &err), 0);
    ck_assert_msg(rs_trace_read_topk(tr, 0, (int)t->info.num_tokens, t->ids, NULL, &err) == 0, "%s", err.msg);
    if (t->info.has_phase)
        ck_assert_int_eq(rs_trace_read_phase(tr, 0, (int)t->info.num_tokens, t->phase, &err), 0);
    snprintf(t->notes, sizeof t->notes, "%s", rs_trace_import_notes(tr));
    rs_trace_close(tr);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t attr = H5Aopen(file, "layer_index", H5P_DEFAULT);
    ck_assert(file >= 0 && attr >= 0 && H5Aread(attr, H5T_NATIVE_INT32, t->layer_index) >= 0);
    H5Aclose(attr);
    H5Fclose(file);
}

/* Sequence seq of the trace against the expected ids, token by token. */
static void check_sequence(const loaded *t, int s, int seq, int contiguous_file, int keep_all)
{
    int32_t want[T * NL * K];
    expected_ids(seq, contiguous_file, keep_all, want);
    ck_assert_int_eq(t->offsets[s + 1] - t->offsets[s], T);
    for (int tok = 0; tok < T; tok++)
        for (int li = 0; li < NL; li++)
            for (int r = 0; r < K; r++) {
                int at = (tok * NL + li) * K + r;
                int32_t got = t->ids[t->offsets[s] * NL * K + at];
                ck_assert_msg(got == want[at], "sequence %d token %d layer %d rank %d: %d, expected %d", s, tok,
                              moe_layers[li], r, got, want[at]);
            }
}

static int import_cli(const char *args, char **err_text)
{
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(args, &out, &err);
    free(out);
    if (err_text)
        *err_text = err;
    else
        free(err);
    return rc;
}

START_TEST(pr_rows_token_by_token)
{
    const char *a = write_pr_file("pr-a.csv", 0, 0), *b = write_pr_file("pr-b.csv.gz", 1, 1);
    const char *out = rs_test_path("pr.h5");
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import llamacpp '%s' '%s' -o '%s' --experts %d", a, b, out, E);
    ck_assert_int_eq(import_cli(args, &err), 0);
    ck_assert_msg(strstr(err, "routesim: imported 84 rows from 2 files") && strstr(err, "16 tokens, 3 layers (logged "
                                                                                          "as 1, 3, 5), K = 2"),
                  "%s", err);
    free(err);
    loaded *t = calloc(1, sizeof *t);
    load(out, t);
    ck_assert_int_eq(t->info.num_sequences, 2); /* one per file */
    ck_assert_int_eq(t->info.num_experts, E);
    ck_assert_int_eq(t->info.top_k, K);
    ck_assert_int_eq(t->info.has_phase, 0); /* the rows do not say */
    ck_assert_int_eq(t->info.has_topk_weights, 0);
    for (int li = 0; li < NL; li++)
        ck_assert_int_eq(t->layer_index[li], moe_layers[li]);
    /* the PR's writer read the strided view as contiguous: only each
     * tensor's first token is its own; the last layer's row is the batch's last token */
    check_sequence(t, 0, 0, 1, 0);
    check_sequence(t, 1, 1, 1, 0);
    ck_assert_msg(strstr(t->notes, "k = 2 from the shortest run of one layer"), "%s", t->notes);
    ck_assert_msg(strstr(t->notes, "layer 5 ran on fewer tokens in 4 batches"), "%s", t->notes);
    ck_assert_msg(strstr(t->notes, "top-k view read as contiguous in 2 of 2 files"), "%s", t->notes);
    ck_assert_msg(strstr(t->notes, "no phase"), "%s", t->notes);
    free(t);

    char *info = NULL;
    snprintf(args, sizeof args, "info '%s'", out);
    ck_assert_int_eq(rs_test_run_cli(args, &info, NULL), 0);
    ck_assert_msg(strstr(info, "imported   rows layer,expert (llama.cpp PR #28544"), "%s", info);
    free(info);
    snprintf(args, sizeof args, "route '%s' --router replay --metrics load", out);
    ck_assert_int_eq(rs_test_run_cli(args, NULL, NULL), 0);
}
END_TEST

/* --reader strided keeps every row as written (wrong ids included). */
START_TEST(pr_rows_read_strided)
{
    const char *a = write_pr_file("strided-a.csv", 0, 0), *out = rs_test_path("strided.h5");
    char args[4096];
    snprintf(args, sizeof args, "import llamacpp '%s' -o '%s' --experts %d --reader strided --top-k 2", a, out, E);
    ck_assert_int_eq(import_cli(args, NULL), 0);
    loaded *t = calloc(1, sizeof *t);
    load(out, t);
    check_sequence(t, 0, 0, 1, 1);
    ck_assert_msg(strstr(t->notes, "every row kept as its token's ids (--reader strided)") &&
                      strstr(t->notes, "k = 2 from --top-k"),
                  "%s", t->notes);
    free(t);
}
END_TEST

START_TEST(fork_rows_token_by_token)
{
    const char *a = write_fork_file("fork-a.csv", 2, 0), *out = rs_test_path("fork.h5");
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import llamacpp '%s' -o '%s' --experts %d --model test/moe", a, out, E);
    ck_assert_int_eq(import_cli(args, &err), 0);
    ck_assert_msg(strstr(err, "8 tokens (5 prompt, 3 decode)"), "%s", err);
    free(err);
    loaded *t = calloc(1, sizeof *t);
    load(out, t);
    ck_assert_int_eq(t->info.num_sequences, 1);
    ck_assert_int_eq(t->info.has_phase, 1);
    for (int tok = 0; tok < T; tok++)
        ck_assert_int_eq(t->phase[tok], tok >= PROMPT);
    /* stride-aware rows are every token's own; the last layer's row, which
     * the fork numbers as the batch's first token, belongs to its last */
    check_sequence(t, 0, 2, 0, 1);
    ck_assert_msg(strstr(t->notes, "the writer numbers them from the batch's first token") &&
                      strstr(t->notes, "every row kept as its token's ids (auto") &&
                      strstr(t->notes, "k = 2 from the rank column"),
                  "%s", t->notes);
    free(t);
}
END_TEST

/* The forks' first version read the view as contiguous too: auto sees it. */
START_TEST(fork_rows_read_contiguously)
{
    const char *a = write_fork_file("forkc-a.csv", 1, 1), *b = write_fork_file("forkc-b.csv", 0, 0);
    const char *out = rs_test_path("forkc.h5");
    char args[4096];
    snprintf(args, sizeof args, "import llamacpp '%s' '%s' -o '%s' --experts %d", a, b, out, E);
    ck_assert_int_eq(import_cli(args, NULL), 0);
    loaded *t = calloc(1, sizeof *t);
    load(out, t);
    ck_assert_int_eq(t->info.num_sequences, 2);
    check_sequence(t, 0, 1, 1, 0); /* judged per file */
    check_sequence(t, 1, 0, 0, 1);
    ck_assert_msg(strstr(t->notes, "read as contiguous in 1 of 2 files"), "%s", t->notes);
    free(t);
}
END_TEST

static const char *write_text(const char *name, const char *text)
{
    const char *path = rs_test_path(name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* One line naming the file, the line and the field; no trace left. */
START_TEST(malformed_files_are_refused)
{
    static const struct {
        const char *csv, *options, *message;
    } cases[] = {
        {"1,3\n1,6\n1,", "", "bad.csv: line 3: expert: '' is not an integer"},
        {"1,3\n1,6\n3", "", "bad.csv: line 3: 1 fields, expected 2 (layer,expert)"},
        {"1,3\n1,9\n", "", "bad.csv: line 2: expert: 9 is outside [0, 7] (--experts)"},
        {"1,3\n-1,2\n", "", "bad.csv: line 2: layer: -1 is outside [0, 2147483647]"},
        {"1,3\n1,3\n", "", "bad.csv: line 2: expert: 3 is listed twice for one token (layer 1)"},
        {"1,3\n1,6\n1,2\n3,1\n3,2\n", "--top-k 2", "bad.csv: lines 1-3: layer 1 holds 3 rows for one batch, not a "
                                                   "multiple of k = 2"},
        {"1,3\n1,6\n3,1\n3,2\n3,4\n3,5\n", "", "bad.csv: line 3: layer 3 holds 2 tokens in a batch whose layer 1 "
                                               "holds 1"},
        {"layer,expert\n1,3\n", "", "bad.csv: line 1: neither the header phase,token,layer,rank,expert nor a "
                                    "layer,expert row"},
        {"", "", "bad.csv: no rows"},
        {"phase,token,layer,rank,expert\n", "", "bad.csv: no rows after the header"},
        {"phase,token,layer,rank,expert\nprefill,0,1,0,3\nprefill,0,1,1\n", "",
         "bad.csv: line 3: 4 fields, expected 5 (phase,token,layer,rank,expert)"},
        {"phase,token,layer,rank,expert\nprefill,0,1,0,3\nprefill,0,1,1,x\n", "",
         "bad.csv: line 3: expert: 'x' is not an integer"},
        {"phase,token,layer,rank,expert\nprefill,0,1,0,3\nprefill,0,1,1,6\nprefill,1,1,1,2\nprefill,1,1,0,4\n", "",
         "bad.csv: line 4: rank: 1, expected 0 (each token's ranks run 0 .. 1 in order)"},
        {"phase,token,layer,rank,expert\nprefill,0,1,0,3\nprefill,0,1,1,6\nprefill,2,1,0,2\nprefill,2,1,1,4\n", "",
         "bad.csv: line 4: token: 2, expected 1"},
        {"phase,token,layer,rank,expert\nprefill,3,1,0,3\nprefill,3,1,1,6\n", "",
         "bad.csv: line 2: token: 3 starts the file, expected 0"},
        {"phase,token,layer,rank,expert\nprefill,0,1,0,3\nprefill,0,1,1,6\ndecode,0,3,0,3\ndecode,0,3,1,6\n", "",
         "bad.csv: line 4: phase: decode within a prefill batch (from line 2)"},
        {"phase,token,layer,rank,expert\nprefill,0,1,0,3\nfinal,0,1,1,6\n", "",
         "bad.csv: line 3: phase: 'final' is neither prefill nor decode"},
        {"phase,token,layer,rank,expert\ndecode,0,1,0,3\ndecode,0,1,1,6\nphase,token,layer,rank,expert\n", "",
         "bad.csv: line 4: phase: the header again"},
        {"1,3\n1,6\n", "--top-k 4", "bad.csv: lines 1-2: layer 1 holds 2 rows for one batch, not a multiple of k = 4"},
    };
    char out[512]; /* rs_test_path's buffers rotate */
    snprintf(out, sizeof out, "%s", rs_test_path("bad.h5"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *in = write_text("bad.csv", cases[i].csv);
        char args[4096], *err = NULL;
        snprintf(args, sizeof args, "import llamacpp '%s' -o '%s' --experts %d %s", in, out, E, cases[i].options);
        int rc = import_cli(args, &err);
        ck_assert_msg(rc == 1, "case %zu: exit %d: %s", i, rc, err);
        ck_assert_msg(strstr(err, cases[i].message), "case %zu: '%s' not in: %s", i, cases[i].message, err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "case %zu: not one line: %s", i, err);
        ck_assert_msg(!rs_test_file_exists(out), "case %zu left %s", i, out);
        free(err);
    }
}
END_TEST

START_TEST(bad_file_sets_are_refused)
{
    char pairs[512], out[512]; /* rs_test_path's buffers rotate */
    snprintf(pairs, sizeof pairs, "%s", write_pr_file("set-pairs.csv", 0, 0));
    snprintf(out, sizeof out, "%s", rs_test_path("set.h5"));
    write_fork_file("set-columns.csv", 0, 0);
    static const struct {
        const char *second, *message;
    } cases[] = {
        {"set-columns.csv", "set-columns.csv: phase,token,layer,rank,expert rows, but "},
        {"no-such.csv", "no-such.csv: cannot open (No such file or directory)"},
        {"-", "reads each file twice, so not from standard input"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[4096], *err = NULL;
        const char *second = strcmp(cases[i].second, "-") == 0 ? "-" : rs_test_path(cases[i].second);
        snprintf(args, sizeof args, "import llamacpp '%s' '%s' -o '%s' --experts %d </dev/null", pairs, second, out,
                 E);
        ck_assert_int_eq(import_cli(args, &err), 1);
        ck_assert_msg(strstr(err, cases[i].message), "case %zu: '%s' not in: %s", i, cases[i].message, err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not one line: %s", err);
        ck_assert(!rs_test_file_exists(out));
        free(err);
    }
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import llamacpp '%s' -o '%s'", pairs, out);
    ck_assert_int_eq(import_cli(args, &err), 2); /* --experts is required */
    ck_assert_msg(strstr(err, "--experts E is required"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "import llamacpp '%s' -o '%s' --experts 8 --reader sideways", pairs, out);
    ck_assert_int_eq(import_cli(args, &err), 2);
    free(err);
    snprintf(args, sizeof args, "import llamacpp '%s' -o '%s' --experts 8 --top-k 9", pairs, out);
    ck_assert_int_eq(import_cli(args, &err), 2);
    ck_assert_msg(strstr(err, "--top-k 9 exceeds --experts 8"), "%s", err);
    free(err);
    ck_assert(!rs_test_file_exists(out));
}
END_TEST

Suite *import_llamacpp_suite(void)
{
    Suite *s = suite_create("import_llamacpp");
    TCase *tc = tcase_create("import_llamacpp");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, pr_rows_token_by_token);
    tcase_add_test(tc, pr_rows_read_strided);
    tcase_add_test(tc, fork_rows_token_by_token);
    tcase_add_test(tc, fork_rows_read_contiguously);
    tcase_add_test(tc, malformed_files_are_refused);
    tcase_add_test(tc, bad_file_sets_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
