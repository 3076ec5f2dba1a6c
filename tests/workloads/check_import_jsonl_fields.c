/* routesim import jsonl: the logits and domain fields, composite sequence
 * keys, and the --scoring / --norm-topk options that let `native` route an
 * imported trace. Small logs written here, imported, read back and compared
 * with arrays worked out by hand from their lines; bad logs fail with one
 * line naming the file, the line and the key. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "tests/test_util.h"
#include "workloads/import/import_jsonl.h"
#include "workloads/trace/trace.h"

static char *write_text(const char *name, const char *text)
{
    char *path = strdup(rs_test_path(name));
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Imports in -> out with the library and map; returns its status. */
static int import_map(const char *in, const char *out, int experts, const char *map, rs_import_jsonl_report *report,
                      rs_error *err)
{
    rs_import_jsonl_options opt;
    rs_import_jsonl_options_init(&opt);
    opt.input = in;
    opt.output = out;
    opt.num_experts = experts;
    if (map && rs_jsonl_key_map_parse(&opt.map, map, err) != 0)
        return -1;
    return rs_import_jsonl(&opt, report, err);
}

static rs_trace *open_trace(const char *path)
{
    rs_error err = {{0}};
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    return tr;
}

static void assert_offsets(rs_trace *tr, const int64_t *want, int num_seq)
{
    rs_error err = {{0}};
    ck_assert_int_eq(rs_trace_get_info(tr)->num_sequences, num_seq);
    int64_t got[16];
    ck_assert_msg(rs_trace_read_offsets(tr, 0, num_seq + 1, got, &err) == 0, "%s", err.msg);
    for (int s = 0; s <= num_seq; s++)
        ck_assert_msg(got[s] == want[s], "offsets[%d] = %lld, expected %lld", s, (long long)got[s],
                      (long long)want[s]);
}

/* ---- logits ------------------------------------------------------------- */

/* Two sequences, MoE layers logged as 1 and 3, E = 3, in shuffled order. */
static const char logits_log[] =
    "{\"seq\": 9, \"token\": 0, \"layer\": 3, \"experts\": [0], \"z\": [0.5, -1, 2]}\n"
    "{\"seq\": 2, \"token\": 1, \"layer\": 1, \"experts\": [2], \"z\": [1e-3, 0, 4]}\n"
    "{\"seq\": 2, \"token\": 0, \"layer\": 3, \"experts\": [1, 0], \"z\": [7, 8, 9]}\n"
    "{\"seq\": 9, \"token\": 0, \"layer\": 1, \"experts\": [2, 1], \"z\": [-3, 2.25, 1]}\n"
    "{\"seq\": 2, \"token\": 0, \"layer\": 1, \"experts\": [0, 2], \"z\": [1, 2, 3]}\n"
    "{\"seq\": 2, \"token\": 1, \"layer\": 3, \"experts\": [1], \"z\": [-0.5, 6, 0.25]}\n";

