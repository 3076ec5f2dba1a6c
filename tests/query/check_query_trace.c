/* Outcome datasets (unit = query traces): the writer, the reader's
 * validation (shapes, dtypes, NaN quality, negative or NaN costs) with one
 * clear message each, and chunked reads that match the file. */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/query/check_query.h"
#include "workloads/trace/trace.h"

enum { T = 6, E = 3 };

static const float quality6[T * E] = {1, 0, 1, 0, 0, 1, 0.5f, 0.25f, 0, NAN, NAN, NAN, 1, NAN, 0, 0, 0, 0};
static const float cost6[T * E] = {1, 2, 3, 1, 2, 3, 0.5f, 2, 3, 1, 1, 1, 0, 2, 0.25f, 1, 2, 3};
static const char *const names3[E] = {"small", "medium", "large"};

static const char *good_trace(void)
{
    const char *path = rs_test_path("good.h5");
    query_trace q = {.T = T, .E = E, .quality = quality6, .cost = cost6, .names = names3};
    query_trace_write(path, &q);
    return path;
}

/* A trace written with raw HDF5 calls, so the tests can break the contract. */
static hid_t raw_trace(const char *path, const char *unit, int layers)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t str = H5Tcopy(H5T_C_S1);
    const char *format = "routesim-trace";
    H5Tset_size(str, strlen(format));
    hid_t a = H5Acreate2(f, "format", str, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, str, format);
    H5Aclose(a);
    H5Tset_size(str, strlen(unit));
    a = H5Acreate2(f, "unit", str, s, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, str, unit);
    H5Aclose(a);
    H5Tclose(str);
    const char *ints[] = {"format_version", "num_layers", "num_experts"};
    int values[] = {1, layers, E};
    for (int i = 0; i < 3; i++) {
        a = H5Acreate2(f, ints[i], H5T_STD_I32LE, s, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT, &values[i]);
        H5Aclose(a);
    }
    H5Sclose(s);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hsize_t dims[1] = {T + 1};
    int64_t offsets[T + 1];
    for (int t = 0; t <= T; t++)
        offsets[t] = t;
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, "/sequences/offsets", H5T_STD_I64LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, offsets);
    H5Dclose(d);
    H5Sclose(space);
    H5Pclose(lcpl);
    return f;
}

static void raw_dataset(hid_t f, const char *name, hid_t file_type, int rank, const hsize_t *dims, const float *data)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(space);
    H5Pclose(lcpl);
}

static void expect_open_error(const char *path, const char *needle)
{
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, path, &err) != 0, "%s opened", path);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message '%s' does not name the file", err.msg);
}

START_TEST(outcome_only_trace_round_trips)
{
    const char *path = good_trace();
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    const rs_trace_info *info = rs_trace_get_info(tr);
    ck_assert_int_eq(info->num_tokens, T);
    ck_assert_int_eq(info->num_sequences, T); /* every query its own sequence */
    ck_assert_int_eq(info->has_quality, 1);
    ck_assert_int_eq(info->has_cost, 1);
    ck_assert_int_eq(info->has_logits, 0);
    ck_assert_int_eq(info->num_unscored, 1); /* query 3: every model NaN */
    ck_assert_str_eq(info->unit, "query");
    ck_assert_str_eq(info->expert_names[2], "large");
    float q[2 * E], c[2 * E];
    ck_assert_int_eq(rs_trace_read_outcome(tr, 3, 2, q, c, &err), 0);
    ck_assert(isnan(q[0]) && isnan(q[1]) && isnan(q[2]));
    ck_assert(q[3] == 1 && isnan(q[4]) && q[5] == 0);
    ck_assert(c[3] == 0 && c[4] == 2 && c[5] == 0.25f);
    ck_assert_int_eq(rs_trace_cost_per_query(tr), 1);
    rs_trace_close(tr);
}
END_TEST

