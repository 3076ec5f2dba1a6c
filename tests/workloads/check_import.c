/* routesim import jsonl: JSON-lines routing logs into top-k-only traces.
 * Small logs are written here, imported through the library and the binary,
 * and the resulting traces read back and compared with arrays worked out by
 * hand from the log lines. */
#include <check.h>
#include <dirent.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zlib.h>

#include "tests/test_util.h"
#include "workloads/import/import_jsonl.h"
#include "workloads/trace/trace.h"

/* ---- helpers ------------------------------------------------------------ */

static char *write_log(const char *name, const char *const *lines, int n, const int *order)
{
    char *path = strdup(rs_test_path(name));
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s\n", lines[order ? order[i] : i]);
    fclose(f);
    return path;
}

static char *write_text(const char *name, const char *text)
{
    char *path = strdup(rs_test_path(name));
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static char *scratch(const char *name) { return strdup(rs_test_path(name)); }

/* Caps the size of files this test (and the commands it runs) may write at
 * 64 MiB, so that a regression fails with SIGXFSZ instead of filling the
 * disk; uncap_file_size restores the limit before. */
static struct rlimit saved_file_size;

static void cap_file_size(void)
{
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved_file_size), 0);
    struct rlimit cap = saved_file_size;
    if (cap.rlim_cur == RLIM_INFINITY || cap.rlim_cur > (rlim_t)64 << 20)
        cap.rlim_cur = (rlim_t)64 << 20;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &cap), 0);
}

static void uncap_file_size(void) { ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved_file_size), 0); }

/* No file of the scratch directory starts with prefix (a trace or its temporary file). */
static void assert_no_file_like(const char *prefix)
{
    DIR *d = opendir(rs_test_dir());
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        ck_assert_msg(strncmp(e->d_name, prefix, strlen(prefix)) != 0, "%s left behind", e->d_name);
    closedir(d);
}

enum { STRICT = 1, PAD_GAPS = 2 };

/* Imports in -> out with the library (flags: STRICT, PAD_GAPS); returns its status. */
static int import(const char *in, const char *out, int experts, const char *map, int flags,
                  rs_import_jsonl_report *report, rs_error *err)
{
    rs_import_jsonl_options opt;
    rs_import_jsonl_options_init(&opt);
    opt.input = in;
    opt.output = out;
    opt.num_experts = experts;
    opt.strict = (flags & STRICT) != 0;
    opt.pad_gaps = (flags & PAD_GAPS) != 0;
    if (map)
        ck_assert_msg(rs_jsonl_key_map_parse(&opt.map, map, err) == 0, "%s", err->msg);
    return rs_import_jsonl(&opt, report, err);
}

static void import_ok(const char *in, const char *out, int experts, const char *map, rs_import_jsonl_report *report)
{
    rs_error err = {{0}};
    ck_assert_msg(import(in, out, experts, map, 0, report, &err) == 0, "%s", err.msg);
}

static void import_padded(const char *in, const char *out, int experts, rs_import_jsonl_report *report)
{
    rs_error err = {{0}};
    ck_assert_msg(import(in, out, experts, NULL, PAD_GAPS, report, &err) == 0, "%s", err.msg);
}

/* A trace read back whole. */
typedef struct loaded {
    rs_trace_info info;
    int64_t *offsets;
    int32_t *ids, *token_ids;
    float *weights;
} loaded;

static loaded load(const char *path)
{
    rs_error err = {{0}};
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    loaded t = {.info = *rs_trace_get_info(tr)};
    int n = (int)t.info.num_tokens;
    size_t cells = (size_t)n * (size_t)t.info.num_layers * (size_t)t.info.recorded_k;
    t.offsets = calloc((size_t)t.info.num_sequences + 1, sizeof *t.offsets);
    t.ids = calloc(cells, sizeof *t.ids);
    t.weights = t.info.has_topk_weights ? calloc(cells, sizeof *t.weights) : NULL;
    t.token_ids = t.info.has_token_ids ? calloc((size_t)n, sizeof *t.token_ids) : NULL;
    ck_assert_msg(rs_trace_read_offsets(tr, 0, t.info.num_sequences + 1, t.offsets, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_trace_read_topk(tr, 0, n, t.ids, t.weights, &err) == 0, "%s", err.msg);
    if (t.token_ids)
        ck_assert_msg(rs_trace_read_token_ids(tr, 0, n, t.token_ids, &err) == 0, "%s", err.msg);
    t.info.path = NULL; /* owned by the closed trace */
    t.info.unit = t.info.model = t.info.scoring = NULL;
    rs_trace_close(tr);
    return t;
}

static void unload(loaded *t)
{
    free(t->offsets);
    free(t->ids);
    free(t->weights);
    free(t->token_ids);
}

static void assert_ints(const int32_t *got, const int32_t *want, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s[%zu] = %d, expected %d", what, i, got[i], want[i]);
}

static void assert_offsets(const loaded *t, const int64_t *want, int num_seq)
{
    ck_assert_int_eq(t->info.num_sequences, num_seq);
    for (int s = 0; s <= num_seq; s++)
        ck_assert_msg(t->offsets[s] == want[s], "offsets[%d] = %lld, expected %lld", s, (long long)t->offsets[s],
                      (long long)want[s]);
}

static void read_int_array_attr(const char *path, const char *name, int32_t *out, int n)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(file >= 0, "cannot open %s", path);
    hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    ck_assert_msg(attr >= 0, "%s: no attribute %s", path, name);
    hid_t space = H5Aget_space(attr);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(space), n);
    ck_assert(H5Aread(attr, H5T_NATIVE_INT32, out) >= 0);
    H5Sclose(space);
    H5Aclose(attr);
    H5Fclose(file);
}

