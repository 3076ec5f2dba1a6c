/* routesim import megatron: directories written as Megatron-LM's RouterTracer
 * writes them (megatron/core/transformer/moe/router_trace.py): in
 * router_trace_rank{r}.jsonl one json.dumps record per router call, keys in
 * the tracer's order (step, stage, block, layer, rank, num_tokens, topk,
 * mtp_idx for MTP routers, logit_offset / logit_bytes / logit_shape when
 * logits are captured, top_indices last), records flushed step by step; in
 * logits_rank{r}.bin the records' logits [num_tokens, num_experts] as
 * little-endian bfloat16, back to back. The dumps are imported with the CLI
 * and the traces compared token by token with what was written. */
#include <check.h>
#include <dirent.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "tests/test_util.h"
#include "workloads/trace/trace.h"

/* ---- writing a dump ---------------------------------------------------------- */

typedef struct router {
    const char *block; /* "decoder" or "mtp" */
    int mtp_idx;       /* -1: no mtp_idx key (decoder routers) */
    int layer;         /* as the tracer logs it */
} router;

typedef struct step_spec {
    long long step; /* the step id stamped on the records */
    int passes;     /* forward passes (micro-batches) in the step */
    int tokens;     /* tokens of each pass: sequence length x micro-batch */
} step_spec;

/* Corruptions of one record (rank 1, the record at bad_record in file order,
 * counted from 0), for the malformed-input cases. */
enum bad_kind { BAD_NONE, BAD_ID, BAD_NO_NUM_TOKENS, BAD_ROWS, BAD_RANK, BAD_NAN, BAD_DUPLICATE };

typedef struct dump_spec {
    int ranks, E, K;
    const router *routers; /* in the order the hooks fire; sorted as the trace's layers */
    int num_routers;
    const step_spec *steps;
    int num_steps;
    int logits;      /* captured: logits_rank{r}.bin and the logit_* keys */
    int score_order; /* rows in top-k order (the inference sink) instead of ascending ids (the routing map) */
    int skip_step, skip_router; /* a router call not logged (rank 0, every pass of that step); -1: none */
    enum bad_kind bad;
    int bad_record;
} dump_spec;

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static uint32_t row_seed(int rank, int step, int pass, int router, int token)
{
    return mix((uint32_t)(((rank * 31 + step) * 31 + pass) * 31 + router) * 1000003u + (uint32_t)token);
}

/* Where expert e ranks in the row (0 lowest): an affine permutation of
 * 0..E-1 (E a power of two), so every logit of a row differs. */
static int rank_of(uint32_t seed, int E, int e)
{
    uint32_t a = mix(seed) | 1u, c = mix(seed ^ 0x9e3779b9u);
    return (int)((a * (uint32_t)e + c) & (uint32_t)(E - 1));
}

/* The row's logit of expert e as bfloat16 bits: (rank - E/2) / 8 times a
 * power of two, exact in bfloat16 for E <= 256. */
static uint16_t logit_bits(uint32_t seed, int E, int e)
{
    float scale = (float)(1 << (mix(seed + 7u) % 5)) / 4.0f;
    float v = (float)(rank_of(seed, E, e) - E / 2) * 0.125f * scale;
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    if ((bits & 0xffffu) != 0)
        ck_abort_msg("test logit %g is not exact in bfloat16", v);
    return (uint16_t)(bits >> 16);
}

/* The expert at rank r of the row: the permutation inverted (a is odd, so
 * it has an inverse modulo 2^32, by Newton's iteration). */
static int expert_at(uint32_t seed, int E, int r)
{
    uint32_t a = mix(seed) | 1u, c = mix(seed ^ 0x9e3779b9u), inverse = a;
    for (int i = 0; i < 5; i++)
        inverse *= 2u - a * inverse;
    return (int)(((uint32_t)r - c) * inverse & (uint32_t)(E - 1));
}

