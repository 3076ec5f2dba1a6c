/* Trace reading and writing: round trips, dtype conversions, and one test
 * per broken-contract case, each checking the message names file and field. */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"
#include "workloads/trace/half.h"
#include "workloads/trace/trace.h"

enum { T = 20, L = 2, E = 4 };
static const int64_t offsets[] = {0, 5, 12, 20};

static const char *good_trace(const char *name, rs_logits_dtype dtype, float **logits_out)
{
    const char *path = rs_test_path(name);
    float *z = rs_test_random_logits(T, L, E, 3);
    int32_t ids[T];
    for (int t = 0; t < T; t++)
        ids[t] = t % 7;
    rs_test_trace t = {.T = T, .L = L, .E = E, .num_seq = 3, .offsets = offsets, .logits = z, .token_ids = ids,
                       .dtype = dtype, .model = "test/model", .scoring = "softmax", .top_k = 2, .norm_topk = 1};
    rs_test_write_trace(path, &t);
    if (logits_out)
        *logits_out = z;
    else
        free(z);
    return path;
}

static void expect_open_error(const char *path, const char *needle)
{
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_trace_open(&tr, path, &err), -1);
    ck_assert_ptr_null(tr);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message '%s' does not name the file", err.msg);
}

START_TEST(round_trip_float32)
{
    float *z = NULL;
    const char *path = good_trace("f32.h5", RS_LOGITS_F32, &z);
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    const rs_trace_info *i = rs_trace_get_info(tr);
    ck_assert_int_eq(i->num_tokens, T);
    ck_assert_int_eq(i->num_layers, L);
    ck_assert_int_eq(i->num_experts, E);
    ck_assert_int_eq(i->num_sequences, 3);
    ck_assert_str_eq(i->model, "test/model");
    ck_assert_str_eq(i->scoring, "softmax");
    ck_assert_int_eq(i->top_k, 2);
    ck_assert_int_eq(i->norm_topk, 1);
    ck_assert(i->has_logits && i->has_token_ids && !i->has_bias);
    float out[7 * L * E];
    ck_assert_int_eq(rs_trace_read_logits(tr, 6, 7, out, NULL, &err), 0);
    ck_assert_mem_eq(out, z + 6 * L * E, sizeof out);
    int64_t off[2];
    ck_assert_int_eq(rs_trace_read_offsets(tr, 1, 2, off, &err), 0);
    ck_assert_int_eq(off[0], 5);
    ck_assert_int_eq(off[1], 12);
    int32_t ids[3];
    ck_assert_int_eq(rs_trace_read_token_ids(tr, 7, 3, ids, &err), 0);
    ck_assert_int_eq(ids[0], 0);
    ck_assert_int_eq(ids[2], 2);
    rs_trace_close(tr);
    free(z);
}
END_TEST

START_TEST(round_trip_16_bit)
{
    for (int v = 0; v < 2; v++) {
        rs_logits_dtype dt = v ? RS_LOGITS_BF16 : RS_LOGITS_F16;
        float *z = NULL;
        const char *path = good_trace(v ? "bf16.h5" : "f16.h5", dt, &z);
        rs_trace *tr = NULL;
        rs_error err = {{0}};
        ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(rs_trace_logits_dtype(tr), dt);
        float out[T * L * E];
        uint16_t scratch[T * L * E];
        ck_assert_int_eq(rs_trace_read_logits(tr, 0, T, out, scratch, &err), 0);
        for (int i = 0; i < T * L * E; i++) {
            float want = v ? rs_bf16_to_float(rs_float_to_bf16(z[i])) : rs_half_to_float(rs_float_to_half(z[i]));
            ck_assert_float_eq(out[i], want);
            ck_assert_float_eq_tol(out[i], z[i], fabsf(z[i]) * (v ? 0.0079f : 0.001f) + 1e-7f);
        }
        rs_trace_close(tr);
        free(z);
    }
}
END_TEST