/* ---- ordering ------------------------------------------------------------ */

/* Two sequences (ids 7 and 3), two layers, with weights and token ids. */
static const char *const ordered_lines[] = {
    "{\"seq\": 3, \"token\": 0, \"layer\": 0, \"experts\": [1, 2], \"w\": [0.75, 0.25], \"tid\": 11}",
    "{\"seq\": 3, \"token\": 0, \"layer\": 1, \"experts\": [0, 3], \"w\": [0.5, 0.5], \"tid\": 11}",
    "{\"seq\": 3, \"token\": 1, \"layer\": 0, \"experts\": [2, 0], \"w\": [0.625, 0.375], \"tid\": 12}",
    "{\"seq\": 3, \"token\": 1, \"layer\": 1, \"experts\": [3, 1], \"w\": [0.875, 0.125], \"tid\": 12}",
    "{\"seq\": 7, \"token\": 0, \"layer\": 0, \"experts\": [3, 0], \"w\": [0.5, 0.5], \"tid\": 13}",
    "{\"seq\": 7, \"token\": 0, \"layer\": 1, \"experts\": [2, 1], \"w\": [0.25, 0.75], \"tid\": 13}",
};
/* Sequence 7 first, layers and tokens reversed: the importer must sort it all. */
static const int shuffled_order[] = {5, 3, 4, 1, 2, 0};

/* Written by hand from ordered_lines: seq 3 (2 tokens) before seq 7 (1 token). */
static const int64_t want_offsets[] = {0, 2, 3};
static const int32_t want_ids[] = {1, 2, 0, 3, /* seq 3 token 0 */ 2, 0, 3, 1, /* token 1 */ 3, 0, 2, 1};
static const float want_weights[] = {0.75f, 0.25f, 0.5f,   0.5f, 0.625f, 0.375f,
                                     0.875f, 0.125f, 0.5f, 0.5f, 0.25f,  0.75f};
static const int32_t want_token_ids[] = {11, 12, 13};

START_TEST(test_shuffled_rows_give_the_ordered_trace)
{
    char *ordered = write_log("ordered.jsonl", ordered_lines, 6, NULL);
    char *shuffled = write_log("shuffled.jsonl", ordered_lines, 6, shuffled_order);
    char *a = scratch("ordered.h5"), *b = scratch("shuffled.h5");
    const char *map = "weights=w,token_id=tid";
    rs_import_jsonl_report report;
    import_ok(ordered, a, 4, map, &report);
    rs_import_jsonl_report_free(&report);
    import_ok(shuffled, b, 4, map, &report);
    ck_assert_int_eq(report.rows, 6);
    ck_assert_int_eq(report.sequences, 2);
    ck_assert_int_eq(report.tokens, 3);
    ck_assert_int_eq(report.k, 2);
    ck_assert_int_eq(report.missing_pairs, 0);
    rs_import_jsonl_report_free(&report);

    const char *paths[] = {a, b};
    for (int i = 0; i < 2; i++) {
        loaded t = load(paths[i]);
        ck_assert_int_eq(t.info.num_tokens, 3);
        ck_assert_int_eq(t.info.num_layers, 2);
        ck_assert_int_eq(t.info.num_experts, 4);
        ck_assert_int_eq(t.info.recorded_k, 2);
        assert_offsets(&t, want_offsets, 2);
        assert_ints(t.ids, want_ids, 12, paths[i]);
        ck_assert_ptr_nonnull(t.weights);
        for (int j = 0; j < 12; j++)
            ck_assert_float_eq(t.weights[j], want_weights[j]);
        ck_assert_ptr_nonnull(t.token_ids);
        assert_ints(t.token_ids, want_token_ids, 3, "token ids");
        unload(&t);
    }
    free(ordered), free(shuffled), free(a), free(b);
}
END_TEST

START_TEST(test_integer_ids_sort_numerically)
{
    /* Ids 10, -1, 2 in that order of appearance, with 1, 2 and 3 tokens. */
    const char *const lines[] = {
        "{\"seq\": 10, \"token\": 0, \"layer\": 0, \"experts\": [0]}",
        "{\"seq\": -1, \"token\": 1, \"layer\": 0, \"experts\": [1]}",
        "{\"seq\": 2, \"token\": 2, \"layer\": 0, \"experts\": [2]}",
        "{\"seq\": -1, \"token\": 0, \"layer\": 0, \"experts\": [1]}",
        "{\"seq\": 2, \"token\": 0, \"layer\": 0, \"experts\": [2]}",
        "{\"seq\": 2, \"token\": 1, \"layer\": 0, \"experts\": [2]}",
    };
    char *in = write_log("numeric.jsonl", lines, 6, NULL), *out = scratch("numeric.h5");
    rs_import_jsonl_report report;
    import_ok(in, out, 3, NULL, &report);
    rs_import_jsonl_report_free(&report);
    loaded t = load(out);
    /* By hand: -1 (2 tokens, expert 1), 2 (3 tokens, expert 2), 10 (1 token, expert 0). */
    const int64_t offsets[] = {0, 2, 5, 6};
    const int32_t ids[] = {1, 1, 2, 2, 2, 0};
    assert_offsets(&t, offsets, 3);
    assert_ints(t.ids, ids, 6, "ids");
    unload(&t);
    free(in), free(out);
}
END_TEST

