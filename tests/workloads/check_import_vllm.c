/* routesim import vllm: .npz files written with numpy as a user saves vLLM's
 * routed experts (np.savez and np.savez_compressed; routed_experts int32,
 * uint16 and uint8; token ids as the Python lists vLLM returns, so int64,
 * and an empty output list, which numpy saves as float64), imported with
 * the CLI and checked token by token; malformed files get one line and
 * leave no trace. */
#include <check.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/test_util.h"
#include "workloads/trace/trace.h"

/* The model: 5 layers, of which 1, 2 and 4 are MoE (0 and 3 dense: vLLM's
 * buffer holds 0s there), E = 16 experts, k = 2. Four requests, saved in
 * files whose name order is not their id order. */
enum { E = 16, L = 5, K = 2, NREQ = 4, MAX_T = 8 };
static const int moe_layers[] = {1, 2, 4};
enum { NL = sizeof moe_layers / sizeof moe_layers[0] };

typedef struct req {
    int id, prompt, output;
} req;
/* in request_id order, as the directory import must store them */
static const req by_id[NREQ] = {{3, 3, 0}, {7, 4, 3}, {12, 2, 1}, {30, 1, 2}};

/* The writer: vLLM's outputs as a user saves them, one np.savez per request. */
static const char *const writer_py =
    "import io, os, sys, zipfile\n"
    "import numpy as np\n"
    "E, L, K = 16, 5, 2\n"
    "MOE = [1, 2, 4]\n"
    "def routed(rid, P, O, dtype):\n"
    "    r = np.zeros((P + O - 1, L, K), dtype=np.int32)  # vLLM: zero-filled int32\n"
    "    for t in range(P + O - 1):\n"
    "        for l in MOE:\n"
    "            for s in range(K):\n"
    "                r[t, l, s] = (rid * 5 + t * 3 + l * 7 + s) % E\n"
    "    return r.astype(dtype)\n"
    "def request(rid, P, O, dtype=np.int32):\n"
    "    # RequestOutput.request_id (str), .prompt_token_ids (list), outputs[0].token_ids (list)\n"
    "    return dict(request_id=str(rid), prompt_token_ids=[1000 + rid * 10 + t for t in range(P)],\n"
    "                output_token_ids=[2000 + rid * 10 + j for j in range(O)], routed_experts=routed(rid, P, O, "
    "dtype))\n"
    "def npy(a):\n"
    "    b = io.BytesIO(); np.lib.format.write_array(b, np.asanyarray(a)); return b.getvalue()\n"
    "mode, out = sys.argv[1], sys.argv[2]\n"
    "os.makedirs(out, exist_ok=True)\n"
    "if mode == 'good':\n"
    "    np.savez(os.path.join(out, 'b-first.npz'), **request(7, 4, 3, np.int32))\n"
    "    np.savez_compressed(os.path.join(out, 'a-second.npz'), **request(12, 2, 1, np.uint16))\n"
    "    np.savez(os.path.join(out, 'd-third.npz'), **request(3, 3, 0, np.uint8))\n"
    "    np.savez_compressed(os.path.join(out, 'c-fourth.npz'), **request(30, 1, 2, np.int32))\n"
    "    open(os.path.join(out, 'README.txt'), 'w').write('saved by the run script\\n')\n"
    "else:\n"
    "    d = request(7, 4, 3)\n"
    "    np.savez(os.path.join(out, 'no-routed.npz'), **{k: v for k, v in d.items() if k != 'routed_experts'})\n"
    "    np.savez(os.path.join(out, 'rows.npz'), **dict(d, routed_experts=d['routed_experts'][:-1]))\n"
    "    big = d['routed_experts'].copy(); big[2, 4, 1] = E\n"
    "    np.savez(os.path.join(out, 'range.npz'), **dict(d, routed_experts=big))\n"
    "    np.savez(os.path.join(out, 'fortran.npz'), **dict(d, routed_experts=np.asfortranarray(d['routed_experts'])))\n"
    "    np.savez(os.path.join(out, 'float.npz'), **dict(d, routed_experts=d['routed_experts'].astype(np.float32)))\n"
    "    np.savez(os.path.join(out, 'int64.npz'), **dict(d, routed_experts=d['routed_experts'].astype(np.int64)))\n"
    "    np.savez(os.path.join(out, 'negative.npz'), **dict(d, prompt_token_ids=[5, -1, 6, 7]))\n"
    "    np.savez_compressed(os.path.join(out, 'whole.npz'), **d)\n"
    "    raw = open(os.path.join(out, 'whole.npz'), 'rb').read()\n"
    "    open(os.path.join(out, 'truncated.npz'), 'wb').write(raw[: len(raw) * 2 // 3])\n"
    "    with zipfile.ZipFile(os.path.join(out, 'header.npz'), 'w') as z:\n"
    "        for k, v in d.items():\n"
    "            data = npy(v)\n"
    "            if k == 'routed_experts':\n"
    "                data = data.replace(b\"'shape': (6, 5, 2)\", b\"'shape': [6, 5, 2]\")\n"
    "            z.writestr(k + '.npy', data)\n"
    "    with zipfile.ZipFile(os.path.join(out, 'version.npz'), 'w') as z:\n"
    "        for k, v in d.items():\n"
    "            data = npy(v)\n"
    "            z.writestr(k + '.npy', data[:6] + b'\\x04\\x00' + data[8:] if k == 'routed_experts' else data)\n";

