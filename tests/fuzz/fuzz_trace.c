/* Fuzz target: trace validation (rs_trace_open) and reading, through a
 * structured harness. The input does not hold an HDF5 file (fuzzing HDF5's
 * own parser is not the point): it is decoded into a small valid trace
 * (unit, L, E, K, sequences, which datasets, logits dtype and layout) and
 * then edits of it: root and dataset attributes set to other types, values
 * or sizes, or removed; datasets removed or recreated with other dtypes,
 * ranks, shapes (up to 2^20 rows, unwritten), layouts and fill values;
 * single values (offsets, expert ids, logits, outcomes) overwritten. The
 * trace is written with the HDF5 API into the scratch directory, opened,
 * and when it opens its first and last tokens are read through every
 * reader, the direct reads compared with HDF5's, and a router runs on it.
 *
 * What must hold: a file the reader refuses gets one line; a file it
 * accepts reads without error and routes without a crash. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/experiment/route.h"
#include "sim/results/results.h"
#include "tests/fuzz/harness.h"
#include "workloads/trace/h5util.h"
#include "workloads/trace/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_ELEMENTS = 1 << 16, MAX_EDITS = 24 };

/* ---- the trace as the harness describes it ---- */

enum dtype { D_I8, D_U8, D_I16, D_U16, D_I32, D_I64, D_U64, D_F16, D_F32, D_F64, D_STR, NUM_DTYPES };
enum layout { L_CONTIGUOUS, L_CHUNKED, L_GZIP, L_COMPACT, NUM_LAYOUTS };

enum { DS_LOGITS, DS_TOPK_IDS, DS_TOPK_WEIGHTS, DS_OFFSETS, DS_DOMAIN, DS_TOKEN_IDS, DS_PHASE, DS_BIAS,
       DS_QUALITY, DS_COST, NUM_DATASETS };
static const char *const dataset_paths[NUM_DATASETS] = {
    "/router/logits", "/router/topk_ids", "/router/topk_weights", "/sequences/offsets", "/sequences/domain",
    "/tokens/ids", "/tokens/phase", "/router/bias", "/outcome/quality", "/outcome/cost",
};

enum { MAX_POKES = 8 };
typedef struct dataset {
    int present;
    enum dtype dtype;
    int rank;
    hsize_t dims[3];
    enum layout layout;
    hsize_t chunk[3];
    int unwritten;   /* declared but never written: reads give the fill value */
    double fill;
    int num_pokes;
    uint64_t poke_at[MAX_POKES];
    double poke_value[MAX_POKES];
} dataset;

enum attr_kind { A_ABSENT, A_INT, A_FLOAT, A_STR, A_VSTR, A_INTS, A_STRS, A_VSTRS, NUM_ATTR_KINDS };
typedef struct attr {
    char name[24];
    int object; /* -1 = root, else a dataset index */
    enum attr_kind kind;
    enum dtype int_type;
    int64_t i;
    double f;
    char s[40];
    int n; /* array length */
} attr;

enum { MAX_ATTRS = 24 };
typedef struct trace_desc {
    int query, L, E, K, S, T;
    int64_t lengths[8];
    dataset ds[NUM_DATASETS];
    attr attrs[MAX_ATTRS];
    int num_attrs;
    int route; /* which router to run when the trace opens */
} trace_desc;

static hid_t file_type(enum dtype d)
{
    switch (d) {
    case D_I8: return H5Tcopy(H5T_STD_I8LE);
    case D_U8: return H5Tcopy(H5T_STD_U8LE);
    case D_I16: return H5Tcopy(H5T_STD_I16LE);
    case D_U16: return H5Tcopy(H5T_STD_U16LE);
    case D_I32: return H5Tcopy(H5T_STD_I32LE);
    case D_I64: return H5Tcopy(H5T_STD_I64LE);
    case D_U64: return H5Tcopy(H5T_STD_U64LE);
    case D_F16: return rs_h5_float16_type();
    case D_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case D_F64: return H5Tcopy(H5T_IEEE_F64LE);
    case D_STR: {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, 8);
        return t;
    }
    case NUM_DTYPES: break;
    }
    return H5Tcopy(H5T_STD_I32LE);
}