START_TEST(test_logits_are_stored_per_token_and_layer)
{
    char *in = write_text("logits.jsonl", logits_log);
    char *out = strdup(rs_test_path("logits.h5"));
    rs_import_jsonl_report report;
    rs_error err = {{0}};
    ck_assert_msg(import_map(in, out, 3, "logits=z", &report, &err) == 0, "%s", err.msg);
    ck_assert(report.has_logits);
    ck_assert_int_eq(report.k, 2);
    rs_import_jsonl_report_free(&report);
    rs_trace *tr = open_trace(out);
    const rs_trace_info *info = rs_trace_get_info(tr);
    ck_assert(info->has_logits);
    ck_assert_int_eq(info->recorded_k, 2);
    /* By hand: seq 2 (tokens 0, 1) before seq 9 (token 0); layer 1 then 3. */
    const int64_t offsets[] = {0, 2, 3};
    assert_offsets(tr, offsets, 2);
    const float want[] = {1, 2, 3, 7, 8, 9, /* seq 2 token 0 */ 1e-3f, 0, 4, -0.5f, 6, 0.25f, /* token 1 */
                          -3, 2.25f, 1, 0.5f, -1, 2 /* seq 9 token 0 */};
    float got[18];
    ck_assert_msg(rs_trace_read_logits(tr, 0, 3, got, NULL, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 18; i++)
        ck_assert_msg(got[i] == want[i], "logits[%d] = %g, expected %g", i, got[i], want[i]);
    int32_t ids[12];
    const int32_t want_ids[] = {0, 2, 1, 0, 2, -1, 1, -1, 2, 1, 0, -1};
    ck_assert_msg(rs_trace_read_topk(tr, 0, 3, ids, NULL, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 12; i++)
        ck_assert_msg(ids[i] == want_ids[i], "ids[%d] = %d, expected %d", i, ids[i], want_ids[i]);
    rs_trace_close(tr);
    free(in), free(out);
}
END_TEST

/* A logits-only log (experts=) with the model's rule given on the command
 * line: `native` routes it. By hand, softmax top-2 of each row, renormalised:
 * [0.5, 2, -1, 1] -> experts 1, 3; [3, 0, 0, 0] -> 0 then 1 (the tie to the
 * lower index); [0, 0, 1, 2] -> 3, 2. Without --scoring, native names the
 * missing attribute. */
START_TEST(test_logits_only_log_routes_native)
{
    char *in = write_text("native.jsonl", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"z\": [0.5, 2, -1, 1]}\n"
                                          "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"z\": [3, 0, 0, 0]}\n"
                                          "{\"seq\": 1, \"token\": 0, \"layer\": 0, \"z\": [0, 0, 1, 2]}\n");
    char *out = strdup(rs_test_path("native.h5")), *dec = strdup(rs_test_path("native-decisions.h5"));
    char *o = NULL, *e = NULL;
    ck_assert_msg(rs_test_run_cli(rs_test_cmd("import jsonl '%s' -o '%s' --experts 4 --map experts=,logits=z "
                                              "--top-k 2 --scoring softmax --norm-topk 1",
                                              in, out),
                                  NULL, &e) == 0,
                  "%s", e);
    ck_assert_msg(strstr(e, "3 tokens, 1 layer (logged as 0), with logits;"), "report: %s", e);
    free(e);
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("info '%s'", out), &o, NULL), 0);
    ck_assert_msg(strstr(o, "routing    top_k = 2, scoring = softmax, norm_topk = 1\n"), "info: %s", o);
    ck_assert_msg(!strstr(o, "recorded"), "a logits-only import records no experts: %s", o);
    free(o);
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("route '%s' --router native --out '%s' --metrics none", out, dec),
                                     NULL, NULL),
                     0);
    hid_t f = H5Fopen(dec, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    int32_t ids[6];
    hid_t d = H5Dopen2(f, "/decisions/ids", H5P_DEFAULT);
    ck_assert(d >= 0 && H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) >= 0);
    H5Dclose(d);
    H5Fclose(f);
    const int32_t want[] = {1, 3, 0, 1, 3, 2};
    for (int i = 0; i < 6; i++)
        ck_assert_msg(ids[i] == want[i], "native ids[%d] = %d, expected %d", i, ids[i], want[i]);

    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("import jsonl '%s' -o '%s' --experts 4 --map experts=,logits=z "
                                                 "--top-k 2 --force",
                                                 in, out),
                                     NULL, NULL),
                     0);
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("route '%s' --router native --metrics none", out), NULL, &e), 1);
    ck_assert_msg(strstr(e, "root attributes 'scoring', 'norm_topk' missing"), "%s", e);
    free(e);
    free(in), free(out), free(dec);
}
END_TEST

/* ---- domains -------------------------------------------------------------- */

/* Labels in order of first appearance: "math" 0, "law" 1, 7 (an integer,
 * named "7") 2. Sequences sort numerically: 1 (law), 4 (math), 5 (7), 8
 * (math). */