START_TEST(test_string_ids_keep_first_appearance)
{
    /* "zeta" appears first, then 5 (a number among strings), then "alpha". */
    const char *const lines[] = {
        "{\"seq\": \"zeta\", \"token\": 0, \"layer\": 0, \"experts\": [0]}",
        "{\"seq\": 5, \"token\": 0, \"layer\": 0, \"experts\": [1]}",
        "{\"seq\": \"alpha\", \"token\": 1, \"layer\": 0, \"experts\": [2]}",
        "{\"seq\": \"alpha\", \"token\": 0, \"layer\": 0, \"experts\": [2]}",
        "{\"seq\": \"zeta\", \"token\": 1, \"layer\": 0, \"experts\": [0]}",
        "{\"seq\": \"5\", \"token\": 0, \"layer\": 0, \"experts\": [3]}",
    };
    char *in = write_log("strings.jsonl", lines, 6, NULL), *out = scratch("strings.h5");
    rs_import_jsonl_report report;
    import_ok(in, out, 4, NULL, &report);
    ck_assert_int_eq(report.sequences, 4); /* the string "5" is not the number 5 */
    rs_import_jsonl_report_free(&report);
    loaded t = load(out);
    /* By hand: zeta (2 tokens), 5 (1), alpha (2), "5" (1). */
    const int64_t offsets[] = {0, 2, 3, 5, 6};
    const int32_t ids[] = {0, 0, 1, 2, 2, 3};
    assert_offsets(&t, offsets, 4);
    assert_ints(t.ids, ids, 6, "ids");
    unload(&t);
    free(in), free(out);
}
END_TEST

/* ---- layers, gaps and padding ------------------------------------------ */

START_TEST(test_interleaved_layers_map_to_ranks)
{
    /* Layers 5, 1, 3 logged (every other layer is dense in the model). */
    const char *const lines[] = {
        "{\"seq\": 0, \"token\": 0, \"layer\": 5, \"experts\": [2]}",
        "{\"seq\": 0, \"token\": 0, \"layer\": 1, \"experts\": [0]}",
        "{\"seq\": 0, \"token\": 0, \"layer\": 3, \"experts\": [1]}",
    };
    char *in = write_log("layers.jsonl", lines, 3, NULL), *out = scratch("layers.h5");
    rs_import_jsonl_report report;
    import_ok(in, out, 3, NULL, &report);
    ck_assert_int_eq(report.num_layers, 3);
    const int32_t want_index[] = {1, 3, 5};
    assert_ints(report.layer_index, want_index, 3, "report layer_index");
    rs_import_jsonl_report_free(&report);
    loaded t = load(out);
    ck_assert_int_eq(t.info.num_layers, 3);
    const int32_t ids[] = {0, 1, 2}; /* layer 1 -> 0, 3 -> 1, 5 -> 2 */
    assert_ints(t.ids, ids, 3, "ids");
    unload(&t);
    int32_t stored[3];
    read_int_array_attr(out, "layer_index", stored, 3);
    assert_ints(stored, want_index, 3, "layer_index attribute");
    free(in), free(out);
}
END_TEST

/* Token 1 of "a" misses layer 2; token 2 of "a" and token 0 of "b" have no rows at all. */
static const char *const gappy_lines[] = {
    "{\"seq\": \"a\", \"token\": 0, \"layer\": 0, \"experts\": [0, 1]}",
    "{\"seq\": \"a\", \"token\": 0, \"layer\": 2, \"experts\": [1, 2]}",
    "{\"seq\": \"a\", \"token\": 1, \"layer\": 0, \"experts\": [2, 3]}",
    "{\"seq\": \"a\", \"token\": 3, \"layer\": 0, \"experts\": [3, 0]}",
    "{\"seq\": \"a\", \"token\": 3, \"layer\": 2, \"experts\": [0, 2]}",
    "{\"seq\": \"b\", \"token\": 1, \"layer\": 0, \"experts\": [1, 3]}",
    "{\"seq\": \"b\", \"token\": 1, \"layer\": 2, \"experts\": [2, 1]}",
};

START_TEST(test_missing_pairs_become_padding_rows)
{
    char *in = write_log("gappy.jsonl", gappy_lines, 7, NULL), *out = scratch("gappy.h5");
    rs_import_jsonl_report report;
    import_padded(in, out, 4, &report);
    /* By hand: a has 4 tokens, b 2, L = 2 (layers 0 and 2): 12 pairs, 7 logged;
     * tokens a:2 and b:0 have no row at all. */
    ck_assert_int_eq(report.tokens, 6);
    ck_assert_int_eq(report.gap_tokens, 2);
    ck_assert_int_eq(report.missing_pairs, 5);
    ck_assert_int_eq(report.num_missing_samples, 5);
    const struct { const char *seq; int token, layer; } want[] = {
        {"\"a\"", 1, 2}, {"\"a\"", 2, 0}, {"\"a\"", 2, 2}, {"\"b\"", 0, 0}, {"\"b\"", 0, 2}};
    for (int i = 0; i < 5; i++) {
        ck_assert_str_eq(report.missing_samples[i].seq, want[i].seq);
        ck_assert_int_eq(report.missing_samples[i].token, want[i].token);
        ck_assert_int_eq(report.missing_samples[i].layer, want[i].layer);
    }
    rs_import_jsonl_report_free(&report);
    loaded t = load(out);
    const int64_t offsets[] = {0, 4, 6};
    const int32_t ids[] = {0, 1, 1, 2,   2, 3, -1, -1, -1, -1, -1, -1, 3, 0, 0, 2,
                           -1, -1, -1, -1, 1, 3, 2, 1};
    assert_offsets(&t, offsets, 2);
    assert_ints(t.ids, ids, 24, "ids");
    unload(&t);
    free(in), free(out);
}
END_TEST