static int compare_int32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The row's top-K experts: by descending logit, or (ascending) by id. */
static void top_ids(uint32_t seed, int E, int K, int ascending, int32_t *ids)
{
    for (int j = 0; j < K; j++) {
        ids[j] = expert_at(seed, E, E - 1 - j);
        if (rank_of(seed, E, ids[j]) != E - 1 - j) /* (ck_assert in loops this hot costs a write each) */
            ck_abort_msg("expert_at is not the inverse of rank_of");
    }
    if (ascending)
        qsort(ids, (size_t)K, sizeof *ids, compare_int32);
}

static int skipped(const dump_spec *d, int rank, int step, int router)
{
    return rank == 0 && step == d->skip_step && router == d->skip_router;
}

/* One record, as RouterTracer._flush_records_to_disk writes it. */
static void write_record(FILE *f, FILE *bin, long long *offset, const dump_spec *d, int rank, int si, int pass,
                         int ri, int bad)
{
    const router *r = &d->routers[ri];
    const int n = d->steps[si].tokens, E = d->E, K = d->K;
    fprintf(f, "{\"step\": %lld, \"stage\": \"pre_dispatch\", \"block\": \"%s\", \"layer\": %d, \"rank\": %d",
            d->steps[si].step, r->block, r->layer, bad == BAD_RANK ? rank + 1 : rank);
    if (bad != BAD_NO_NUM_TOKENS)
        fprintf(f, ", \"num_tokens\": %d", n);
    fprintf(f, ", \"topk\": %d", K);
    if (r->mtp_idx >= 0)
        fprintf(f, ", \"mtp_idx\": %d", r->mtp_idx);
    if (d->logits) {
        long long bytes = (long long)n * E * 2;
        fprintf(f, ", \"logit_offset\": %lld, \"logit_bytes\": %lld, \"logit_shape\": [%d, %d]", *offset, bytes, n, E);
        for (int t = 0; t < n; t++)
            for (int e = 0; e < E; e++) {
                uint16_t w = bad == BAD_NAN && t == 1 && e == 3 ? 0x7fc0 : logit_bits(row_seed(rank, si, pass, ri, t), E, e);
                fputc(w & 0xff, bin);
                fputc(w >> 8, bin);
            }
        *offset += bytes;
    }
    fputs(", \"top_indices\": [", f);
    int rows = bad == BAD_ROWS ? n - 1 : n;
    for (int t = 0; t < rows; t++) {
        int32_t ids[64];
        top_ids(row_seed(rank, si, pass, ri, t), E, K, !d->score_order, ids);
        if (bad == BAD_ID && t == 2)
            ids[1] = E;
        if (bad == BAD_DUPLICATE && t == 2)
            ids[1] = ids[0];
        fputs(t ? ", [" : "[", f);
        for (int j = 0; j < K; j++)
            fprintf(f, j ? ", %d" : "%d", ids[j]);
        fputc(']', f);
    }
    fputs("]}\n", f);
}

/* Writes the dump in directory name (created fresh); returns its path. */
static char *write_dump(const char *name, const dump_spec *d)
{
    char *dir = strdup(rs_test_path(name));
    mkdir(dir, 0777);
    for (int rank = 0; rank < d->ranks; rank++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/router_trace_rank%d.jsonl", dir, rank);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        FILE *bin = NULL;
        if (d->logits) {
            snprintf(path, sizeof path, "%s/logits_rank%d.bin", dir, rank);
            bin = fopen(path, "wb");
            ck_assert_ptr_nonnull(bin);
        }
        long long offset = 0;
        int record = 0;
        for (int si = 0; si < d->num_steps; si++)
            for (int pass = 0; pass < d->steps[si].passes; pass++)
                for (int ri = 0; ri < d->num_routers; ri++)
                    if (!skipped(d, rank, si, ri))
                        write_record(f, bin, &offset, d, rank, si, pass, ri,
                                     rank == 1 && record++ == d->bad_record ? (int)d->bad : BAD_NONE);
        fclose(f);
        if (bin)
            fclose(bin);
    }
    return dir;
}