START_TEST(half_conversions_exact_cases)
{
    /* binary16 corner values: 1, -2, 65504 (max), 2^-24 (smallest subnormal), inf */
    ck_assert_uint_eq(rs_float_to_half(1.0f), 0x3c00);
    ck_assert_uint_eq(rs_float_to_half(-2.0f), 0xc000);
    ck_assert_uint_eq(rs_float_to_half(65504.0f), 0x7bff);
    ck_assert_uint_eq(rs_float_to_half(65520.0f), 0x7c00); /* ties to even rounds up to inf */
    ck_assert_uint_eq(rs_float_to_half(0x1p-24f), 0x0001);
    ck_assert_uint_eq(rs_float_to_half(0x1p-25f), 0x0000); /* tie to even: 0 */
    ck_assert_uint_eq(rs_float_to_half(1.0f + 0x1p-11f), 0x3c00); /* halfway, even stays */
    ck_assert_uint_eq(rs_float_to_half(1.0f + 0x1.8p-11f), 0x3c01);
    ck_assert_float_eq(rs_half_to_float(0x0001), 0x1p-24f);
    ck_assert_float_eq(rs_half_to_float(0x7bff), 65504.0f);
    ck_assert(isinf(rs_half_to_float(0x7c00)));
    ck_assert(isnan(rs_half_to_float(0x7e00)));
    for (uint32_t h = 0; h < 0x7c00; h++) /* every finite half round-trips */
        ck_assert_uint_eq(rs_float_to_half(rs_half_to_float((uint16_t)h)), h);
    ck_assert_uint_eq(rs_float_to_bf16(1.0f), 0x3f80);
    ck_assert_float_eq(rs_bf16_to_float(0x3f80), 1.0f);
    ck_assert_uint_eq(rs_float_to_bf16(1.0f + 0x1p-8f), 0x3f80); /* halfway: even */
    ck_assert_uint_eq(rs_float_to_bf16(1.0f + 0x1.8p-8f), 0x3f81);
}
END_TEST

/* Strided row widening (one layer of a chunk's tokens) writes exactly the
 * rows' words widened one by one, and nothing between the rows: every
 * 16-bit pattern, rows of 67 words (not a whole vector), 5 rows. */
START_TEST(row_widening_equals_word_by_word)
{
    enum { ROWS = 5, N = 67, IN_STRIDE = 3 * N + 1, OUT_STRIDE = 2 * N + 3 };
    uint16_t in[ROWS * IN_STRIDE];
    float out[ROWS * OUT_STRIDE];
    for (uint32_t base = 0; base < 0x10000; base += ROWS * N) {
        for (int r = 0; r < ROWS; r++)
            for (int i = 0; i < N; i++)
                in[r * IN_STRIDE + i] = (uint16_t)(base + (uint32_t)(r * N + i));
        for (int f16 = 0; f16 <= 1; f16++) {
            for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
                out[i] = 12345.0f;
            if (f16)
                rs_half_to_float_rows(in, IN_STRIDE, out, OUT_STRIDE, ROWS, N);
            else
                rs_bf16_to_float_rows(in, IN_STRIDE, out, OUT_STRIDE, ROWS, N);
            for (int r = 0; r < ROWS; r++)
                for (int i = 0; i < OUT_STRIDE; i++) {
                    float want = i >= N                ? 12345.0f
                                 : f16 ? rs_half_to_float(in[r * IN_STRIDE + i])
                                       : rs_bf16_to_float(in[r * IN_STRIDE + i]);
                    float got = out[r * OUT_STRIDE + i];
                    ck_assert_msg(memcmp(&want, &got, sizeof want) == 0, "%s row %d word %d of 0x%04x",
                                  f16 ? "float16" : "bfloat16", r, i, (unsigned)base);
                }
        }
    }
}
END_TEST

/* Opens a written trace for modification with the raw HDF5 API. */
static hid_t reopen_rw(const char *path)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    return f;
}