START_TEST(test_strict_refuses_missing_pairs)
{
    char *in = write_log("gappy-strict.jsonl", gappy_lines, 7, NULL), *out = scratch("gappy-strict.h5");
    rs_import_jsonl_report report;
    rs_error err = {{0}};
    ck_assert_int_eq(import(in, out, 4, NULL, STRICT | PAD_GAPS, &report, &err), -1);
    ck_assert_msg(strstr(err.msg, "5 (token, layer) pairs") && strstr(err.msg, "seq \"a\", token 1, layer 2") &&
                      strstr(err.msg, "--strict"),
                  "%s", err.msg);
    ck_assert(!rs_test_file_exists(out));

    char args[2048], *stdout_text = NULL, *stderr_text = NULL;
    snprintf(args, sizeof args, "import jsonl '%s' -o '%s' --experts 4 --strict --pad-gaps", in, out);
    ck_assert_int_eq(rs_test_run_cli(args, &stdout_text, &stderr_text), 1);
    ck_assert_msg(strstr(stderr_text, "--strict"), "%s", stderr_text);
    ck_assert(!rs_test_file_exists(out));
    free(stdout_text), free(stderr_text), free(in), free(out);
}
END_TEST

/* A token with no row at all is refused unless --pad-gaps: the message names
 * the line of the token after the gap and the tokens missing. */
START_TEST(test_gaps_are_refused_naming_the_line)
{
    cap_file_size();
    char *in = write_log("gappy-refused.jsonl", gappy_lines, 7, NULL), *out = scratch("gappy-refused.h5");
    rs_import_jsonl_report report;
    rs_error err = {{0}};
    ck_assert_int_eq(import(in, out, 4, NULL, 0, &report, &err), -1);
    /* "a" logs tokens 0, 1 and 3 (token 3 on line 4); "b" starts at token 1: two gaps of one token. */
    ck_assert_msg(strstr(err.msg, "gappy-refused.jsonl: line 4: token: seq \"a\" jumps from token 1 to token 3: "
                                  "token 2 has no row (2 gaps, 2 tokens in all; --pad-gaps"),
                  "%s", err.msg);
    ck_assert(!rs_test_file_exists(out));

    char *late = write_text("late.jsonl", "{\"seq\": 7, \"token\": 6, \"layer\": 0, \"experts\": [2]}\n"
                                          "{\"seq\": 7, \"token\": 5, \"layer\": 0, \"experts\": [1]}\n");
    ck_assert_int_eq(import(late, out, 4, NULL, 0, &report, &err), -1);
    ck_assert_msg(strstr(err.msg, "late.jsonl: line 2: token: seq 7 starts at token 5: tokens 0-4 have no row "
                                  "(--pad-gaps"),
                  "%s", err.msg);

    /* One stray position would pad 2e9 rows (16 GB): refused at once, nothing written. */
    char *stray = write_text("stray.jsonl", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1, 2]}\n"
                                            "{\"seq\": 0, \"token\": 2000000000, \"layer\": 0, \"experts\": [1]}\n");
    char *stray_out = scratch("stray.h5"), args[2048], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "import jsonl '%s' -o '%s' --experts 4", stray, stray_out);
    ck_assert_int_eq(rs_test_run_cli(args, &o, &e), 1);
    ck_assert_msg(strstr(e, "stray.jsonl: line 2: token: seq 0 jumps from token 0 to token 2000000000: tokens "
                            "1-1999999999 have no row"),
                  "%s", e);
    ck_assert_msg(strchr(e, '\n') == e + strlen(e) - 1, "more than one line: %s", e);
    assert_no_file_like("stray.h5");
    free(o), free(e), free(stray), free(stray_out), free(late), free(in), free(out);
    uncap_file_size();
}
END_TEST

/* With --pad-gaps the padded size is checked before anything is written. */
START_TEST(test_padded_gaps_are_size_checked)
{
    cap_file_size();
    /* 5 sequences of 2e9 + 1 tokens, K = 2, no weights: 1e10 tokens x 8 bytes = 74.5 GiB > 64 GiB. */
    char *in = scratch("sparse5.jsonl"), *out = scratch("sparse5.h5");
    FILE *f = fopen(in, "w");
    ck_assert_ptr_nonnull(f);
    for (int seq = 0; seq < 5; seq++)
        fprintf(f, "{\"seq\": %d, \"token\": 0, \"layer\": 0, \"experts\": [0, 1]}\n"
                   "{\"seq\": %d, \"token\": 2000000000, \"layer\": 0, \"experts\": [2, 3]}\n",
                seq, seq);
    fclose(f);
    char args[2048], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "import jsonl '%s' -o '%s' --experts 4 --pad-gaps", in, out);
    ck_assert_int_eq(rs_test_run_cli(args, &o, &e), 1);
    ck_assert_msg(strstr(e, "sparse5.h5: the output would take 74.5 GiB (10000000005 tokens x 8 bytes), more than "
                            "the limit of 64 GiB (--max-output-gb N raises it"),
                  "%s", e);
    ck_assert_msg(strchr(e, '\n') == e + strlen(e) - 1, "more than one line: %s", e);
    free(o), free(e);
    assert_no_file_like("sparse5.h5");

    /* A lower limit: one sequence of 2e8 + 1 tokens x 8 bytes = 1.5 GiB > 1 GiB. */
    char *one = write_text("sparse1.jsonl", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [0, 1]}\n"
                                            "{\"seq\": 0, \"token\": 200000000, \"layer\": 0, \"experts\": [2]}\n");
    snprintf(args, sizeof args, "import jsonl '%s' -o '%s' --experts 4 --pad-gaps --max-output-gb 1", one, out);
    ck_assert_int_eq(rs_test_run_cli(args, &o, &e), 1);
    ck_assert_msg(strstr(e, "the output would take 1.5 GiB (200000001 tokens x 8 bytes), more than the limit of 1 GiB"),
                  "%s", e);
    free(o), free(e);
    assert_no_file_like("sparse5.h5");
    free(one), free(in), free(out);
    uncap_file_size();
}
END_TEST