static attr *add_attr(trace_desc *d, int object, const char *name)
{
    for (int i = 0; i < d->num_attrs; i++)
        if (d->attrs[i].object == object && strcmp(d->attrs[i].name, name) == 0)
            return &d->attrs[i];
    if (d->num_attrs == MAX_ATTRS)
        return NULL;
    attr *a = &d->attrs[d->num_attrs++];
    memset(a, 0, sizeof *a);
    a->object = object;
    snprintf(a->name, sizeof a->name, "%s", name);
    return a;
}

static void set_int_attr(trace_desc *d, const char *name, int64_t v)
{
    attr *a = add_attr(d, -1, name);
    a->kind = A_INT;
    a->int_type = D_I64;
    a->i = v;
}

static void set_str_attr(trace_desc *d, int object, const char *name, const char *v)
{
    attr *a = add_attr(d, object, name);
    a->kind = A_VSTR;
    snprintf(a->s, sizeof a->s, "%s", v);
}

/* The valid trace the first bytes choose. */
static void decode_base(rs_fuzz_bytes *b, trace_desc *d)
{
    memset(d, 0, sizeof *d);
    uint8_t flags = rs_fuzz_u8(b), form = rs_fuzz_u8(b);
    d->query = flags & 1;
    int L = (int)rs_fuzz_range(b, 1, 4);
    d->L = d->query ? 1 : L;
    d->E = (int)rs_fuzz_range(b, 1, 8);
    d->K = (int)rs_fuzz_range(b, 1, d->E);
    d->S = (int)rs_fuzz_range(b, 1, 4);
    for (int s = 0; s < d->S; s++) {
        d->lengths[s] = rs_fuzz_range(b, 0, 8);
        d->T += (int)d->lengths[s];
    }
    d->route = rs_fuzz_u8(b);
    int logits = d->query ? (flags & 2) != 0 : (flags & 2) || !(flags & 4);
    enum layout layout = (enum layout)(form % 3);
    hsize_t chunk_rows = 1 + (form >> 2) % 8;
    static const enum dtype logit_types[] = {D_F32, D_F16, D_U16};
    d->ds[DS_LOGITS] = (dataset){.present = logits, .dtype = logit_types[(form >> 5) % 3], .rank = 3,
                                 .dims = {(hsize_t)d->T, (hsize_t)d->L, (hsize_t)d->E}};
    d->ds[DS_TOPK_IDS] = (dataset){.present = !d->query && (flags & 4), .dtype = D_I32, .rank = 3,
                                   .dims = {(hsize_t)d->T, (hsize_t)d->L, (hsize_t)d->K}};
    d->ds[DS_TOPK_WEIGHTS] = (dataset){.present = !d->query && (flags & 4) && (flags & 8), .dtype = D_F32, .rank = 3,
                                       .dims = {(hsize_t)d->T, (hsize_t)d->L, (hsize_t)d->K}};
    d->ds[DS_OFFSETS] = (dataset){.present = 1, .dtype = D_I64, .rank = 1, .dims = {(hsize_t)d->S + 1}};
    d->ds[DS_DOMAIN] = (dataset){.present = (flags & 16) != 0, .dtype = D_I32, .rank = 1, .dims = {(hsize_t)d->S}};
    d->ds[DS_TOKEN_IDS] = (dataset){.present = !d->query && (flags & 32), .dtype = D_I32, .rank = 1,
                                    .dims = {(hsize_t)d->T}};
    d->ds[DS_PHASE] = (dataset){.present = !d->query && (flags & 64), .dtype = D_U8, .rank = 1,
                                .dims = {(hsize_t)d->T}};
    d->ds[DS_BIAS] = (dataset){.present = !d->query && (flags & 128), .dtype = D_F32, .rank = 2,
                               .dims = {(hsize_t)d->L, (hsize_t)d->E}};
    d->ds[DS_QUALITY] = (dataset){.present = d->query, .dtype = D_F32, .rank = 2,
                                  .dims = {(hsize_t)d->T, (hsize_t)d->E}};
    d->ds[DS_COST] = (dataset){.present = d->query && (flags & 8), .dtype = D_F32, .rank = (flags & 128) ? 1 : 2,
                               .dims = {(flags & 128) ? (hsize_t)d->E : (hsize_t)d->T, (hsize_t)d->E}};
    for (int i = 0; i < NUM_DATASETS; i++) {
        d->ds[i].layout = layout;
        d->ds[i].chunk[0] = chunk_rows;
        d->ds[i].chunk[1] = d->ds[i].chunk[2] = 64;
    }

    set_str_attr(d, -1, "format", "routesim-trace");
    set_int_attr(d, "format_version", 1);
    set_int_attr(d, "num_layers", d->L);
    set_int_attr(d, "num_experts", d->E);
    set_str_attr(d, -1, "unit", d->query ? "query" : "token");
    set_int_attr(d, "top_k", d->K);
    set_str_attr(d, -1, "scoring", "softmax");
    set_str_attr(d, -1, "source", "fuzz");
    if (d->query) {
        attr *a = add_attr(d, -1, "expert_names");
        a->kind = A_VSTRS;
        a->n = d->E;
        snprintf(a->s, sizeof a->s, "model");
    }
    if (d->ds[DS_LOGITS].dtype == D_U16)
        set_str_attr(d, DS_LOGITS, "encoding", "bfloat16");
    if (d->ds[DS_DOMAIN].present) {
        attr *a = add_attr(d, DS_DOMAIN, "names");
        a->kind = A_VSTRS;
        a->n = 3;
        snprintf(a->s, sizeof a->s, "domain");
    }
}