/* ---- reading the trace back ------------------------------------------------------ */

typedef struct loaded {
    rs_trace_info info;
    int64_t *offsets;
    int32_t *ids;
    uint16_t *logits; /* the stored bfloat16 words, NULL without logits */
    char *notes;
    int32_t layer_index[16];
} loaded;

static loaded load(const char *path)
{
    rs_error err = {{0}};
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    loaded t = {.info = *rs_trace_get_info(tr)};
    int n = (int)t.info.num_tokens, L = t.info.num_layers;
    t.offsets = calloc((size_t)t.info.num_sequences + 1, sizeof *t.offsets);
    t.ids = calloc((size_t)n * (size_t)L * (size_t)t.info.recorded_k, sizeof *t.ids);
    ck_assert_msg(rs_trace_read_offsets(tr, 0, t.info.num_sequences + 1, t.offsets, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_trace_read_topk(tr, 0, n, t.ids, NULL, &err) == 0, "%s", err.msg);
    if (t.info.has_logits) {
        ck_assert_int_eq(rs_trace_logits_dtype(tr), RS_LOGITS_BF16);
        t.logits = calloc((size_t)n * (size_t)L * (size_t)t.info.num_experts, sizeof *t.logits);
        ck_assert_msg(rs_trace_read_logits_stored(tr, 0, n, t.logits, &err) == 0, "%s", err.msg);
    }
    t.notes = strdup(rs_trace_import_notes(tr));
    t.info.path = NULL; /* owned by the closed trace */
    t.info.unit = t.info.model = t.info.scoring = NULL;
    t.info.expert_names = NULL;
    rs_trace_close(tr);

    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t attr = H5Aopen(file, "layer_index", H5P_DEFAULT);
    ck_assert_msg(attr >= 0, "%s: no layer_index", path);
    ck_assert_int_le(L, 16);
    ck_assert(H5Aread(attr, H5T_NATIVE_INT32, t.layer_index) >= 0);
    H5Aclose(attr);
    H5Fclose(file);
    return t;
}

static void unload(loaded *t)
{
    free(t->offsets);
    free(t->ids);
    free(t->logits);
    free(t->notes);
}

/* Compares the trace with the dump: ranks in order, steps, passes, then the
 * micro_batch sequences of each pass, token i of a record being position
 * i / micro_batch of sequence i % micro_batch. ids_by_logit: the trace's
 * rows are by descending logit (else as recorded). */
static void assert_trace_is_dump(const loaded *t, const dump_spec *d, int micro_batch, int ids_by_logit)
{
    const int L = d->num_routers, K = d->K, E = d->E;
    ck_assert_int_eq(t->info.num_layers, L);
    ck_assert_int_eq(t->info.num_experts, E);
    ck_assert_int_eq(t->info.recorded_k, K);
    ck_assert_int_eq(t->info.has_logits, d->logits);
    int64_t token = 0, seq = 0;
    for (int rank = 0; rank < d->ranks; rank++)
        for (int si = 0; si < d->num_steps; si++)
            for (int pass = 0; pass < d->steps[si].passes; pass++)
                for (int b = 0; b < micro_batch; b++) {
                    if (t->offsets[seq] != token)
                        ck_abort_msg("sequence %lld starts at %lld, expected %lld", (long long)seq,
                                     (long long)t->offsets[seq], (long long)token);
                    seq++;
                    for (int pos = 0; pos < d->steps[si].tokens / micro_batch; pos++, token++) {
                        int i = pos * micro_batch + b;
                        for (int l = 0; l < L; l++) {
                            const int32_t *got = t->ids + ((size_t)token * L + (size_t)l) * (size_t)K;
                            uint32_t s = row_seed(rank, si, pass, l, i);
                            int32_t want[64];
                            if (skipped(d, rank, si, l))
                                for (int j = 0; j < K; j++)
                                    want[j] = -1;
                            else
                                top_ids(s, E, K, !(ids_by_logit || d->score_order), want);
                            for (int j = 0; j < K; j++)
                                if (got[j] != want[j])
                                    ck_abort_msg("rank %d step %d pass %d seq %d pos %d layer %d slot %d: %d, "
                                                 "expected %d", rank, si, pass, b, pos, l, j, got[j], want[j]);
                            if (!t->logits)
                                continue;
                            const uint16_t *stored = t->logits + ((size_t)token * L + (size_t)l) * (size_t)E;
                            for (int e = 0; e < E; e++)
                                if (stored[e] != logit_bits(s, E, e))
                                    ck_abort_msg("token %lld layer %d expert %d: stored 0x%04x, the sidecar has "
                                                 "0x%04x", (long long)token, l, e, stored[e], logit_bits(s, E, e));
                        }
                    }
                }
    ck_assert_int_eq(t->info.num_tokens, token);
    ck_assert_int_eq(t->info.num_sequences, seq);
}

static void assert_note(const loaded *t, const char *fragment)
{
    ck_assert_msg(strstr(t->notes, fragment), "no note with '%s' in:\n%s", fragment, t->notes);
}

/* ---- the dumps ------------------------------------------------------------------ */

/* Training with gradient accumulation: decoder MoE layers 0 and 2 (layer 1
 * dense), an MTP head; step 5 runs two micro-batches of [3 positions x 2
 * sequences], step 6 one of [2 x 2]; two data-parallel ranks; logits captured. */
static const router training_routers[] = {{"decoder", -1, 0}, {"decoder", -1, 2}, {"mtp", 0, 0}};
static const step_spec training_steps[] = {{5, 2, 6}, {6, 1, 4}};

static dump_spec training_dump(void)
{
    return (dump_spec){.ranks = 2, .E = 8, .K = 2, .routers = training_routers, .num_routers = 3,
                       .steps = training_steps, .num_steps = 2, .logits = 1, .skip_step = -1, .skip_router = -1};
}

/* The inference sink (record_indices with RouterReplay's 1-based layer
 * numbers): one forward pass per step of the whole batch, rows in top-k
 * order, no sidecars; layer 4 not logged in step 2. */
static const router sink_routers[] = {{"decoder", -1, 2}, {"decoder", -1, 4}, {"decoder", -1, 5}};
static const step_spec sink_steps[] = {{0, 1, 5}, {1, 1, 3}, {2, 1, 3}, {3, 1, 4}};

static dump_spec sink_dump(void)
{
    return (dump_spec){.ranks = 1, .E = 16, .K = 4, .routers = sink_routers, .num_routers = 3, .steps = sink_steps,
                       .num_steps = 4, .score_order = 1, .skip_step = 2, .skip_router = 1};
}

static char *import_cli(const char *dir, const char *out_name, const char *options)
{
    char *out = strdup(rs_test_path(out_name));
    char args[4096], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "import megatron %s -o %s %s", dir, out, options);
    ck_assert_msg(rs_test_run_cli(args, &o, &e) == 0, "%s: %s", args, e);
    ck_assert_msg(strstr(e, "routesim: imported ") == e && strstr(e, "routesim: note: "), "report: %s", e);
    free(o);
    free(e);
    return out;
}