START_TEST(test_ragged_lists_pad_with_minus_one)
{
    const char *const lines[] = {
        "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [4], \"w\": [1.0]}",
        "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [0, 1, 2], \"w\": [0.5, 0.25, 0.25]}",
        "{\"seq\": 0, \"token\": 2, \"layer\": 0, \"experts\": [], \"w\": []}",
    };
    char *in = write_log("ragged.jsonl", lines, 3, NULL), *out = scratch("ragged.h5");
    rs_import_jsonl_report report;
    import_ok(in, out, 5, "weights=w", &report);
    ck_assert_int_eq(report.k, 3);
    rs_import_jsonl_report_free(&report);
    loaded t = load(out);
    ck_assert_int_eq(t.info.recorded_k, 3);
    const int32_t ids[] = {4, -1, -1, 0, 1, 2, -1, -1, -1};
    const float weights[] = {1, 0, 0, 0.5f, 0.25f, 0.25f, 0, 0, 0};
    assert_ints(t.ids, ids, 9, "ids");
    for (int i = 0; i < 9; i++)
        ck_assert_float_eq(t.weights[i], weights[i]);
    unload(&t);
    free(in), free(out);
}
END_TEST

START_TEST(test_dotted_map_paths)
{
    const char *const lines[] = {
        "{\"req\": {\"id\": \"r1\"}, \"pos\": 0, \"meta\": {\"moe\": {\"layer\": 4}}, \"routing\": {\"ids\": [1, 0]},"
        " \"routing_w\": [0.5, 0.5], \"tok\": {\"id\": 99}}",
        "{\"req\": {\"id\": \"r1\"}, \"pos\": 1, \"meta\": {\"moe\": {\"layer\": 4}}, \"routing\": {\"ids\": [0, 1]},"
        " \"routing_w\": [0.5, 0.5], \"tok\": {\"id\": 7}}",
    };
    char *in = write_log("dotted.jsonl", lines, 2, NULL), *out = scratch("dotted.h5");
    rs_import_jsonl_report report;
    import_ok(in, out, 2,
              "seq=req.id,token=pos,layer=meta.moe.layer,experts=routing.ids,weights=routing_w,token_id=tok.id",
              &report);
    ck_assert_int_eq(report.layer_index[0], 4);
    rs_import_jsonl_report_free(&report);
    loaded t = load(out);
    const int32_t ids[] = {1, 0, 0, 1}, token_ids[] = {99, 7};
    assert_ints(t.ids, ids, 4, "ids");
    assert_ints(t.token_ids, token_ids, 2, "token ids");
    unload(&t);
    free(in), free(out);
}
END_TEST

/* ---- errors ---------------------------------------------------------------- */

typedef struct bad_log {
    const char *name;
    const char *text; /* the whole log */
    const char *map;
    const char *needles[3]; /* each must appear in the message */
} bad_log;