START_TEST(per_model_cost_is_repeated_per_query)
{
    const char *path = rs_test_path("model_cost.h5");
    const float model_cost[E] = {0.5f, 2, 30};
    query_trace qt = {.T = T, .E = E, .quality = quality6, .model_cost = model_cost};
    query_trace_write(path, &qt);
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rs_trace_cost_per_query(tr), 0);
    float c[T * E];
    ck_assert_int_eq(rs_trace_read_outcome(tr, 0, T, NULL, c, &err), 0);
    for (int t = 0; t < T; t++)
        for (int e = 0; e < E; e++)
            ck_assert(c[t * E + e] == model_cost[e]);
    rs_trace_close(tr);
}
END_TEST

START_TEST(infinite_quality_is_refused)
{
    const char *path = rs_test_path("inf_quality.h5");
    hid_t f = raw_trace(path, "query", 1);
    float q[T * E];
    memcpy(q, quality6, sizeof q);
    q[4 * E + 1] = INFINITY;
    hsize_t dims[2] = {T, E};
    raw_dataset(f, "/outcome/quality", H5T_IEEE_F32LE, 2, dims, q);
    H5Fclose(f);
    expect_open_error(path, "/outcome/quality: infinite value at query 4, model 1");
}
END_TEST

START_TEST(negative_and_nan_costs_are_refused)
{
    const float bad[] = {-1.0f, NAN};
    const char *what[] = {"negative value -1 at query 2, model 0", "NaN at query 2, model 0"};
    for (int i = 0; i < 2; i++) {
        const char *path = rs_test_path(i ? "nan_cost.h5" : "negative_cost.h5");
        hid_t f = raw_trace(path, "query", 1);
        hsize_t dims[2] = {T, E};
        raw_dataset(f, "/outcome/quality", H5T_IEEE_F32LE, 2, dims, quality6);
        float c[T * E];
        memcpy(c, cost6, sizeof c);
        c[2 * E] = bad[i];
        raw_dataset(f, "/outcome/cost", H5T_IEEE_F32LE, 2, dims, c);
        H5Fclose(f);
        expect_open_error(path, what[i]);
    }
    /* a per-model cost too */
    const char *path = rs_test_path("negative_model_cost.h5");
    hid_t f = raw_trace(path, "query", 1);
    hsize_t dims[2] = {T, E}, edims[1] = {E};
    raw_dataset(f, "/outcome/quality", H5T_IEEE_F32LE, 2, dims, quality6);
    const float c[E] = {1, -0.5f, 2};
    raw_dataset(f, "/outcome/cost", H5T_IEEE_F32LE, 1, edims, c);
    H5Fclose(f);
    expect_open_error(path, "/outcome/cost: negative value -0.5 at model 1");
}
END_TEST

START_TEST(wrong_shapes_and_dtypes_are_refused)
{
    hsize_t dims[2] = {T, E}, short_dims[2] = {T - 1, E}, wide[2] = {T, E + 1}, edims[1] = {E + 1};
    const char *path = rs_test_path("short.h5");
    hid_t f = raw_trace(path, "query", 1);
    hsize_t logit_dims[3] = {T, 1, E}; /* T comes from the logits */
    raw_dataset(f, "/router/logits", H5T_IEEE_F32LE, 3, logit_dims, cost6);
    raw_dataset(f, "/outcome/quality", H5T_IEEE_F32LE, 2, short_dims, quality6);
    H5Fclose(f);
    expect_open_error(path, "/outcome/quality: shape [5, 3], expected [6, 3] (T, num_experts)");

    path = rs_test_path("f64.h5");
    f = raw_trace(path, "query", 1);
    raw_dataset(f, "/outcome/quality", H5T_IEEE_F64LE, 2, dims, quality6);
    H5Fclose(f);
    expect_open_error(path, "/outcome/quality: dtype is float64; quality must be float32");

    path = rs_test_path("cost_shape.h5");
    f = raw_trace(path, "query", 1);
    raw_dataset(f, "/outcome/quality", H5T_IEEE_F32LE, 2, dims, quality6);
    float c[T * (E + 1)];
    memset(c, 0, sizeof c);
    raw_dataset(f, "/outcome/cost", H5T_IEEE_F32LE, 2, wide, c);
    H5Fclose(f);
    expect_open_error(path, "/outcome/cost: shape [6, 4], expected [6, 3] (T, num_experts) or [3] (num_experts)");

    path = rs_test_path("cost_len.h5");
    f = raw_trace(path, "query", 1);
    raw_dataset(f, "/outcome/quality", H5T_IEEE_F32LE, 2, dims, quality6);
    raw_dataset(f, "/outcome/cost", H5T_IEEE_F32LE, 1, edims, c);
    H5Fclose(f);
    expect_open_error(path, "/outcome/cost: shape [4]");

    path = rs_test_path("token_unit.h5");
    f = raw_trace(path, "token", 1);
    raw_dataset(f, "/router/logits", H5T_IEEE_F32LE, 3, logit_dims, cost6);
    raw_dataset(f, "/outcome/quality", H5T_IEEE_F32LE, 2, dims, quality6);
    H5Fclose(f);
    expect_open_error(path, "/outcome/quality: outcome datasets need root attribute unit = \"query\"");

    path = rs_test_path("no_data.h5");
    f = raw_trace(path, "query", 1);
    H5Fclose(f);
    expect_open_error(path, "a unit = \"query\" trace may instead hold /outcome/quality alone");
}
END_TEST