/* ---- tests ------------------------------------------------------------------ */

START_TEST(test_training_dump_token_by_token)
{
    dump_spec d = training_dump();
    char *dir = write_dump("training", &d);
    char *out = import_cli(dir, "training.h5", "--micro-batch 2");
    loaded t = load(out);
    /* 2 ranks x (2 passes x 6 + 4 tokens), 2 sequences per pass */
    ck_assert_int_eq(t.info.num_tokens, 32);
    ck_assert_int_eq(t.info.num_sequences, 12);
    ck_assert_int_eq(t.info.top_k, 2);
    assert_trace_is_dump(&t, &d, 2, 1);
    const int32_t want_layer_index[] = {0, 2, 3}; /* decoder 0, 2; the MTP head after the decoder's last */
    for (int l = 0; l < 3; l++)
        ck_assert_int_eq(t.layer_index[l], want_layer_index[l]);
    assert_note(&t, "a record has layer 0");
    assert_note(&t, "layer 2 is the MTP block's router");
    assert_note(&t, "each row is reordered by descending logit");
    assert_note(&t, "token i is position i / 2 of sequence i % 2 (--micro-batch 2)");
    assert_note(&t, "the recorded experts are the top-k of the logits in 96 of 96 (token, layer) pairs");
    unload(&t);

    char args[2048], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "info %s", out);
    ck_assert_int_eq(rs_test_run_cli(args, &o, &e), 0);
    ck_assert_msg(strstr(o, "\nimported   layer numbers read as the forward hook's"), "%s", o);
    free(o);
    free(e);

    /* one sequence per record: the same ids and logits in another order */
    char *single = import_cli(dir, "training-mb1.h5", "");
    t = load(single);
    ck_assert_int_eq(t.info.num_sequences, 6);
    assert_trace_is_dump(&t, &d, 1, 1);
    unload(&t);
    free(single);
    free(out);
    free(dir);
}
END_TEST