#define ROW0 "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [0, 1], \"w\": [0.5, 0.5]}\n"
static const bad_log bad_logs[] = {
    {"duplicate", ROW0 "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [1]}\n" ROW0, NULL,
     {"line 3", "already given on line 1", "seq 0, token 0, layer 0"}},
    {"expert-range", ROW0 "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [1, 4]}\n", NULL,
     {"line 2", "experts[1]", "expert 4 is outside [0, 4)"}},
    {"expert-negative", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [-1]}\n", NULL,
     {"line 1", "experts[0]", "outside [0, 4)"}},
    {"expert-type", ROW0 "\n{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [\"1\"]}\n", NULL,
     {"line 3", "experts[0]", "expected an integer, got a string"}},
    {"malformed", ROW0 "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [1,}\n", NULL,
     {"line 2", "malformed JSON", NULL}},
    {"trailing-text", ROW0 "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [1]} x\n", NULL,
     {"line 2", "unexpected text", NULL}},
    {"not-object", ROW0 "[1, 2]\n", NULL, {"line 2", "expected a JSON object", NULL}},
    {"missing-key", ROW0 "{\"seq\": 0, \"token\": 1, \"experts\": [1]}\n", NULL,
     {"line 2", "layer: missing key", NULL}},
    {"missing-dotted-key", "{\"seq\": 0, \"token\": 0, \"meta\": {}, \"experts\": [1]}\n", "layer=meta.layer",
     {"line 1", "meta.layer: missing key", "--map layer=meta.layer"}},
    {"missing-weights", ROW0 "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [1]}\n", "weights=w",
     {"line 2", "w: missing key", NULL}},
    {"weights-length", ROW0 "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [1, 2], \"w\": [1.0]}\n",
     "weights=w", {"line 2", "w: 1 weights for 2 experts", NULL}},
    {"weights-type", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1], \"w\": [\"x\"]}\n", "weights=w",
     {"line 1", "w[0]", "expected a number"}},
    {"seq-type", ROW0 "{\"seq\": [0], \"token\": 1, \"layer\": 0, \"experts\": [1]}\n", NULL,
     {"line 2", "seq: expected an integer or a string, got an array", NULL}},
    {"token-fraction", "{\"seq\": 0, \"token\": 1.5, \"layer\": 0, \"experts\": [1]}\n", NULL,
     {"line 1", "token: expected an integer, got 1.5", NULL}},
    {"token-negative", "{\"seq\": 0, \"token\": -2, \"layer\": 0, \"experts\": [1]}\n", NULL,
     {"line 1", "token: -2 is outside", NULL}},
    {"experts-type", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": 3}\n", NULL,
     {"line 1", "experts: expected an array", NULL}},
    {"expert-twice", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [2, 2]}\n", NULL,
     {"line 1", "experts[1]: expert 2 is listed twice", NULL}},
    {"token-id-missing", ROW0, "token_id=tid", {"line 1", "tid: missing key", NULL}},
    {"token-id-disagrees",
     "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1], \"tid\": 5}\n"
     "{\"seq\": 0, \"token\": 0, \"layer\": 1, \"experts\": [1], \"tid\": 6}\n",
     "token_id=tid", {"line 2", "tid: 6 differs from 5", "line 1"}},
    {"weights-negative", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1, 2], \"w\": [1.5, -0.5]}\n",
     "weights=w", {"line 1", "w[1]: -0.5 is negative", NULL}},
    {"key-twice", ROW0 "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [1], \"experts\": [2]}\n", NULL,
     {"line 2", "experts: key given twice", NULL}},
    {"nested-key-twice", "{\"seq\": 0, \"token\": 0, \"meta\": {\"layer\": 1, \"layer\": 2}, \"experts\": [1]}\n",
     "layer=meta.layer", {"line 1", "meta.layer: key given twice", NULL}},
    {"unread-key-twice", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1], \"x\": 1, \"x\": 1}\n", NULL,
     {"line 1", "x: key given twice", NULL}},
    {"empty", "\n  \n", NULL, {"no rows", NULL, NULL}},
    {"all-lists-empty", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": []}\n", NULL,
     {"every experts list is empty", NULL, NULL}},
};

START_TEST(test_bad_logs_fail_naming_the_line)
{
    const bad_log *c = &bad_logs[_i];
    char name[128];
    snprintf(name, sizeof name, "bad-%s.jsonl", c->name);
    char *in = write_text(name, c->text);
    snprintf(name, sizeof name, "bad-%s.h5", c->name);
    char *out = scratch(name);
    rs_import_jsonl_report report;
    rs_error err = {{0}};
    ck_assert_msg(import(in, out, 4, c->map, 0, &report, &err) == -1, "%s: import succeeded", c->name);
    ck_assert_msg(strncmp(err.msg, in, strlen(in)) == 0, "%s: message does not start with the file: %s", c->name,
                  err.msg);
    for (int i = 0; i < 3 && c->needles[i]; i++)
        ck_assert_msg(strstr(err.msg, c->needles[i]), "%s: '%s' not in: %s", c->name, c->needles[i], err.msg);
    ck_assert_msg(!rs_test_file_exists(out), "%s: output exists after a failed import", c->name);
    free(in), free(out);
}
END_TEST

START_TEST(test_too_many_layers_is_a_mapping_error)
{
    char *in = scratch("layers-cap.jsonl"), *out = scratch("layers-cap.h5");
    FILE *f = fopen(in, "w");
    ck_assert_ptr_nonnull(f);
    for (int l = 0; l <= RS_IMPORT_MAX_LAYERS; l++)
        fprintf(f, "{\"seq\": 0, \"token\": 0, \"layer\": %d, \"experts\": [0]}\n", l);
    fclose(f);
    rs_import_jsonl_report report;
    rs_error err = {{0}};
    ck_assert_int_eq(import(in, out, 1, NULL, 0, &report, &err), -1);
    char want[64];
    snprintf(want, sizeof want, "line %d: layer: more than %d distinct layers", RS_IMPORT_MAX_LAYERS + 1,
             RS_IMPORT_MAX_LAYERS);
    ck_assert_msg(strstr(err.msg, want), "%s", err.msg);
    ck_assert(!rs_test_file_exists(out));
    free(in), free(out);
}
END_TEST

START_TEST(test_cli_error_line_and_exit_codes)
{
    char *in = write_text("cli-bad.jsonl", ROW0 "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [9]}\n");
    char *out = scratch("cli-bad.h5");
    char args[2048], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "import jsonl '%s' -o '%s' --experts 4", in, out);
    ck_assert_int_eq(rs_test_run_cli(args, &o, &e), 1);
    char want[1200];
    snprintf(want, sizeof want, "routesim: error: %s: line 2: experts[0]: expert 9 is outside [0, 4)", in);
    ck_assert_msg(strncmp(e, want, strlen(want)) == 0, "stderr: %s", e);
    ck_assert_msg(strchr(e, '\n') == e + strlen(e) - 1, "more than one line: %s", e);
    ck_assert(!rs_test_file_exists(out));
    free(o), free(e);

    const char *usage_errors[] = {
        "import",
        "import nosuchformat x",
        "import jsonl in.jsonl --experts 4",
        "import jsonl in.jsonl -o x.h5",
        "import jsonl -o x.h5 --experts 4",
        "import jsonl in.jsonl -o x.h5 --experts 0",
        "import jsonl in.jsonl -o x.h5 --experts 4 --map layer",
        "import jsonl in.jsonl -o x.h5 --experts 4 --map colour=c",
        "import jsonl in.jsonl -o x.h5 --experts 4 --map layer=a..b",
        "import jsonl in.jsonl -o x.h5 --experts 4 --gzip 10",
        "import jsonl in.jsonl -o x.h5 --experts 4 --bogus",
        "import jsonl in.jsonl -o x.h5 --experts 4 --top-k 9",
        "import jsonl in.jsonl -o x.h5 --experts 4 --map seq=a,seq=b",
        "import jsonl in.jsonl -o x.h5 --experts 4 --map seq=a --map seq=b",
        "import jsonl in.jsonl -o x.h5 --experts 4 --max-output-gb 0",
        "import jsonl in.jsonl -o x.h5 --experts 4 --max-output-gb lots",
    };
    for (size_t i = 0; i < sizeof usage_errors / sizeof usage_errors[0]; i++) {
        ck_assert_msg(rs_test_run_cli(usage_errors[i], &o, &e) == 2, "'%s' did not exit 2: %s", usage_errors[i], e);
        free(o), free(e);
    }
    free(in), free(out);
}
END_TEST