static void write_dataset(hid_t f, const char *path, hid_t type, int rank, const hsize_t *dims, const void *data)
{
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, path, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    ck_assert_int_ge(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Dclose(d);
    H5Sclose(space);
}

START_TEST(missing_file_and_not_hdf5)
{
    expect_open_error(rs_test_path("does-not-exist.h5"), "cannot open trace: No such file or directory");
    const char *txt = rs_test_path("text.h5");
    FILE *f = fopen(txt, "w");
    fputs("not a trace\n", f);
    fclose(f);
    expect_open_error(txt, "not an HDF5 file");
}
END_TEST

START_TEST(missing_offsets)
{
    const char *path = good_trace("no-offsets.h5", RS_LOGITS_F32, NULL);
    hid_t f = reopen_rw(path);
    H5Ldelete(f, "/sequences/offsets", H5P_DEFAULT);
    H5Fclose(f);
    expect_open_error(path, "/sequences/offsets: missing dataset");
}
END_TEST

START_TEST(offsets_not_ending_at_t)
{
    const char *path = good_trace("short-offsets.h5", RS_LOGITS_F32, NULL);
    hid_t f = reopen_rw(path);
    H5Ldelete(f, "/sequences/offsets", H5P_DEFAULT);
    const int64_t bad[] = {0, 5, 19};
    hsize_t dims[1] = {3};
    write_dataset(f, "/sequences/offsets", H5T_NATIVE_INT64, 1, dims, bad);
    H5Fclose(f);
    expect_open_error(path, "/sequences/offsets: last offset is 19 but the trace has T = 20 tokens");
}
END_TEST

START_TEST(offsets_decreasing_and_nonzero_start)
{
    const char *path = good_trace("dec-offsets.h5", RS_LOGITS_F32, NULL);
    hid_t f = reopen_rw(path);
    H5Ldelete(f, "/sequences/offsets", H5P_DEFAULT);
    const int64_t bad[] = {0, 12, 5, 20};
    hsize_t dims[1] = {4};
    write_dataset(f, "/sequences/offsets", H5T_NATIVE_INT64, 1, dims, bad);
    H5Fclose(f);
    expect_open_error(path, "/sequences/offsets: decreasing at index 2");

    path = good_trace("start-offsets.h5", RS_LOGITS_F32, NULL);
    f = reopen_rw(path);
    H5Ldelete(f, "/sequences/offsets", H5P_DEFAULT);
    const int64_t bad2[] = {1, 20};
    dims[0] = 2;
    write_dataset(f, "/sequences/offsets", H5T_NATIVE_INT64, 1, dims, bad2);
    H5Fclose(f);
    expect_open_error(path, "/sequences/offsets: offsets[0] = 1, must be 0");
}
END_TEST

START_TEST(wrong_logits_rank_shape_and_dtype)
{
    const char *path = good_trace("rank.h5", RS_LOGITS_F32, NULL);
    hid_t f = reopen_rw(path);
    H5Ldelete(f, "/router/logits", H5P_DEFAULT);
    float flat[T * E] = {0};
    hsize_t dims2[2] = {T, E};
    write_dataset(f, "/router/logits", H5T_NATIVE_FLOAT, 2, dims2, flat);
    H5Fclose(f);
    expect_open_error(path, "/router/logits: expected 3 dimensions, found 2");

    path = good_trace("shape.h5", RS_LOGITS_F32, NULL);
    f = reopen_rw(path);
    H5Ldelete(f, "/router/logits", H5P_DEFAULT);
    float wide[T * L * 5] = {0};
    hsize_t dims3[3] = {T, L, 5};
    write_dataset(f, "/router/logits", H5T_NATIVE_FLOAT, 3, dims3, wide);
    H5Fclose(f);
    expect_open_error(path, "/router/logits: shape [20, 2, 5] does not match num_layers = 2, num_experts = 4");

    path = good_trace("f64.h5", RS_LOGITS_F32, NULL);
    f = reopen_rw(path);
    H5Ldelete(f, "/router/logits", H5P_DEFAULT);
    double d64[T * L * E] = {0};
    hsize_t dims[3] = {T, L, E};
    write_dataset(f, "/router/logits", H5T_NATIVE_DOUBLE, 3, dims, d64);
    H5Fclose(f);
    expect_open_error(path, "/router/logits: dtype is float64");

    path = good_trace("u16.h5", RS_LOGITS_F32, NULL);
    f = reopen_rw(path);
    H5Ldelete(f, "/router/logits", H5P_DEFAULT);
    uint16_t u16[T * L * E] = {0};
    write_dataset(f, "/router/logits", H5T_NATIVE_UINT16, 3, dims, u16);
    H5Fclose(f);
    expect_open_error(path, "uint16 logits need attribute encoding=\"bfloat16\"");
}
END_TEST

START_TEST(bad_root_attributes)
{
    const char *path = good_trace("attr.h5", RS_LOGITS_F32, NULL);
    hid_t f = reopen_rw(path);
    H5Adelete(f, "format");
    H5Fclose(f);
    expect_open_error(path, "root attribute 'format' missing");

    path = good_trace("version.h5", RS_LOGITS_F32, NULL);
    f = reopen_rw(path);
    H5Adelete(f, "format_version");
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "format_version", H5T_NATIVE_INT, space, H5P_DEFAULT, H5P_DEFAULT);
    int two = 2;
    H5Awrite(a, H5T_NATIVE_INT, &two);
    H5Aclose(a);
    H5Sclose(space);
    H5Fclose(f);
    expect_open_error(path, "root attribute 'format_version' is 2");

    path = good_trace("layers.h5", RS_LOGITS_F32, NULL);
    f = reopen_rw(path);
    H5Adelete(f, "num_layers");
    H5Fclose(f);
    expect_open_error(path, "root attribute 'num_layers' missing");
}
END_TEST