/* Runs the writer; returns the directory it wrote. */
static const char *write_requests(const char *mode, const char *dir_name)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", rs_test_path(dir_name));
    const char *script = rs_test_path("write_vllm.py");
    FILE *f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fputs(writer_py, f);
    fclose(f);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' %s '%s'", script, mode, dir);
    ck_assert_msg(system(cmd) == 0, "the numpy writer failed: %s", cmd);
    return dir;
}

static int32_t expert(int id, int t, int layer, int slot) { return (id * 5 + t * 3 + layer * 7 + slot) % E; }

typedef struct loaded {
    rs_trace_info info;
    int64_t offsets[NREQ + 1];
    int32_t ids[NREQ * MAX_T * L * K];
    int32_t token_ids[NREQ * MAX_T];
    uint8_t phase[NREQ * MAX_T];
    int32_t layer_index[L];
    char notes[4096];
} loaded;

static void load(const char *path, loaded *t)
{
    rs_error err = {{0}};
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    t->info = *rs_trace_get_info(tr);
    ck_assert_int_le(t->info.num_sequences, NREQ);
    ck_assert_int_le(t->info.num_tokens, NREQ * MAX_T);
    ck_assert_int_le(t->info.num_layers, L);
    ck_assert_int_eq(t->info.recorded_k, K);
    ck_assert_int_eq(t->info.has_token_ids, 1);
    ck_assert_int_eq(t->info.has_phase, 1);
    ck_assert_int_eq(t->info.has_topk_weights, 0);
    const int T = (int)t->info.num_tokens;
    ck_assert_int_eq(rs_trace_read_offsets(tr, 0, t->info.num_sequences + 1, t->offsets, &err), 0);
    ck_assert_msg(rs_trace_read_topk(tr, 0, T, t->ids, NULL, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rs_trace_read_token_ids(tr, 0, T, t->token_ids, &err), 0);
    ck_assert_int_eq(rs_trace_read_phase(tr, 0, T, t->phase, &err), 0);
    snprintf(t->notes, sizeof t->notes, "%s", rs_trace_import_notes(tr));
    rs_trace_close(tr);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t attr = H5Aopen(file, "layer_index", H5P_DEFAULT);
    ck_assert(file >= 0 && attr >= 0 && H5Aread(attr, H5T_NATIVE_INT32, t->layer_index) >= 0);
    H5Aclose(attr);
    H5Fclose(file);
}

/* Sequence s holds request r, token by token, at the layers given. */
static void check_sequence(const loaded *t, int s, const req *r, const int *layers, int nl)
{
    const int T = r->prompt + r->output;
    ck_assert_int_eq(t->info.num_layers, nl);
    ck_assert_int_eq(t->offsets[s + 1] - t->offsets[s], T);
    for (int tok = 0; tok < T; tok++) {
        const int64_t at = t->offsets[s] + tok;
        const int32_t want_id = tok < r->prompt ? 1000 + r->id * 10 + tok : 2000 + r->id * 10 + tok - r->prompt;
        ck_assert_msg(t->token_ids[at] == want_id, "request %d token %d: id %d, expected %d", r->id, tok,
                      t->token_ids[at], want_id);
        ck_assert_int_eq(t->phase[at], tok >= r->prompt);
        for (int j = 0; j < nl; j++) {
            const int layer = layers[j];
            const int is_moe = layer == 1 || layer == 2 || layer == 4;
            for (int slot = 0; slot < K; slot++) {
                /* the last token has no row: not observed (-1 row); a dense layer kept holds vLLM's 0s */
                const int32_t want = tok == T - 1 ? -1 : is_moe ? expert(r->id, tok, layer, slot) : 0;
                const int32_t got = t->ids[(at * nl + j) * K + slot];
                ck_assert_msg(got == want, "request %d token %d layer %d slot %d: %d, expected %d", r->id, tok, layer,
                              slot, got, want);
            }
        }
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

START_TEST(directory_token_by_token)
{
    char dir[512], out[512];
    snprintf(dir, sizeof dir, "%s", write_requests("good", "requests"));
    snprintf(out, sizeof out, "%s", rs_test_path("vllm.h5"));
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import vllm '%s' -o '%s' --experts %d --model test/moe", dir, out, E);
    ck_assert_int_eq(import_cli(args, &err), 0);
    ck_assert_msg(strstr(err, "routesim: imported 4 requests into") &&
                      strstr(err, "16 tokens (12 routed), 3 MoE layers of 5, K = 2"),
                  "%s", err);
    free(err);
    loaded *t = calloc(1, sizeof *t);
    load(out, t);
    ck_assert_int_eq(t->info.num_sequences, NREQ);
    ck_assert_int_eq(t->info.num_experts, E);
    ck_assert_int_eq(t->info.top_k, K);
    for (int j = 0; j < NL; j++)
        ck_assert_int_eq(t->layer_index[j], moe_layers[j]);
    /* numeric request_id order 3, 7, 12, 30 (bytewise would be 12, 3, 30, 7; file names b, a, d, c) */
    for (int s = 0; s < NREQ; s++)
        check_sequence(t, s, &by_id[s], moe_layers, NL);
    ck_assert_msg(strstr(t->notes, "sorted by request_id (numerically"), "%s", t->notes);
    ck_assert_msg(strstr(t->notes, "skipped 1 entry of") && strstr(t->notes, "(README.txt)"), "%s", t->notes);
    ck_assert_msg(strstr(t->notes, "last token is not observed at any layer (4 tokens"), "%s", t->notes);
    ck_assert_msg(strstr(t->notes, "dense layers detected: 0, 3 hold only 0") &&
                      strstr(t->notes, "MoE layers kept: 1-2, 4 of 5"),
                  "%s", t->notes);
    ck_assert_msg(strstr(t->notes, "<i4") && strstr(t->notes, "<u2") && strstr(t->notes, "|u1"), "%s", t->notes);
    free(t);

    char *info = NULL;
    snprintf(args, sizeof args, "info '%s'", out);
    ck_assert_int_eq(rs_test_run_cli(args, &info, NULL), 0);
    ck_assert_msg(strstr(info, "imported   dense layers detected"), "%s", info);
    free(info);
    /* the trace replays, its -1 rows included */
    snprintf(args, sizeof args, "route '%s' --router replay --metrics load", out);
    ck_assert_int_eq(rs_test_run_cli(args, NULL, NULL), 0);
}
END_TEST

/* Files named on the command line keep their order; --moe-layers keeps
 * layer 3 (dense: its 0s are written as they are). */
START_TEST(files_in_order_with_moe_layers)
{
    char dir[512], out[512];
    snprintf(dir, sizeof dir, "%s", write_requests("good", "named"));
    snprintf(out, sizeof out, "%s", rs_test_path("named.h5"));
    char args[4096];
    snprintf(args, sizeof args, "import vllm '%s/c-fourth.npz' '%s/a-second.npz' -o '%s' --experts %d --moe-layers 1-4",
             dir, dir, out, E);
    ck_assert_int_eq(import_cli(args, NULL), 0);
    loaded *t = calloc(1, sizeof *t);
    load(out, t);
    const int layers[] = {1, 2, 3, 4};
    ck_assert_int_eq(t->info.num_sequences, 2);
    for (int j = 0; j < 4; j++)
        ck_assert_int_eq(t->layer_index[j], layers[j]);
    check_sequence(t, 0, &by_id[3], layers, 4); /* request 30 first, as given */
    check_sequence(t, 1, &by_id[2], layers, 4);
    ck_assert_msg(strstr(t->notes, "in the order given"), "%s", t->notes);
    ck_assert_msg(strstr(t->notes, "MoE layers from --moe-layers: 1-4 of the model's 5"), "%s", t->notes);
    ck_assert_msg(strstr(t->notes, "layers given by --moe-layers that hold only 0 in every request: 3"), "%s",
                  t->notes);
    free(t);
}
END_TEST

/* One line naming the file, the array and the field; no trace left. */
START_TEST(malformed_files_are_refused)
{
    char dir[512], out[512];
    snprintf(dir, sizeof dir, "%s", write_requests("bad", "bad"));
    snprintf(out, sizeof out, "%s", rs_test_path("bad.h5"));
    static const struct {
        const char *file, *options, *message;
    } cases[] = {
        {"no-routed.npz", "", "no-routed.npz: no array routed_experts (the .npz holds: "},
        {"rows.npz", "", "rows.npz: routed_experts: shape: 5 rows, expected prompt 4 + output 3 - 1 = 6"},
        {"range.npz", "", "range.npz: routed_experts: row 2, layer 4, slot 1: expert 16 is outside [0, 16)"},
        {"whole.npz", "--experts 12", "whole.npz: routed_experts: row 0, layer 4, slot 0: expert 15 is outside [0, 12)"},
        {"fortran.npz", "", "fortran.npz: routed_experts.npy: fortran_order: True"},
        {"float.npz", "", "float.npz: routed_experts: descr: '<f4' is not one of '<i4', '<u2', '|u1'"},
        {"int64.npz", "", "int64.npz: routed_experts: descr: '<i8' is not one of"},
        {"negative.npz", "", "negative.npz: prompt_token_ids: element 1: token id -1 is outside"},
        {"truncated.npz", "", "truncated.npz: not a readable .npz (zip: "},
        {"header.npz", "", "header.npz: routed_experts.npy: shape: not a tuple"},
        {"version.npz", "", "version.npz: routed_experts.npy: version: 4.0, not 1.0, 2.0 or 3.0"},
        {"missing.npz", "", "missing.npz: no such file or directory"},
        {"whole.npz", "--moe-layers 2,1", "--moe-layers: layer 1 after 2"},
        {"whole.npz", "--moe-layers 1,5", "--moe-layers: layer 5, but routed_experts holds layers 0 .. 4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[4096], *err = NULL;
        snprintf(args, sizeof args, "import vllm '%s/%s' -o '%s' --experts %d %s", dir, cases[i].file, out, E,
                 cases[i].options);
        int rc = import_cli(args, &err);
        ck_assert_msg(rc == 1 || rc == 2, "case %zu: exit %d: %s", i, rc, err);
        ck_assert_msg(strstr(err, cases[i].message), "case %zu: '%s' not in: %s", i, cases[i].message, err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "case %zu: not one line: %s", i, err);
        ck_assert_msg(!rs_test_file_exists(out), "case %zu left %s", i, out);
        free(err);
    }
    /* the file the bad cases were cut from imports */
    char args[4096];
    snprintf(args, sizeof args, "import vllm '%s/whole.npz' -o '%s' --experts %d", dir, out, E);
    ck_assert_int_eq(import_cli(args, NULL), 0);
}
END_TEST

/* A request given twice, and a directory among files. */
START_TEST(bad_request_sets_are_refused)
{
    char dir[512], out[512];
    snprintf(dir, sizeof dir, "%s", write_requests("good", "sets"));
    snprintf(out, sizeof out, "%s", rs_test_path("sets.h5"));
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "import vllm '%s/a-second.npz' '%s/a-second.npz' -o '%s' --experts %d", dir, dir, out,
             E);
    ck_assert_int_eq(import_cli(args, &err), 1);
    ck_assert_msg(strstr(err, "request_id: '12' is also the id of"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "import vllm '%s' '%s/a-second.npz' -o '%s' --experts %d", dir, dir, out, E);
    ck_assert_int_eq(import_cli(args, &err), 1);
    ck_assert_msg(strstr(err, "a directory among 2 inputs"), "%s", err);
    free(err);
    mkdir(rs_test_path("empty"), 0755);
    snprintf(args, sizeof args, "import vllm '%s' -o '%s' --experts %d", rs_test_path("empty"), out, E);
    ck_assert_int_eq(import_cli(args, &err), 1);
    ck_assert_msg(strstr(err, "no .npz files"), "%s", err);
    free(err);
    snprintf(args, sizeof args, "import vllm '%s' -o '%s'", dir, out);
    ck_assert_int_eq(import_cli(args, &err), 2); /* --experts is required */
    ck_assert_msg(strstr(err, "--experts E is required"), "%s", err);
    free(err);
    ck_assert(!rs_test_file_exists(out));
}
END_TEST

Suite *import_vllm_suite(void)
{
    Suite *s = suite_create("import_vllm");
    TCase *tc = tcase_create("import_vllm");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, directory_token_by_token);
    tcase_add_test(tc, files_in_order_with_moe_layers);
    tcase_add_test(tc, malformed_files_are_refused);
    tcase_add_test(tc, bad_request_sets_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