/* A model's k above its expert count made a trace that no reader accepts. */
START_TEST(test_top_k_above_experts_is_refused)
{
    char *in = write_log("topk9.jsonl", ordered_lines, 6, NULL), *out = scratch("topk9.h5");
    rs_import_jsonl_options opt;
    rs_import_jsonl_options_init(&opt);
    opt.input = in;
    opt.output = out;
    opt.num_experts = 4;
    opt.top_k = 9;
    rs_import_jsonl_report report;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_import_jsonl(&opt, &report, &err), -1);
    ck_assert_msg(strstr(err.msg, "--top-k 9 exceeds --experts 4"), "%s", err.msg);
    ck_assert(!rs_test_file_exists(out));

    char args[2048], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "import jsonl '%s' -o '%s' --experts 4 --top-k 9", in, out);
    ck_assert_int_eq(rs_test_run_cli(args, &o, &e), 2);
    ck_assert_msg(strstr(e, "--top-k 9 exceeds --experts 4"), "%s", e);
    ck_assert(!rs_test_file_exists(out));
    free(o), free(e);
    snprintf(args, sizeof args, "import jsonl '%s' -o '%s' --experts 4 --top-k 4", in, out);
    ck_assert_msg(rs_test_run_cli(args, &o, &e) == 0, "%s", e);
    free(o), free(e), free(in), free(out);
}
END_TEST

START_TEST(test_help_describes_the_options)
{
    char *o = NULL, *e = NULL;
    ck_assert_int_eq(rs_test_run_cli("import --help", &o, &e), 0);
    ck_assert_msg(strstr(o, "jsonl"), "%s", o);
    free(o), free(e);
    ck_assert_int_eq(rs_test_run_cli("import jsonl --help", &o, &e), 0);
    const char *words[] = {"--map", "--experts", "--strict", "--pad-gaps", "--max-output-gb", "--no-size-limit",
                           "--model", "--top-k", "--gzip", "token_id",
                           "weights", "layer_index", "-1"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        ck_assert_msg(strstr(o, words[i]), "'%s' not in help:\n%s", words[i], o);
    free(o), free(e);
}
END_TEST

/* ---- end to end -------------------------------------------------------------- */

/* The value of one metric row of a results CSV (run,trace,router,params,metric,key,layer,value). */
static double csv_value(const char *csv, const char *metric, const char *layer)
{
    char needle[128];
    snprintf(needle, sizeof needle, ",%s,,%s,", metric, layer);
    const char *at = strstr(csv, needle);
    ck_assert_msg(at, "no %s layer %s in:\n%s", metric, layer, csv);
    return strtod(at + strlen(needle), NULL);
}

START_TEST(test_imported_trace_replays)
{
    /* Layers logged as 2 and 6; token 0's layer-6 row is missing. E = 4. */
    const char *const lines[] = {
        "{\"s\": \"q\", \"t\": 0, \"l\": 2, \"e\": [0, 1]}", "{\"s\": \"q\", \"t\": 1, \"l\": 2, \"e\": [0, 2]}",
        "{\"s\": \"q\", \"t\": 2, \"l\": 2, \"e\": [1, 0]}", "{\"s\": \"q\", \"t\": 1, \"l\": 6, \"e\": [3, 1]}",
        "{\"s\": \"q\", \"t\": 2, \"l\": 6, \"e\": [2, 3]}",
    };
    char *in = write_log("replay.jsonl", lines, 5, NULL);
    char *out = scratch("replay.h5"), *csv = scratch("replay.csv");
    char args[3000], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "import jsonl '%s' -o '%s' --experts 4 --map seq=s,token=t,layer=l,experts=e "
                                "--model tiny-moe --top-k 2 --gzip 4",
             in, out);
    ck_assert_msg(rs_test_run_cli(args, &o, &e) == 0, "%s", e);
    const char *report_parts[] = {"5 rows",          "1 sequence,", "3 tokens",
                                  "logged as 2, 6",  "K = 2",       "missing (token, layer) pairs: 1,",
                                  "seq \"q\" token 0 layer 6"};
    for (size_t i = 0; i < sizeof report_parts / sizeof report_parts[0]; i++)
        ck_assert_msg(strstr(e, report_parts[i]), "'%s' not in the report: %s", report_parts[i], e);
    ck_assert_msg(strchr(e, '\n') == e + strlen(e) - 1, "report is not one line: %s", e);
    free(o), free(e);

    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, out, &err) == 0, "%s", err.msg);
    const rs_trace_info *info = rs_trace_get_info(tr);
    ck_assert_str_eq(info->model, "tiny-moe");
    ck_assert_str_eq(info->unit, "token");
    ck_assert_int_eq(info->top_k, 2);
    ck_assert_int_eq(info->has_logits, 0);
    ck_assert_str_eq(rs_trace_source(tr), "routesim import jsonl replay.jsonl");
    rs_trace_close(tr);

    snprintf(args, sizeof args, "route '%s' --router replay --metrics load --csv '%s'", out, csv);
    ck_assert_msg(rs_test_run_cli(args, &o, &e) == 0, "%s", e);
    free(o), free(e);
    char *rows = rs_test_read_file(csv);
    ck_assert_ptr_nonnull(rows);
    /* Counted by hand. Layer 0 (logged 2): loads 3, 2, 1, 0 -> maxvio 3/1.5 - 1 = 1,
     * one dead expert. Layer 1 (logged 6, token 0 missing): loads 0, 1, 1, 2 ->
     * maxvio 2/1 - 1 = 1, one dead expert. */
    ck_assert_double_eq_tol(csv_value(rows, "load.maxvio", "0"), 1.0, 1e-12);
    ck_assert_double_eq_tol(csv_value(rows, "load.maxvio", "1"), 1.0, 1e-12);
    ck_assert_double_eq_tol(csv_value(rows, "load.dead_experts", "0"), 1.0, 1e-12);
    ck_assert_double_eq_tol(csv_value(rows, "load.dead_experts", "1"), 1.0, 1e-12);
    ck_assert_double_eq_tol(csv_value(rows, "load.dead_experts", "all"), 2.0, 1e-12);
    /* cv of loads (3, 2, 1, 0): mean 1.5, population std sqrt(1.25). */
    ck_assert_double_eq_tol(csv_value(rows, "load.cv", "0"), 0.74535599249992990, 1e-12);
    free(rows), free(in), free(out), free(csv);
}
END_TEST