/* Re-routed by topk from the stored logits, every token gets the experts
 * the model recorded (the test's logits have no ties). */
START_TEST(test_logits_reroute_to_the_recorded_experts)
{
    dump_spec d = training_dump();
    char *dir = write_dump("reroute", &d);
    char *out = import_cli(dir, "reroute.h5", "--micro-batch 2");
    char *dec = strdup(rs_test_path("reroute-decisions.h5"));
    char args[4096], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "route %s --router topk:k=2 --out %s", out, dec);
    ck_assert_msg(rs_test_run_cli(args, &o, &e) == 0, "%s", e);
    free(o);
    free(e);

    hid_t file = H5Fopen(dec, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(file >= 0);
    hid_t dset = H5Dopen2(file, "/decisions/ids", H5P_DEFAULT);
    ck_assert(dset >= 0);
    int32_t ids[32 * 3 * 2];
    hid_t space = H5Dget_space(dset);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(space), 32 * 3 * 2);
    ck_assert(H5Dread(dset, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids) >= 0);
    H5Sclose(space);
    H5Dclose(dset);
    H5Fclose(file);

    /* the recorded top_indices of each token, walked as the trace orders them */
    int token = 0;
    for (int rank = 0; rank < 2; rank++)
        for (int si = 0; si < 2; si++)
            for (int pass = 0; pass < training_steps[si].passes; pass++)
                for (int b = 0; b < 2; b++)
                    for (int pos = 0; pos < training_steps[si].tokens / 2; pos++, token++)
                        for (int l = 0; l < 3; l++) {
                            int32_t recorded[2];
                            top_ids(row_seed(rank, si, pass, l, pos * 2 + b), 8, 2, 1, recorded);
                            const int32_t *got = ids + (token * 3 + l) * 2;
                            int same = (got[0] == recorded[0] && got[1] == recorded[1]) ||
                                       (got[0] == recorded[1] && got[1] == recorded[0]);
                            ck_assert_msg(same, "token %d layer %d: topk chose {%d, %d}, recorded {%d, %d}", token, l,
                                          got[0], got[1], recorded[0], recorded[1]);
                        }
    ck_assert_int_eq(token, 32);
    free(dec);
    free(out);
    free(dir);
}
END_TEST

/* The same run without --moe-routing-trace-capture-logits: top-k only, rows
 * left in id order and said so; the experts must then be given. */