START_TEST(missing_logits_and_topk)
{
    const char *path = good_trace("nologits.h5", RS_LOGITS_F32, NULL);
    hid_t f = reopen_rw(path);
    H5Ldelete(f, "/router/logits", H5P_DEFAULT);
    H5Fclose(f);
    expect_open_error(path, "/router/logits: missing dataset (a trace needs /router/logits or /router/topk_ids)");
}
END_TEST

START_TEST(topk_only_trace_and_bad_expert_ids)
{
    const char *path = rs_test_path("topk-only.h5");
    int32_t ids[T * L * 2];
    for (int i = 0; i < T * L * 2; i++)
        ids[i] = i % E;
    ids[5] = -1;
    rs_test_trace t = {.T = T, .L = L, .E = E, .K = 2, .num_seq = 3, .offsets = offsets, .topk_ids = ids};
    rs_test_write_trace(path, &t);
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rs_trace_get_info(tr)->recorded_k, 2);
    ck_assert_int_eq(rs_trace_get_info(tr)->has_logits, 0);
    int32_t back[T * L * 2];
    ck_assert_int_eq(rs_trace_read_topk(tr, 0, T, back, NULL, &err), 0);
    ck_assert_mem_eq(back, ids, sizeof ids);
    rs_trace_close(tr);

    ids[17] = E; /* token 4, layer 0, slot 1 */
    const char *bad = rs_test_path("topk-bad.h5");
    rs_test_write_trace(bad, &t);
    ck_assert_int_eq(rs_trace_open(&tr, bad, &err), 0);
    ck_assert_int_eq(rs_trace_read_topk(tr, 0, T, back, NULL, &err), -1);
    ck_assert_str_eq(strstr(err.msg, "/router"), "/router/topk_ids: expert id 4 at token 4, layer 0 is outside [-1, 4)");
    rs_trace_close(tr);
}
END_TEST

START_TEST(writer_leaves_nothing_on_abort)
{
    const char *path = rs_test_path("aborted.h5");
    rs_trace_layout layout = {.num_layers = 1, .num_experts = 2, .logits = RS_LOGITS_F32, .norm_topk = -1};
    rs_trace_writer *w = NULL;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_trace_writer_create(&w, path, &layout, &err), 0);
    float z[4] = {1, 2, 3, 4};
    ck_assert_int_eq(rs_trace_writer_append(w, 2, z, NULL, NULL, NULL, NULL, &err), 0);
    /* tokens after the last sequence end: finish refuses and removes the file */
    ck_assert_int_eq(rs_trace_writer_finish(w, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "2 tokens after the last sequence end"));
    ck_assert(!rs_test_file_exists(path));
    ck_assert_int_eq(rs_trace_writer_create(&w, rs_test_path("no-such-dir/x/../../aborted2.h5"), &layout, &err), 0);
    rs_trace_writer_abort(w);
    ck_assert(!rs_test_file_exists(rs_test_path("aborted2.h5")));
}
END_TEST

Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("trace");
    tcase_add_test(tc, round_trip_float32);
    tcase_add_test(tc, round_trip_16_bit);
    tcase_add_test(tc, half_conversions_exact_cases);
    tcase_add_test(tc, row_widening_equals_word_by_word);
    tcase_add_test(tc, missing_file_and_not_hdf5);
    tcase_add_test(tc, missing_offsets);
    tcase_add_test(tc, offsets_not_ending_at_t);
    tcase_add_test(tc, offsets_decreasing_and_nonzero_start);
    tcase_add_test(tc, wrong_logits_rank_shape_and_dtype);
    tcase_add_test(tc, bad_root_attributes);
    tcase_add_test(tc, missing_logits_and_topk);
    tcase_add_test(tc, topk_only_trace_and_bad_expert_ids);
    tcase_add_test(tc, writer_leaves_nothing_on_abort);
    suite_add_tcase(s, tc);
    return s;
}