START_TEST(test_gzip_and_stdin_input)
{
    char *gz_path = scratch("ordered.jsonl.gz"), *plain = write_log("stdin.jsonl", ordered_lines, 6, NULL);
    gzFile gz = gzopen(gz_path, "wb");
    ck_assert_ptr_nonnull(gz);
    for (int i = 0; i < 6; i++)
        gzprintf(gz, "%s\n", ordered_lines[shuffled_order[i]]);
    gzclose(gz);
    char *a = scratch("from-gz.h5"), *b = scratch("from-stdin.h5");
    rs_import_jsonl_report report;
    import_ok(gz_path, a, 4, "weights=w,token_id=tid", &report);
    rs_import_jsonl_report_free(&report);

    char args[3000], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "import jsonl - -o '%s' --experts 4 --map weights=w,token_id=tid < '%s'", b, plain);
    ck_assert_msg(rs_test_run_cli(args, &o, &e) == 0, "%s", e);
    ck_assert_msg(strstr(e, "<stdin>"), "%s", e);
    free(o), free(e);

    const char *paths[] = {a, b};
    for (int i = 0; i < 2; i++) {
        loaded t = load(paths[i]);
        assert_offsets(&t, want_offsets, 2);
        assert_ints(t.ids, want_ids, 12, paths[i]);
        assert_ints(t.token_ids, want_token_ids, 3, "token ids");
        unload(&t);
    }

    /* A truncated gzip stream is a read error, not a short trace. */
    char *cut = scratch("cut.jsonl.gz"), *c = scratch("cut.h5");
    char *bytes = rs_test_read_file(gz_path);
    FILE *f = fopen(cut, "wb");
    fwrite(bytes, 1, 40, f);
    fclose(f);
    rs_error err = {{0}};
    ck_assert_int_eq(import(cut, c, 4, NULL, 0, &report, &err), -1);
    ck_assert_msg(strstr(err.msg, "cut.jsonl.gz"), "%s", err.msg);
    ck_assert(!rs_test_file_exists(c));
    free(bytes), free(cut), free(c), free(gz_path), free(plain), free(a), free(b);
}
END_TEST

Suite *import_suite(void)
{
    Suite *s = suite_create("import");
    TCase *tc = tcase_create("jsonl");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_shuffled_rows_give_the_ordered_trace);
    tcase_add_test(tc, test_integer_ids_sort_numerically);
    tcase_add_test(tc, test_string_ids_keep_first_appearance);
    tcase_add_test(tc, test_interleaved_layers_map_to_ranks);
    tcase_add_test(tc, test_missing_pairs_become_padding_rows);
    tcase_add_test(tc, test_strict_refuses_missing_pairs);
    tcase_add_test(tc, test_gaps_are_refused_naming_the_line);
    tcase_add_test(tc, test_top_k_above_experts_is_refused);
    tcase_add_test(tc, test_padded_gaps_are_size_checked);
    tcase_add_test(tc, test_ragged_lists_pad_with_minus_one);
    tcase_add_test(tc, test_dotted_map_paths);
    tcase_add_loop_test(tc, test_bad_logs_fail_naming_the_line, 0, (int)(sizeof bad_logs / sizeof bad_logs[0]));
    tcase_add_test(tc, test_too_many_layers_is_a_mapping_error);
    tcase_add_test(tc, test_cli_error_line_and_exit_codes);
    tcase_add_test(tc, test_help_describes_the_options);
    tcase_add_test(tc, test_imported_trace_replays);
    tcase_add_test(tc, test_gzip_and_stdin_input);
    suite_add_tcase(s, tc);
    return s;
}