/* A dimension: mostly small, sometimes one of the trace's sizes or large. */
static hsize_t decode_dim(rs_fuzz_bytes *b, const trace_desc *d)
{
    uint8_t c = rs_fuzz_u8(b);
    if (c < 192)
        return c % 17;
    const hsize_t special[] = {(hsize_t)d->T, (hsize_t)d->T + 1, (hsize_t)d->S + 1, (hsize_t)d->S, (hsize_t)d->L,
                               (hsize_t)d->E, (hsize_t)d->K, 1024, 1025, 1 << 16, (1 << 16) + 1, 1 << 20,
                               100000, 1000000, 16384, 16385};
    return special[c % (sizeof special / sizeof special[0])];
}

/* A value for a poke or a fill: special values first, then any double. */
static double decode_value(rs_fuzz_bytes *b)
{
    uint8_t c = rs_fuzz_u8(b);
    const double special[] = {NAN, INFINITY, -INFINITY, -1, 0, 1, 0.5, -0.5, 2, 7, 8, 9, 1e30, -1e30,
                              2147483647.0, 2147483648.0, -2147483649.0, 9.3e18, -9.3e18, 65504, 65520, 1e-40};
    if (c < sizeof special / sizeof special[0])
        return special[c];
    if (c < 200)
        return (double)(int8_t)rs_fuzz_u8(b);
    uint64_t bits = rs_fuzz_u64(b);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void decode_attr_edit(rs_fuzz_bytes *b, trace_desc *d)
{
    static const char *const names[] = {"format", "format_version", "num_layers", "num_experts", "unit",
                                        "model", "scoring", "source", "top_k", "norm_topk", "expert_names",
                                        "layer_index", "n_group", "topk_group", "routed_scaling_factor",
                                        "encoding", "names"};
    const int num_names = (int)(sizeof names / sizeof names[0]);
    uint8_t target = rs_fuzz_u8(b);
    int object = target % 4 == 0 ? (int)(rs_fuzz_u8(b) % NUM_DATASETS) : -1;
    char name[24];
    uint8_t which = rs_fuzz_u8(b);
    if (which < 240)
        snprintf(name, sizeof name, "%s", names[which % num_names]);
    else
        rs_fuzz_text(b, name, 16);
    if (!name[0])
        return;
    attr *a = add_attr(d, object, name);
    if (!a)
        return;
    a->kind = (enum attr_kind)(rs_fuzz_u8(b) % NUM_ATTR_KINDS);
    static const enum dtype int_types[] = {D_I8, D_U8, D_I16, D_U16, D_I32, D_I64, D_U64};
    a->int_type = int_types[rs_fuzz_u8(b) % 7];
    uint8_t how = rs_fuzz_u8(b);
    const int64_t special[] = {0, 1, 2, -1, (int64_t)d->L, (int64_t)d->E, (int64_t)d->E + 1, (int64_t)d->K,
                               100000, 100001, 1000000, 1000001, INT32_MAX, (int64_t)INT32_MAX + 1, INT64_MAX,
                               INT64_MIN};
    a->i = how < 128 ? special[how % 16] : (int64_t)rs_fuzz_u64(b);
    a->f = decode_value(b);
    rs_fuzz_text(b, a->s, sizeof a->s - 1);
    if (how & 1) {
        static const char *const words[] = {"routesim-trace", "token", "query", "softmax", "sigmoid",
                                            "sqrt_softplus", "bfloat16", "", "routesim-decisions"};
        snprintf(a->s, sizeof a->s, "%s", words[(how >> 1) % 9]);
    }
    a->n = (int)decode_dim(b, d);
    if (a->n > 1024)
        a->n = 1024 + a->n % 2; /* attributes live in the object header: keep them small */
}

static void decode_dataset_edit(rs_fuzz_bytes *b, trace_desc *d)
{
    dataset *x = &d->ds[rs_fuzz_u8(b) % NUM_DATASETS];
    switch (rs_fuzz_u8(b) % 8) {
    case 0: x->present = !x->present; break;
    case 1: x->dtype = (enum dtype)(rs_fuzz_u8(b) % NUM_DTYPES); break;
    case 2:
        x->rank = (int)(rs_fuzz_u8(b) % 4);
        for (int i = 0; i < 3; i++)
            x->dims[i] = decode_dim(b, d);
        break;
    case 3: x->dims[rs_fuzz_u8(b) % 3] = decode_dim(b, d); break;
    case 4:
        x->layout = (enum layout)(rs_fuzz_u8(b) % NUM_LAYOUTS);
        for (int i = 0; i < 3; i++)
            x->chunk[i] = 1 + rs_fuzz_u8(b) % 16;
        break;
    case 5:
        x->unwritten = 1;
        x->fill = decode_value(b);
        break;
    default:
        if (x->num_pokes < MAX_POKES) {
            x->poke_at[x->num_pokes] = rs_fuzz_u32(b);
            x->poke_value[x->num_pokes++] = decode_value(b);
        }
        break;
    }
}

/* ---- writing it ---- */

static uint16_t to_bfloat16(double v)
{
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return isnan(f) ? 0x7fc0 : (uint16_t)(bits >> 16);
}

/* The valid value of element i of dataset k. */
static double valid_value(const trace_desc *d, int k, uint64_t i)
{
    switch (k) {
    case DS_LOGITS: return sin((double)i * 0.7) * 3;
    case DS_TOPK_IDS: {
        uint64_t j = i % (uint64_t)d->K, row = i / (uint64_t)d->K;
        return (double)((row + j) % (uint64_t)d->E);
    }
    case DS_TOPK_WEIGHTS: return 1.0 / d->K;
    case DS_OFFSETS: {
        int64_t at = 0;
        for (uint64_t s = 0; s < i && s < (uint64_t)d->S; s++)
            at += d->lengths[s];
        return (double)at;
    }
    case DS_DOMAIN: return (double)(i % 3);
    case DS_TOKEN_IDS: return (double)(i * 7 % 1000);
    case DS_PHASE: return (double)(i % 2);
    case DS_BIAS: return 0.1 * (double)(i % 8);
    case DS_QUALITY: return (double)(i % 2);
    case DS_COST: return (double)(i % 8 + 1);
    }
    return 0;
}

static void write_dataset(hid_t file, const trace_desc *d, int k)
{
    const dataset *x = &d->ds[k];
    if (!x->present)
        return;
    hsize_t dims[3] = {x->dims[0], x->dims[1], x->dims[2]}, maxdims[3], chunk[3];
    uint64_t count = 1;
    for (int i = 0; i < x->rank; i++) {
        count *= dims[i];
        maxdims[i] = x->layout == L_CHUNKED || x->layout == L_GZIP ? H5S_UNLIMITED : dims[i];
        chunk[i] = x->chunk[i];
    }
    int unwritten = x->unwritten || count > MAX_ELEMENTS || x->dtype == D_STR;
    hid_t space = x->rank == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(x->rank, dims, maxdims);
    hid_t type = file_type(x->dtype);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (x->rank > 0 && (x->layout == L_CHUNKED || x->layout == L_GZIP)) {
        H5Pset_chunk(dcpl, x->rank, chunk);
        if (x->layout == L_GZIP)
            H5Pset_deflate(dcpl, 1);
    } else if (x->layout == L_COMPACT) {
        H5Pset_layout(dcpl, H5D_COMPACT);
    }
    if (x->unwritten && x->dtype != D_STR) {
        double fill = x->fill;
        H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &fill);
    }
    H5Pset_alloc_time(dcpl, x->layout == L_COMPACT ? H5D_ALLOC_TIME_EARLY : H5D_ALLOC_TIME_LATE);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_IFSET);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dset = H5Dcreate2(file, dataset_paths[k], type, space, lcpl, dcpl, H5P_DEFAULT);
    if (dset >= 0 && !unwritten && count > 0) {
        int bf16 = k == DS_LOGITS && x->dtype == D_U16;
        double *values = malloc(count * sizeof *values);
        uint16_t *words = bf16 ? malloc(count * sizeof *words) : NULL;
        if (!values || (bf16 && !words))
            rs_fuzz_fail("out of memory");
        for (uint64_t i = 0; i < count; i++)
            values[i] = valid_value(d, k, i);
        for (int p = 0; p < x->num_pokes; p++)
            values[x->poke_at[p] % count] = x->poke_value[p];
        if (bf16) {
            for (uint64_t i = 0; i < count; i++)
                words[i] = to_bfloat16(values[i]);
            H5Dwrite(dset, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, words);
        } else {
            /* Values out of an integer type's range are clipped by HDF5's conversion. */
            H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
        }
        free(values);
        free(words);
    }
    if (dset >= 0)
        H5Dclose(dset);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Tclose(type);
    H5Sclose(space);
}