START_TEST(test_domains_label_sequences)
{
    char *in = write_text("domain.jsonl", "{\"seq\": 4, \"token\": 0, \"layer\": 0, \"experts\": [0], \"d\": \"math\"}\n"
                                          "{\"seq\": 1, \"token\": 0, \"layer\": 0, \"experts\": [1], \"d\": \"law\"}\n"
                                          "{\"seq\": 4, \"token\": 1, \"layer\": 0, \"experts\": [1], \"d\": \"math\"}\n"
                                          "{\"seq\": 5, \"token\": 0, \"layer\": 0, \"experts\": [0], \"d\": 7}\n"
                                          "{\"seq\": 8, \"token\": 0, \"layer\": 0, \"experts\": [0], \"d\": \"math\"}\n");
    char *out = strdup(rs_test_path("domain.h5"));
    rs_import_jsonl_report report;
    rs_error err = {{0}};
    ck_assert_msg(import_map(in, out, 2, "domain=d", &report, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(report.num_domains, 3);
    rs_import_jsonl_report_free(&report);
    rs_trace *tr = open_trace(out);
    ck_assert(rs_trace_get_info(tr)->has_domain);
    ck_assert_int_eq(rs_trace_domain_name_count(tr), 3);
    ck_assert_str_eq(rs_trace_domain_name(tr, 0), "math");
    ck_assert_str_eq(rs_trace_domain_name(tr, 1), "law");
    ck_assert_str_eq(rs_trace_domain_name(tr, 2), "7");
    const int64_t offsets[] = {0, 1, 3, 4, 5};
    assert_offsets(tr, offsets, 4);
    int32_t domain[4];
    const int32_t want[] = {1, 0, 2, 0};
    ck_assert_msg(rs_trace_read_domain(tr, 0, 4, domain, &err) == 0, "%s", err.msg);
    for (int s = 0; s < 4; s++)
        ck_assert_msg(domain[s] == want[s], "domain[%d] = %d, expected %d", s, domain[s], want[s]);
    rs_trace_close(tr);
    free(in), free(out);
}
END_TEST

/* ---- composite sequence keys ------------------------------------------- */

/* Two logs that both number their problems 0 and 1, concatenated. With
 * seq=dataset+problem_id they are four sequences, in order of first
 * appearance: ("gsm8k", 0) 2 tokens, ("gsm8k", 1) 1, ("mmlu", 0) 1,
 * ("mmlu", 1) 2; with seq=problem_id alone their rows collide. The string
 * "1" and the integer 1 stay different parts. */
START_TEST(test_composite_seq_key_keeps_logs_apart)
{
    char *in = write_text("composite.jsonl",
                          "{\"dataset\": \"gsm8k\", \"problem_id\": 0, \"token\": 0, \"layer\": 0, \"experts\": [0]}\n"
                          "{\"dataset\": \"gsm8k\", \"problem_id\": 0, \"token\": 1, \"layer\": 0, \"experts\": [1]}\n"
                          "{\"dataset\": \"gsm8k\", \"problem_id\": 1, \"token\": 0, \"layer\": 0, \"experts\": [2]}\n"
                          "{\"dataset\": \"mmlu\", \"problem_id\": 0, \"token\": 0, \"layer\": 0, \"experts\": [3]}\n"
                          "{\"dataset\": \"mmlu\", \"problem_id\": 1, \"token\": 1, \"layer\": 0, \"experts\": [0]}\n"
                          "{\"dataset\": \"mmlu\", \"problem_id\": 1, \"token\": 0, \"layer\": 0, \"experts\": [1]}\n");
    char *out = strdup(rs_test_path("composite.h5"));
    rs_import_jsonl_report report;
    rs_error err = {{0}};
    ck_assert_msg(import_map(in, out, 4, "seq=dataset+problem_id", &report, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(report.sequences, 4);
    rs_import_jsonl_report_free(&report);
    rs_trace *tr = open_trace(out);
    const int64_t offsets[] = {0, 2, 3, 4, 6};
    assert_offsets(tr, offsets, 4);
    int32_t ids[6];
    const int32_t want[] = {0, 1, 2, 3, 1, 0};
    ck_assert_msg(rs_trace_read_topk(tr, 0, 6, ids, NULL, &err) == 0, "%s", err.msg);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(ids[i] == want[i], "ids[%d] = %d, expected %d", i, ids[i], want[i]);
    rs_trace_close(tr);

    char *dup = strdup(rs_test_path("composite-one-key.h5"));
    ck_assert_int_eq(import_map(in, dup, 4, "seq=problem_id", &report, &err), -1);
    ck_assert_msg(strstr(err.msg, "line 4: seq/token/layer: seq 0, token 0, layer 0 already given on line 1"), "%s",
                  err.msg);
    ck_assert(!rs_test_file_exists(dup));

    char *typed = write_text("composite-typed.jsonl",
                             "{\"a\": \"1\", \"b\": 1, \"token\": 0, \"layer\": 0, \"experts\": [0]}\n"
                             "{\"a\": 1, \"b\": 1, \"token\": 0, \"layer\": 0, \"experts\": [1]}\n"
                             "{\"a\": \"x\\\"+1\", \"b\": 1, \"token\": 0, \"layer\": 0, \"experts\": [2]}\n");
    ck_assert_msg(import_map(typed, out, 4, "seq=a+b", &report, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(report.sequences, 3);
    rs_import_jsonl_report_free(&report);
    free(in), free(out), free(dup), free(typed);
}
END_TEST

/* ---- errors ---------------------------------------------------------------- */

#define ROW "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1], \"z\": [0, 1, 2, 3], \"d\": \"a\"}\n"

static const struct bad_log {
    const char *name, *text, *map;
    const char *want; /* after "FILE: " */
} bad_logs[] = {
    {"logits-short", ROW "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [1], \"z\": [0, 1, 2]}\n", "logits=z",
     "line 2: z: 3 logits, expected one per expert: 4 (--experts 4)"},
    {"logits-long", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1], \"z\": [0, 1, 2, 3, 4]}\n", "logits=z",
     "line 1: z: 5 logits, expected one per expert: 4 (--experts 4)"},
    {"logits-type", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1], \"z\": [0, 1, \"2\", 3]}\n",
     "logits=z", "line 1: z[2]: expected a number, got a string"},
    {"logits-not-array", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1], \"z\": 3}\n", "logits=z",
     "line 1: z: expected an array of 4 numbers (one per expert), got a number"},
    {"logits-float32", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1], \"z\": [0, 1e39, 2, 3]}\n",
     "logits=z", "line 1: z[1]: 1e+39 does not fit in float32"},
    {"logits-missing-key", ROW "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [1]}\n", "logits=z",
     "line 2: z: missing key (--map logits=z)"},
    {"logits-missing-pair", ROW "{\"seq\": 0, \"token\": 1, \"layer\": 1, \"experts\": [1], \"z\": [0, 1, 2, 3]}\n",
     "logits=z", "seq 0, token 0, layer 1 has no row, and its logits cannot be padded"},
    {"domain-differs", ROW "{\"seq\": 0, \"token\": 1, \"layer\": 0, \"experts\": [1], \"d\": \"b\"}\n", "domain=d",
     "line 2: d: \"b\" differs from \"a\" given for seq 0 on line 1 (a sequence has one domain)"},
    {"domain-type", "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1], \"d\": [\"a\"]}\n", "domain=d",
     "line 1: d: expected a string or an integer, got an array"},
    {"domain-missing", ROW "{\"seq\": 1, \"token\": 0, \"layer\": 0, \"experts\": [1]}\n", "domain=d",
     "line 2: d: missing key (--map domain=d)"},
    {"composite-missing", "{\"ds\": \"a\", \"token\": 0, \"layer\": 0, \"experts\": [1]}\n", "seq=ds+id",
     "line 1: id: missing key (--map seq=ds+id)"},
    {"composite-type", "{\"ds\": \"a\", \"id\": {}, \"token\": 0, \"layer\": 0, \"experts\": [1]}\n", "seq=ds+id",
     "line 1: id: expected an integer or a string (part of --map seq=ds+id), got an object"},
    {"composite-fraction", "{\"ds\": \"a\", \"id\": 0.5, \"token\": 0, \"layer\": 0, \"experts\": [1]}\n",
     "seq=ds+id", "line 1: id: expected an integer, got 0.5"},
};

START_TEST(test_bad_logs_fail_naming_line_and_key)
{
    const struct bad_log *c = &bad_logs[_i];
    char name[128];
    snprintf(name, sizeof name, "fields-%s.jsonl", c->name);
    char *in = write_text(name, c->text);
    snprintf(name, sizeof name, "fields-%s.h5", c->name);
    char *out = strdup(rs_test_path(name));
    char *o = NULL, *e = NULL;
    ck_assert_int_eq(
        rs_test_run_cli(rs_test_cmd("import jsonl '%s' -o '%s' --experts 4 --map '%s'", in, out, c->map), &o, &e), 1);
    char want[1024];
    snprintf(want, sizeof want, "routesim: error: %s: %s", in, c->want);
    ck_assert_msg(strncmp(e, want, strlen(want)) == 0, "%s: stderr '%s', want '%s'", c->name, e, want);
    ck_assert_msg(strchr(e, '\n') == e + strlen(e) - 1, "more than one line: %s", e);
    ck_assert(!rs_test_file_exists(out));
    free(o), free(e), free(in), free(out);
}
END_TEST

/* Option mistakes are usage errors (exit status 2) naming the option. */
START_TEST(test_option_mistakes_are_usage_errors)
{
    static const struct {
        const char *args, *want;
    } cases[] = {
        {"--map experts=", "--map: experts needs a key (or map logits)"},
        {"--map experts=,weights=w,logits=z", "--map: weights=w needs experts"},
        {"--map logits=z --pad-gaps", "--pad-gaps with --map logits=z: logits cannot be padded"},
        {"--map seq=a++b", "--map: seq: 'a++b' is not keys or dotted paths joined by '+'"},
        {"--map seq=a+b+c+d+e+f+g+h+i", "is not keys or dotted paths joined by '+' (at most 8)"},
        {"--map domain=d,domain=e", "--map: field domain is mapped twice"},
        {"--scoring softplus", "--scoring: 'softplus' is not one of softmax|sigmoid|sqrt_softplus"},
        {"--norm-topk 2", "--norm-topk"},
    };
    char *in = write_text("usage.jsonl", ROW);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *o = NULL, *e = NULL;
        int rc = rs_test_run_cli(
            rs_test_cmd("import jsonl '%s' -o '%s' --experts 4 %s", in, rs_test_path("usage.h5"), cases[i].args), &o,
            &e);
        ck_assert_msg(rc == 2 && strstr(e, cases[i].want), "%s: exit %d, stderr '%s'", cases[i].args, rc, e);
        ck_assert(!rs_test_file_exists(rs_test_path("usage.h5")));
        free(o), free(e);
    }
    free(in);
}
END_TEST

Suite *import_jsonl_fields_suite(void)
{
    Suite *s = suite_create("import_jsonl_fields");
    TCase *tc = tcase_create("fields");
    tcase_add_test(tc, test_logits_are_stored_per_token_and_layer);
    tcase_add_test(tc, test_logits_only_log_routes_native);
    tcase_add_test(tc, test_domains_label_sequences);
    tcase_add_test(tc, test_composite_seq_key_keeps_logs_apart);
    tcase_add_loop_test(tc, test_bad_logs_fail_naming_line_and_key, 0, (int)(sizeof bad_logs / sizeof bad_logs[0]));
    tcase_add_test(tc, test_option_mistakes_are_usage_errors);
    suite_add_tcase(s, tc);
    return s;
}