START_TEST(test_dump_without_sidecars_is_top_k_only)
{
    dump_spec d = training_dump();
    d.logits = 0;
    char *dir = write_dump("nologits", &d);
    char *out = strdup(rs_test_path("nologits.h5"));
    char args[4096], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "import megatron %s -o %s --micro-batch 2", dir, out);
    ck_assert_int_eq(rs_test_run_cli(args, &o, &e), 1);
    ck_assert_msg(strstr(e, "the records have no logits (logits_rank*.bin), so the number of experts is unknown: "
                            "give --experts E"), "%s", e);
    ck_assert(!rs_test_file_exists(out));
    free(o);
    free(e);
    free(out);

    out = import_cli(dir, "nologits.h5", "--micro-batch 2 --experts 8");
    loaded t = load(out);
    assert_trace_is_dump(&t, &d, 2, 0);
    assert_note(&t, "without logits that order is kept: the first slot is not the top-1 expert");
    unload(&t);
    free(out);
    free(dir);
}
END_TEST

START_TEST(test_inference_sink_dump)
{
    dump_spec d = sink_dump();
    char *dir = write_dump("sink", &d);
    char *out = import_cli(dir, "sink.h5", "--experts 16");
    loaded t = load(out);
    assert_trace_is_dump(&t, &d, 1, 0);
    const int32_t one_based[] = {1, 3, 4};
    for (int l = 0; l < 3; l++)
        ck_assert_int_eq(t.layer_index[l], one_based[l]);
    assert_note(&t, "layer numbers read as the inference sink's (RouterReplay layer_number: 1-based in the model), "
                    "layer_index = layer - 1");
    assert_note(&t, "rows are kept in their recorded order");
    assert_note(&t, "3 (token, layer) pairs have no record");
    unload(&t);
    free(out);

    out = import_cli(dir, "sink-base0.h5", "--experts 16 --layer-base 0");
    t = load(out);
    for (int l = 0; l < 3; l++)
        ck_assert_int_eq(t.layer_index[l], one_based[l] + 1);
    assert_note(&t, "as --layer-base gives");
    unload(&t);
    free(out);
    free(dir);

    /* the same rows in ascending id order can only come from the hook's routing map: 0-based */
    d.score_order = 0;
    dir = write_dump("sink-ascending", &d);
    out = import_cli(dir, "sink-ascending.h5", "--experts 16");
    t = load(out);
    assert_trace_is_dump(&t, &d, 1, 0);
    for (int l = 0; l < 3; l++)
        ck_assert_int_eq(t.layer_index[l], one_based[l] + 1);
    assert_note(&t, "every row is in ascending id order, as the hook's routing map gives them");
    unload(&t);
    free(out);
    free(dir);
}
END_TEST

/* Records far longer than the readers' buffers, sequences longer than a
 * block of tokens (about 1000 here: 4 MiB over 4 layers x 256 logits). */
static const router big_routers[] = {{"decoder", -1, 0}, {"decoder", -1, 1}, {"decoder", -1, 2}, {"decoder", -1, 3}};
static const step_spec big_steps[] = {{0, 1, 3000}};

START_TEST(test_long_records_stream)
{
    dump_spec d = {.ranks = 1, .E = 256, .K = 6, .routers = big_routers, .num_routers = 4, .steps = big_steps,
                   .num_steps = 1, .logits = 1, .skip_step = -1, .skip_router = -1};
    char *dir = write_dump("long", &d);
    char *out = import_cli(dir, "long.h5", "--micro-batch 2");
    loaded t = load(out);
    assert_trace_is_dump(&t, &d, 2, 1);
    unload(&t);
    free(out);
    free(dir);
}
END_TEST

/* No file of the scratch directory starts with prefix (a trace or its temporary file). */
static void assert_no_file_like(const char *prefix)
{
    DIR *dir = opendir(rs_test_dir());
    ck_assert_ptr_nonnull(dir);
    for (struct dirent *e; (e = readdir(dir));)
        ck_assert_msg(strncmp(e->d_name, prefix, strlen(prefix)) != 0, "%s left behind", e->d_name);
    closedir(dir);
}