static void write_attr(hid_t file, const trace_desc *d, const attr *a)
{
    if (a->kind == A_ABSENT)
        return;
    hid_t obj = a->object < 0 ? H5Oopen(file, "/", H5P_DEFAULT)
                              : (d->ds[a->object].present ? H5Oopen(file, dataset_paths[a->object], H5P_DEFAULT)
                                                          : -1);
    if (obj < 0)
        return;
    if (H5Aexists(obj, a->name) > 0)
        H5Adelete(obj, a->name);
    hsize_t n = (hsize_t)a->n;
    int array = a->kind == A_INTS || a->kind == A_STRS || a->kind == A_VSTRS;
    hid_t space = array ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    hid_t type = -1;
    hid_t attr_id = -1;
    if (a->kind == A_INT || a->kind == A_INTS) {
        type = file_type(a->int_type);
        attr_id = H5Acreate2(obj, a->name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        int64_t *v = malloc((n ? n : 1) * sizeof *v);
        for (hsize_t i = 0; i < (array ? n : 1); i++)
            v[i] = (int64_t)((uint64_t)a->i + i); /* wraps, as the bytes chose */
        if (attr_id >= 0)
            H5Awrite(attr_id, H5T_NATIVE_INT64, v);
        free(v);
    } else if (a->kind == A_FLOAT) {
        type = H5Tcopy(H5T_IEEE_F64LE);
        attr_id = H5Acreate2(obj, a->name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (attr_id >= 0)
            H5Awrite(attr_id, H5T_NATIVE_DOUBLE, &a->f);
    } else if (a->kind == A_STR) {
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, strlen(a->s) + 1);
        attr_id = H5Acreate2(obj, a->name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (attr_id >= 0)
            H5Awrite(attr_id, type, a->s);
    } else if (a->kind == A_VSTR) {
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, H5T_VARIABLE);
        attr_id = H5Acreate2(obj, a->name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        const char *s = a->s;
        if (attr_id >= 0)
            H5Awrite(attr_id, type, &s);
    } else {
        /* n names "TEXT0", "TEXT1"... fixed-width or variable-length */
        size_t width = strlen(a->s) + 8;
        char *block = calloc((n ? n : 1), width);
        char **ptrs = calloc((n ? n : 1), sizeof *ptrs);
        for (hsize_t i = 0; i < n; i++) {
            snprintf(block + i * width, width, "%s%llu", a->s, (unsigned long long)i);
            ptrs[i] = block + i * width;
        }
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, a->kind == A_STRS ? width : H5T_VARIABLE);
        attr_id = H5Acreate2(obj, a->name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (attr_id >= 0)
            H5Awrite(attr_id, type, a->kind == A_STRS ? (const void *)block : (const void *)ptrs);
        free(block);
        free(ptrs);
    }
    if (attr_id >= 0)
        H5Aclose(attr_id);
    H5Tclose(type);
    H5Sclose(space);
    H5Oclose(obj);
}

/* An upper bound of the bytes the datasets take (8 per element, whole
 * chunks), so that
 * the harness never writes past the file-size cap: HDF5 keeps a file whose
 * close failed on a write error and crashes closing it again at exit. */
static double dataset_bytes(const trace_desc *d)
{
    double bytes = 0;
    for (int k = 0; k < NUM_DATASETS; k++) {
        const dataset *ds = &d->ds[k];
        if (!ds->present)
            continue;
        const int chunked = ds->layout == L_CHUNKED || ds->layout == L_GZIP;
        double n = 1;
        for (int r = 0; r < ds->rank; r++) { /* whole chunks are written */
            double rows = (double)ds->dims[r], c = chunked && ds->chunk[r] > 0 ? (double)ds->chunk[r] : 1;
            n *= ceil(rows / c) * c;
        }
        bytes += 8 * n;
    }
    return bytes;
}

static int write_trace(const char *path, const trace_desc *d)
{
    if (dataset_bytes(d) > (double)(32 << 20))
        return -1;
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0)
        return -1;
    for (int k = 0; k < NUM_DATASETS; k++)
        write_dataset(file, d, k);
    for (int i = 0; i < d->num_attrs; i++)
        write_attr(file, d, &d->attrs[i]);
    return H5Fclose(file) < 0 ? -1 : 0;
}

/* ---- reading it back ---- */

static void check_error(const rs_error *err, const char *what)
{
    if (!err->msg[0])
        rs_fuzz_fail("%s failed without a message", what);
    if (strchr(err->msg, '\n'))
        rs_fuzz_fail("%s failed with a message of several lines: %s", what, err->msg);
}

/* Tokens [t0, t0 + n) through every reader the trace offers. */
static void read_tokens(rs_trace *tr, int64_t t0, int n)
{
    const rs_trace_info *info = rs_trace_get_info(tr);
    const size_t L = (size_t)info->num_layers, E = (size_t)info->num_experts;
    rs_error err = {{0}};
    if (info->has_logits && (size_t)n * L * E <= MAX_ELEMENTS) {
        size_t count = (size_t)n * L * E, elem = rs_trace_logit_size(tr);
        float *out = malloc(count * sizeof *out);
        void *stored = malloc(count * elem), *direct = malloc(count * elem);
        if (!out || !stored || !direct)
            rs_fuzz_fail("out of memory");
        if (rs_trace_read_logits(tr, t0, n, out, stored, &err) != 0)
            rs_fuzz_fail("logits of an opened trace do not read: %s", err.msg);
        if (rs_trace_read_logits_stored(tr, t0, n, stored, &err) != 0)
            rs_fuzz_fail("stored logits of an opened trace do not read: %s", err.msg);
        rs_extent ext[64];
        int num = rs_trace_logit_extents(tr, t0, n, ext, 64, &err);
        if (num < 0)
            rs_fuzz_fail("logit extents of an opened trace fail: %s", err.msg);
        if (num > 0) {
            if (rs_trace_read_logit_rows(tr, ext, num, t0, n, direct, &err) != 0)
                rs_fuzz_fail("direct logit reads of an opened trace fail: %s", err.msg);
            if (memcmp(direct, stored, count * elem) != 0)
                rs_fuzz_fail("direct logit reads differ from HDF5's at tokens [%lld, %lld)", (long long)t0,
                             (long long)(t0 + n));
        }
        free(out);
        free(stored);
        free(direct);
    }
    if (info->recorded_k > 0 && (size_t)n * L * (size_t)info->recorded_k <= MAX_ELEMENTS) {
        size_t count = (size_t)n * L * (size_t)info->recorded_k;
        int32_t *ids = malloc(count * sizeof *ids);
        float *w = malloc(count * sizeof *w);
        if (!ids || !w)
            rs_fuzz_fail("out of memory");
        /* Expert ids are checked as they are read (validating them on open
         * would read the whole dataset): that failure is a refusal. */
        if (rs_trace_read_topk(tr, t0, n, ids, info->has_topk_weights ? w : NULL, &err) != 0) {
            check_error(&err, "rs_trace_read_topk");
            if (!strstr(err.msg, "is outside [-1, "))
                rs_fuzz_fail("top-k of an opened trace does not read: %s", err.msg);
            rs_fuzz_note("top-k refused", err.msg);
        }
        free(ids);
        free(w);
    }
    int32_t ids[64];
    uint8_t phase[64];
    if (info->has_token_ids && rs_trace_read_token_ids(tr, t0, n, ids, &err) != 0)
        rs_fuzz_fail("token ids of an opened trace do not read: %s", err.msg);
    if (info->has_phase && rs_trace_read_phase(tr, t0, n, phase, &err) != 0)
        rs_fuzz_fail("phases of an opened trace do not read: %s", err.msg);
    if ((info->has_quality || info->has_cost) && (size_t)n * E <= MAX_ELEMENTS) {
        float *q = malloc((size_t)n * E * sizeof *q), *c = malloc((size_t)n * E * sizeof *c);
        if (!q || !c)
            rs_fuzz_fail("out of memory");
        if (rs_trace_read_outcome(tr, t0, n, info->has_quality ? q : NULL, info->has_cost ? c : NULL, &err) != 0)
            rs_fuzz_fail("outcomes of an opened trace do not read: %s", err.msg);
        for (size_t i = 0; info->has_cost && i < (size_t)n * E; i++)
            if (!(c[i] >= 0) || isinf(c[i]))
                rs_fuzz_fail("an opened trace has cost %g (validated as finite and >= 0)", (double)c[i]);
        free(q);
        free(c);
    }
}

static void read_trace(rs_trace *tr)
{
    const rs_trace_info *info = rs_trace_get_info(tr);
    rs_error err = {{0}};
    const int64_t T = info->num_tokens, S = info->num_sequences;
    if (T < 0 || S < 0)
        rs_fuzz_fail("an opened trace has T = %lld, S = %lld", (long long)T, (long long)S);
    if (S <= 4096) {
        int64_t *offsets = malloc((size_t)(S + 1) * sizeof *offsets);
        if (!offsets || rs_trace_read_offsets(tr, 0, S + 1, offsets, &err) != 0)
            rs_fuzz_fail("offsets of an opened trace do not read: %s", err.msg);
        for (int64_t s = 0; s < S; s++)
            if (offsets[s] > offsets[s + 1])
                rs_fuzz_fail("an opened trace has decreasing offsets at %lld", (long long)s);
        if (offsets[0] != 0 || offsets[S] != T)
            rs_fuzz_fail("an opened trace has offsets from %lld to %lld, T = %lld", (long long)offsets[0],
                         (long long)offsets[S], (long long)T);
        free(offsets);
        if (info->has_domain) {
            int32_t *domain = malloc((size_t)(S ? S : 1) * sizeof *domain);
            if (!domain || rs_trace_read_domain(tr, 0, S, domain, &err) != 0)
                rs_fuzz_fail("domains of an opened trace do not read: %s", err.msg);
            free(domain);
        }
    }
    if (info->has_bias && (size_t)info->num_layers * (size_t)info->num_experts <= MAX_ELEMENTS) {
        float *bias = malloc((size_t)info->num_layers * (size_t)info->num_experts * sizeof *bias);
        if (!bias || rs_trace_read_bias(tr, bias, &err) != 0)
            rs_fuzz_fail("the bias of an opened trace does not read: %s", err.msg);
        free(bias);
    }
    for (int i = 0; i < info->num_experts && i < 4096; i++)
        rs_trace_expert_name(tr, i);
    for (int i = 0; i < rs_trace_domain_name_count(tr); i++)
        if (!rs_trace_domain_name(tr, i))
            rs_fuzz_fail("domain name %d of %d is missing", i, rs_trace_domain_name_count(tr));
    int n = T < 8 ? (int)T : 8;
    if (n > 0) {
        read_tokens(tr, 0, n);
        read_tokens(tr, T - n, n);
    }
}

/* A router over the trace, as `routesim route` runs it (small traces only). */
static void route_trace(const char *path, const trace_desc *d, const rs_trace_info *info)
{
    if (info->num_tokens > 4096 || (size_t)info->num_layers * (size_t)info->num_experts > 4096)
        return;
    static const char *const routers[] = {"topk:k=1", "replay", "expert_choice", "sinkhorn", "topp",
                                          "oracle", "cascade", "deepseek_v3:n_group=1,topk_group=1"};
    static const char *const metrics[] = {"load", "entropy", "none", "outcome", NULL, "load,entropy", "sch",
                                          "activation"};
    rs_route_request req = {.trace = path,
                            .router = routers[d->route % 8],
                            .metrics = metrics[(d->route >> 3) % 8],
                            .threads = 1,
                            .skip_nonfinite = (d->route >> 6) & 1,
                            .progress = 0};
    rs_results results;
    rs_results_init(&results);
    rs_route_report report;
    rs_error err = {{0}};
    int rc = rs_route_run(&req, &results, &report, &err);
    rs_fuzz_note(rc ? "route refused" : "routed", rc ? err.msg : req.router);
    if (rc != 0)
        check_error(&err, "route");
    rs_results_free(&results);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        rs_fuzz_limit_file_size();
        rs_h5_quiet();
        ready = 1;
    }
    rs_fuzz_bytes b = {data, size, 0};
    trace_desc d;
    decode_base(&b, &d);
    for (int e = 0; e < MAX_EDITS && b.at < b.size; e++) {
        if (rs_fuzz_u8(&b) % 3 == 0)
            decode_attr_edit(&b, &d);
        else
            decode_dataset_edit(&b, &d);
    }
    const char *path = rs_fuzz_path("trace.h5");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if (write_trace(path, &d) != 0) {
        rs_fuzz_note("skipped", "HDF5 could not write the trace");
        unlink(path);
        return 0;
    }
    /* whatever routesim opens it closes, on every path: an HDF5 object left
     * open leaks in a long-lived host (Python) and crashes HDF5's exit */
    const ssize_t open_before = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    if (rs_trace_open(&tr, path, &err) != 0) {
        rs_fuzz_note("refused", err.msg);
        check_error(&err, "rs_trace_open");
    } else {
        rs_fuzz_note("opened", path);
        read_trace(tr);
        rs_trace_info info = *rs_trace_get_info(tr);
        rs_trace_close(tr);
        route_trace(path, &d, &info);
    }
    const ssize_t open_after = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (open_after != open_before)
        rs_fuzz_fail("HDF5 objects left open: %zd before reading and routing the trace, %zd after", open_before,
                     open_after);
    unlink(path);
    return 0;
}