START_TEST(writer_refuses_bad_outcomes)
{
    rs_trace_layout layout = {.num_layers = 1, .num_experts = E, .unit = "query", .norm_topk = -1,
                              .outcome_quality = 1, .outcome_cost = RS_COST_PER_QUERY};
    rs_trace_writer *w = NULL;
    rs_error err = {{0}};
    const char *path = rs_test_path("writer.h5");
    ck_assert_int_eq(rs_trace_writer_create(&w, path, &layout, &err), 0);
    float q[E] = {1, 0, 1}, c[E] = {1, -2, 3};
    ck_assert_int_ne(rs_trace_writer_append_outcome(w, 1, q, c, &err), 0);
    ck_assert_msg(strstr(err.msg, "/outcome/cost: -2 at query 0, model 1") != NULL, "%s", err.msg);
    rs_trace_writer_abort(w);
    ck_assert(!rs_test_file_exists(path));
    layout.unit = "token";
    ck_assert_int_ne(rs_trace_writer_create(&w, path, &layout, &err), 0);
}
END_TEST

/* The engine reads outcomes chunk by chunk: a metric sees the same rows
 * whatever the chunk size (checked through the oracle's quality). */
START_TEST(chunked_reads_match)
{
    const char *path = good_trace();
    const char *routers[] = {"oracle", "fixed:model=large"};
    rs_results a, b;
    query_measure(path, routers, 2, NULL, 1, 1, &a);
    query_measure(path, routers, 2, NULL, 2, 4, &b);
    ck_assert_uint_eq(a.num_rows, b.num_rows);
    for (size_t i = 0; i < a.num_rows; i++)
        ck_assert(memcmp(&a.rows[i].value, &b.rows[i].value, sizeof(double)) == 0 ||
                  (isnan(a.rows[i].value) && isnan(b.rows[i].value)));
    /* by hand: oracle over queries 0,1,2,4,5 (3 is unscored): qualities 1, 1, 0.5, 1, 0 */
    ck_assert_double_eq_tol(query_value(&a, 0, "outcome.quality", ""), 3.5 / 5, 1e-15);
    ck_assert_double_eq(query_value(&a, 0, "outcome.skipped", ""), 1);
    rs_results_free(&a);
    rs_results_free(&b);
}
END_TEST

Suite *query_trace_suite(void)
{
    Suite *s = suite_create("query_trace");
    TCase *tc = tcase_create("query_trace");
    tcase_add_test(tc, outcome_only_trace_round_trips);
    tcase_add_test(tc, per_model_cost_is_repeated_per_query);
    tcase_add_test(tc, infinite_quality_is_refused);
    tcase_add_test(tc, negative_and_nan_costs_are_refused);
    tcase_add_test(tc, wrong_shapes_and_dtypes_are_refused);
    tcase_add_test(tc, writer_refuses_bad_outcomes);
    tcase_add_test(tc, chunked_reads_match);
    suite_add_tcase(s, tc);
    return s;
}