static void truncate_file(const char *dir, const char *name, long cut)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(truncate(path, sb.st_size - cut), 0);
}

static void rename_in(const char *dir, const char *from, const char *to)
{
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/%s", dir, from);
    snprintf(b, sizeof b, "%s/%s", dir, to);
    ck_assert_int_eq(rename(a, b), 0);
}

static void gzip_in_place(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = rs_test_read_file(path);
    ck_assert_ptr_nonnull(text);
    gzFile gz = gzopen(path, "wb");
    ck_assert_ptr_nonnull(gz);
    ck_assert_int_eq(gzputs(gz, text), (int)strlen(text));
    gzclose(gz);
    free(text);
}

enum edit { EDIT_NONE, EDIT_CUT_RANK0, EDIT_DROP_LINE5, EDIT_RENAME_RANK1, EDIT_CUT_SIDECAR1, EDIT_GZIP_RANK0, EDIT_NOT_DIR };

/* Removes line 5 of rank 0: decoder layer 2 of step 5's second micro-batch. */
static void drop_line5(const char *dir)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/router_trace_rank0.jsonl", dir);
    char *text = rs_test_read_file(path);
    ck_assert_ptr_nonnull(text);
    char *fifth = text;
    for (int line = 0; line < 4; line++)
        fifth = strchr(fifth, '\n') + 1;
    char *after = strchr(fifth, '\n') + 1;
    memmove(fifth, after, strlen(after) + 1);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    free(text);
}

START_TEST(test_malformed_dumps_fail_in_one_line)
{
    static const struct {
        enum bad_kind bad;
        int bad_record;
        enum edit edit;
        const char *options, *message;
    } cases[] = {
        /* the last record of rank 0 cut short: the writer was interrupted */
        {BAD_NONE, 0, EDIT_CUT_RANK0, "--micro-batch 2",
         "router_trace_rank0.jsonl: line 9: the record is truncated: the file ends before its closing '}'"},
        {BAD_NONE, 0, EDIT_RENAME_RANK1, "",
         "router_trace_rank1.jsonl is missing: the directory has 2 rank files up to router_trace_rank2.jsonl"},
        {BAD_NONE, 0, EDIT_CUT_SIDECAR1, "",
         "router_trace_rank1.jsonl: line 9: logit_offset 704 + logit_bytes 64 pass the end of logits_rank1.bin "
         "(766 bytes)"},
        {BAD_ID, 4, EDIT_NONE, "",
         "router_trace_rank1.jsonl: line 5: top_indices[2][1]: expert 8 is outside [0, 8) (the logits' num_experts)"},
        {BAD_ID, 4, EDIT_NONE, "--experts 8",
         "router_trace_rank1.jsonl: line 5: top_indices[2][1]: expert 8 is outside [0, 8) (--experts)"},
        {BAD_DUPLICATE, 1, EDIT_NONE, "",
         "router_trace_rank1.jsonl: line 2: top_indices[2][1]: expert"},
        {BAD_NO_NUM_TOKENS, 3, EDIT_NONE, "",
         "router_trace_rank1.jsonl: line 4: num_tokens: missing key (RouterTracer writes it in every record)"},
        {BAD_ROWS, 0, EDIT_NONE, "", "router_trace_rank1.jsonl: line 1: top_indices: 5 rows, but num_tokens is 6"},
        {BAD_RANK, 2, EDIT_NONE, "", "router_trace_rank1.jsonl: line 3: rank: 2, but the file is rank 1's"},
        {BAD_NAN, 6, EDIT_NONE, "",
         "logits_rank1.bin (line 7 of router_trace_rank1.jsonl): token 1 of the record (decoder layer 0), expert 3: "
         "the logit is NaN"},
        {BAD_NONE, 0, EDIT_NONE, "--micro-batch 4",
         "router_trace_rank0.jsonl: line 1: num_tokens: 6 is not a multiple of --micro-batch 4"},
        {BAD_NONE, 0, EDIT_NONE, "--experts 16", "logit_shape: 8 experts, but --experts is 16"},
        /* decoder layer 2 logged in one micro-batch of step 5 only */
        {BAD_NONE, 0, EDIT_DROP_LINE5, "",
         "router_trace_rank0.jsonl: step 5 (lines 1-5): decoder layer 2 has 1 record but decoder layer 0 has 2: each "
         "record of a layer in a step is one forward pass"},
        {BAD_NONE, 0, EDIT_GZIP_RANK0, "", "router_trace_rank0.jsonl: gzip-compressed"},
        {BAD_NONE, 0, EDIT_NOT_DIR, "", "router_trace_rank0.jsonl: not a directory, expected the RouterTracer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dump_spec d = training_dump();
        d.bad = cases[i].bad;
        d.bad_record = cases[i].bad_record;
        char name[64];
        snprintf(name, sizeof name, "malformed%zu", i);
        char *dir = write_dump(name, &d);
        const char *message = cases[i].message;
        if (cases[i].edit == EDIT_DROP_LINE5)
            drop_line5(dir);
        if (cases[i].edit == EDIT_CUT_RANK0)
            truncate_file(dir, "router_trace_rank0.jsonl", 30);
        if (cases[i].edit == EDIT_RENAME_RANK1)
            rename_in(dir, "router_trace_rank1.jsonl", "router_trace_rank2.jsonl");
        if (cases[i].edit == EDIT_CUT_SIDECAR1)
            truncate_file(dir, "logits_rank1.bin", 2);
        if (cases[i].edit == EDIT_GZIP_RANK0)
            gzip_in_place(dir, "router_trace_rank0.jsonl");
        char input[1200];
        snprintf(input, sizeof input, "%s%s", dir, cases[i].edit == EDIT_NOT_DIR ? "/router_trace_rank0.jsonl" : "");

        char args[4096], *o = NULL, *e = NULL;
        snprintf(args, sizeof args, "import megatron %s -o %s %s", input, rs_test_path("bad.h5"), cases[i].options);
        ck_assert_msg(rs_test_run_cli(args, &o, &e) == 1, "case %zu: not refused: %s", i, e);
        ck_assert_msg(strstr(e, "routesim: error: ") == e && strchr(e, '\n') == e + strlen(e) - 1,
                      "case %zu: not one error line: %s", i, e);
        ck_assert_msg(strstr(e, message), "case %zu: got %s wanted ...%s...", i, e, message);
        assert_no_file_like("bad");
        free(o);
        free(e);
        free(dir);
    }
}
END_TEST

START_TEST(test_help_names_the_producer)
{
    char *o = NULL, *e = NULL;
    ck_assert_int_eq(rs_test_run_cli("import megatron --help", &o, &e), 0);
    ck_assert_msg(strstr(o, "usage: routesim import megatron DIR -o TRACE.h5 [--micro-batch N]"), "%s", o);
    ck_assert_msg(strstr(o, "--moe-routing-trace-path"), "%s", o);
    free(o);
    free(e);
    ck_assert_int_eq(rs_test_run_cli("import megatron a b -o x.h5", &o, &e), 2);
    ck_assert_msg(strstr(e, "expected one directory"), "%s", e);
    free(o);
    free(e);
}
END_TEST

Suite *import_megatron_suite(void)
{
    Suite *s = suite_create("import_megatron");
    TCase *tc = tcase_create("import_megatron");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_training_dump_token_by_token);
    tcase_add_test(tc, test_logits_reroute_to_the_recorded_experts);
    tcase_add_test(tc, test_dump_without_sidecars_is_top_k_only);
    tcase_add_test(tc, test_inference_sink_dump);
    tcase_add_test(tc, test_long_records_stream);
    tcase_add_test(tc, test_malformed_dumps_fail_in_one_line);
    tcase_add_test(tc, test_help_names_the_producer);
    suite_add_tcase(s, tc);
    return s;
}
