/* routesim import vllm: vLLM's routed experts (engine argument
 * enable_return_routed_experts, CompletionOutput.routed_experts) saved one
 * .npz per request with request_id, prompt_token_ids, output_token_ids and
 * routed_experts [rows, num_layers, top_k], into a top-k-only trace with one
 * sequence per request (docs/import.md).
 *
 * What vLLM's code fixes (vllm/v1/core/sched/scheduler.py
 * Scheduler._get_routed_experts, vllm/model_executor/layers/fused_moe/
 * routed_experts_capturer.py): rows = request.num_tokens - 1, prompt +
 * output tokens minus the last, which was sampled but never run through the
 * model; the buffer is int32 [tokens, num_hidden_layers, num_experts_per_tok],
 * zero-filled, and only MoE layers write to it, so a dense layer reads as
 * all 0s. Each file is read twice, one request at a time and its arrays in
 * pieces: a scan (shapes, ids, which layers are dense, the request ids to
 * sort by), then the conversion. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/text_buffer.h"
#include "workloads/import/importer.h"
#include "workloads/import/npz_reader.h"
#include "workloads/trace/trace_size.h"
#include "workloads/trace/trace_writer.h"

enum {
    MAX_EXPERTS = 1000000,  /* RS_TRACE_MAX_EXPERTS */
    MAX_LAYERS = 65536,     /* num_hidden_layers; a model has a few hundred at most */
    MAX_TOP_K = 4096,
    APPEND_IDS = 1 << 20,   /* ids per piece read and appended */
    MAX_ID_TEXT = 1024,     /* bytes of a request id */
    MAX_FILES = 1 << 24,
};

/* ---- options -------------------------------------------------------------- */

/* "1,3,5-47": ascending layer numbers; *count of them into out (NULL: only checked). */
static int parse_layer_list(const char *text, int32_t *out, int *count, rs_error *err)
{
    int n = 0;
    long long last = -1;
    for (const char *p = text;;) {
        char *end;
        long long lo = strtoll(p, &end, 10), hi = lo;
        if (end == p || lo < 0)
            return rs_fail(err, "--moe-layers: '%s' is not a list of layer numbers (e.g. 1,3,5-47)", text);
        if (*end == '-') {
            p = end + 1;
            hi = strtoll(p, &end, 10);
            if (end == p || hi < lo)
                return rs_fail(err, "--moe-layers: '%s' is not a list of layer numbers (e.g. 1,3,5-47)", text);
        }
        if (hi >= MAX_LAYERS)
            return rs_fail(err, "--moe-layers: layer %lld is beyond %d", hi, MAX_LAYERS - 1);
        if (lo <= last)
            return rs_fail(err, "--moe-layers: layer %lld after %lld (give them ascending, each once)", lo, last);
        for (long long l = lo; l <= hi; l++)
            if (out)
                out[n++] = (int32_t)l;
            else
                n++;
        last = hi;
        if (*end == '\0')
            break;
        if (*end != ',')
            return rs_fail(err, "--moe-layers: '%s' is not a list of layer numbers (e.g. 1,3,5-47)", text);
        p = end + 1;
    }
    *count = n;
    return 0;
}

/* ---- one request ---------------------------------------------------------- */

typedef struct request_file {
    char *path;
    char request_id[MAX_ID_TEXT];
    uint64_t number; /* the id's value when it is all digits */
    int is_number;
    int64_t prompt, output; /* token counts */
} request_file;

typedef struct request {
    const char *path;
    npz_archive *npz;
    npy_array prompt, output, routed;
} request;

typedef struct import_state {
    const rs_import_job *job;
    int num_experts;
    request_file *files;
    int num_files;
    const char *directory; /* NULL when files were named */
    int skipped;           /* directory entries that are not .npz files */
    char skipped_names[256];
    int num_layers, k;     /* the model's, from routed_experts' shape */
    uint8_t *layer_nonzero; /* [num_layers]: some id is not 0 */
    int32_t *kept;          /* the layers written (layer_index) */
    int num_kept;
    int by_number;          /* sorted by numeric request id */
    int64_t tokens, rows;
    char dtypes[64];        /* routed_experts dtypes seen, "<i4, <u2" */
    int64_t *buf;           /* a piece of ids */
} import_state;

static const char *const id_dtypes[] = {"<i4", "<u2", "|u1"};

static void close_request(request *r)
{
    rs_npy_close(&r->prompt);
    rs_npy_close(&r->output);
    rs_npy_close(&r->routed);
    rs_npz_close(r->npz);
    r->npz = NULL;
}

/* A 1-D array of token ids: integers, or an empty float array (np.array([]) is float64). */
static int check_token_array(const request *r, const npy_array *a, rs_error *err)
{
    RS_CHECK(a->ndim == 1, err, "%s: %s: shape: %d dimensions, expected 1 (a list of token ids)", r->path, a->name,
             a->ndim);
    RS_CHECK(a->kind == NPY_INT || (a->kind == NPY_FLOAT && a->count == 0), err,
             "%s: %s: descr: '%s', expected integer token ids ('<i8', '<i4', ...)", r->path, a->name, a->descr);
    return 0;
}

/* Opens a request's arrays and checks their headers against each other and
 * against the model seen so far. */
static int open_request(import_state *st, request_file *f, request *r, rs_error *err)
{
    memset(r, 0, sizeof *r);
    r->path = f->path;
    RS_TRY(rs_npz_open(&r->npz, f->path, err));
    npy_array id;
    int rc = rs_npy_open(r->npz, "request_id", &id, err);
    if (rc == 0)
        rc = rs_npy_read_scalar_text(&id, f->request_id, sizeof f->request_id, err);
    rs_npy_close(&id);
    RS_TRY(rc);
    RS_TRY(rs_npy_open(r->npz, "prompt_token_ids", &r->prompt, err));
    RS_TRY(check_token_array(r, &r->prompt, err));
    RS_TRY(rs_npy_open(r->npz, "output_token_ids", &r->output, err));
    RS_TRY(check_token_array(r, &r->output, err));
    RS_TRY(rs_npy_open(r->npz, "routed_experts", &r->routed, err));
    const npy_array *re = &r->routed;
    int known = 0;
    for (size_t i = 0; i < sizeof id_dtypes / sizeof id_dtypes[0]; i++)
        known |= strcmp(re->descr, id_dtypes[i]) == 0;
    RS_CHECK(known, err, "%s: routed_experts: descr: '%s' is not one of '<i4', '<u2', '|u1' (vLLM returns int32)",
             r->path, re->descr);
    RS_CHECK(re->ndim == 3, err, "%s: routed_experts: shape: %d dimensions, expected 3 [tokens, layers, top_k]",
             r->path, re->ndim);
    const int64_t P = r->prompt.count, O = r->output.count;
    RS_CHECK(P + O >= 1, err, "%s: prompt_token_ids and output_token_ids are both empty: a request of no tokens",
             r->path);
    RS_CHECK(re->shape[0] == P + O - 1, err,
             "%s: routed_experts: shape: %lld rows, expected prompt %lld + output %lld - 1 = %lld (vLLM routes every "
             "token but the last)",
             r->path, (long long)re->shape[0], (long long)P, (long long)O, (long long)(P + O - 1));
    RS_CHECK(re->shape[1] >= 1 && re->shape[1] <= MAX_LAYERS && re->shape[2] >= 1 && re->shape[2] <= MAX_TOP_K, err,
             "%s: routed_experts: shape: %lld layers x top_k %lld, expected 1 .. %d layers and top_k 1 .. %d",
             r->path, (long long)re->shape[1], (long long)re->shape[2], MAX_LAYERS, MAX_TOP_K);
    if (st->num_layers == 0) {
        st->num_layers = (int)re->shape[1];
        st->k = (int)re->shape[2];
    }
    RS_CHECK(re->shape[1] == st->num_layers && re->shape[2] == st->k, err,
             "%s: routed_experts: shape: %lld layers x top_k %lld, but %s has %d x %d (one model per import)", r->path,
             (long long)re->shape[1], (long long)re->shape[2], st->files[0].path, st->num_layers, st->k);
    RS_CHECK(st->k <= st->num_experts, err, "%s: routed_experts: shape: top_k %d exceeds --experts %d", r->path, st->k,
             st->num_experts);
    if (!strstr(st->dtypes, re->descr))
        snprintf(st->dtypes + strlen(st->dtypes), sizeof st->dtypes - strlen(st->dtypes), "%s%s",
                 st->dtypes[0] ? ", " : "", re->descr);
    return 0;
}

/* The next n token ids of a request: from the prompt, then the output. */
static int read_token_ids(import_state *st, request *r, int64_t first, int64_t n, int32_t *out, rs_error *err)
{
    for (int64_t done = 0; done < n;) {
        const int64_t t = first + done;
        npy_array *a = t < r->prompt.count ? &r->prompt : &r->output;
        const int64_t base = t < r->prompt.count ? 0 : r->prompt.count;
        int64_t m = (a == &r->prompt ? r->prompt.count - t : n - done);
        m = m < n - done ? m : n - done;
        m = m < APPEND_IDS ? m : APPEND_IDS;
        RS_TRY(rs_npy_read_ints(a, st->buf, m, err));
        for (int64_t i = 0; i < m; i++) {
            RS_CHECK(st->buf[i] >= 0 && st->buf[i] <= INT32_MAX, err, "%s: %s: element %lld: token id %lld is outside "
                     "[0, 2^31)", r->path, a->name, (long long)(t - base + i), (long long)st->buf[i]);
            if (out)
                out[done + i] = (int32_t)st->buf[i];
        }
        done += m;
    }
    return 0;
}

/* The next n rows of routed_experts into st->buf, each id checked. */
static int read_rows(import_state *st, request *r, int64_t first_row, int64_t n, rs_error *err)
{
    const int64_t per_row = (int64_t)st->num_layers * st->k;
    RS_TRY(rs_npy_read_ints(&r->routed, st->buf, n * per_row, err));
    for (int64_t i = 0; i < n * per_row; i++)
        if (st->buf[i] < 0 || st->buf[i] >= st->num_experts)
            return rs_fail(err, "%s: routed_experts: row %lld, layer %lld, slot %lld: expert %lld is outside [0, %d) "
                           "(--experts)", r->path, (long long)(first_row + i / per_row),
                           (long long)(i % per_row / st->k), (long long)(i % st->k), (long long)st->buf[i],
                           st->num_experts);
    return 0;
}

/* Rows of routed_experts per piece, tokens per piece. */
static int64_t piece_rows(const import_state *st)
{
    int64_t per_row = (int64_t)st->num_layers * st->k;
    return per_row >= APPEND_IDS ? 1 : APPEND_IDS / per_row;
}

static int scan_file(import_state *st, request_file *f, rs_error *err)
{
    request r;
    int rc = open_request(st, f, &r, err);
    if (rc == 0 && !st->buf) {
        /* the first request fixes the model: a piece holds at least one row */
        int64_t per_row = (int64_t)st->num_layers * st->k;
        st->buf = malloc((size_t)(per_row > APPEND_IDS ? per_row : APPEND_IDS) * sizeof *st->buf);
        st->layer_nonzero = calloc((size_t)st->num_layers, 1);
        if (!st->buf || !st->layer_nonzero)
            rc = rs_fail(err, "out of memory");
    }
    if (rc == 0) {
        f->prompt = r.prompt.count;
        f->output = r.output.count;
        rc = read_token_ids(st, &r, 0, f->prompt + f->output, NULL, err);
    }
    const int64_t rows = r.routed.ndim == 3 ? r.routed.shape[0] : 0, piece = rc == 0 ? piece_rows(st) : 0;
    for (int64_t row = 0; rc == 0 && row < rows; row += piece) {
        int64_t n = rows - row < piece ? rows - row : piece;
        rc = read_rows(st, &r, row, n, err);
        for (int64_t i = 0; rc == 0 && i < n * st->num_layers * st->k; i++)
            if (st->buf[i] != 0)
                st->layer_nonzero[i / st->k % st->num_layers] = 1;
    }
    close_request(&r);
    if (rc == 0) {
        st->tokens += f->prompt + f->output;
        st->rows += rows;
        const char *s = f->request_id;
        size_t len = strlen(s);
        f->is_number = len > 0 && len <= 18 && strspn(s, "0123456789") == len;
        f->number = f->is_number ? strtoull(s, NULL, 10) : 0;
    }
    return rc;
}

/* ---- the files ------------------------------------------------------------- */

static int add_file(import_state *st, int *cap, const char *dir, const char *name, rs_error *err)
{
    RS_CHECK(st->num_files < MAX_FILES, err, "more than %d request files", MAX_FILES);
    if (st->num_files == *cap) {
        int grown_cap = *cap ? 2 * *cap : 64;
        request_file *grown = realloc(st->files, (size_t)grown_cap * sizeof *grown);
        RS_CHECK(grown, err, "out of memory");
        st->files = grown;
        *cap = grown_cap;
    }
    request_file *f = &st->files[st->num_files];
    memset(f, 0, sizeof *f);
    size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    f->path = malloc(len);
    RS_CHECK(f->path, err, "out of memory");
    snprintf(f->path, len, "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
    st->num_files++;
    return 0;
}

/* The .npz files of a directory (not its subdirectories), in name order for
 * now: the scan reads their request ids, which give the order. */
static int list_directory(import_state *st, const char *dir, rs_error *err)
{
    DIR *d = opendir(dir);
    RS_CHECK(d, err, "%s: cannot open the directory", dir);
    int cap = 0, rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        size_t len = strlen(e->d_name);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat sb;
        int is_npz = len > 4 && strcmp(e->d_name + len - 4, ".npz") == 0 && stat(path, &sb) == 0 &&
                     S_ISREG(sb.st_mode);
        if (is_npz) {
            rc = add_file(st, &cap, dir, e->d_name, err);
        } else {
            size_t used = strlen(st->skipped_names);
            if (st->skipped < 3 && used < sizeof st->skipped_names)
                snprintf(st->skipped_names + used, sizeof st->skipped_names - used, "%s%.60s", used ? ", " : "",
                         e->d_name);
            st->skipped++;
        }
    }
    closedir(d);
    RS_TRY(rc);
    RS_CHECK(st->num_files > 0, err, "%s: no .npz files (one per request, as np.savez writes them)", dir);
    return 0;
}

static int by_request_id(const void *x, const void *y)
{
    const request_file *a = x, *b = y;
    if (a->is_number && b->is_number && a->number != b->number)
        return a->number < b->number ? -1 : 1;
    int c = strcmp(a->request_id, b->request_id);
    return c ? c : strcmp(a->path, b->path);
}

static int by_request_id_ptr(const void *x, const void *y)
{
    return by_request_id(*(const request_file *const *)x, *(const request_file *const *)y);
}

/* A directory's requests sorted by id (numerically when every id is
 * digits, else bytewise); in both modes an id given twice is an error. */
static int order_requests(import_state *st, rs_error *err)
{
    int all_numbers = 1;
    for (int i = 0; i < st->num_files; i++)
        all_numbers &= st->files[i].is_number;
    if (!all_numbers)
        for (int i = 0; i < st->num_files; i++)
            st->files[i].is_number = 0;
    st->by_number = all_numbers;
    if (st->directory)
        qsort(st->files, (size_t)st->num_files, sizeof *st->files, by_request_id);
    const request_file **sorted = malloc((size_t)st->num_files * sizeof *sorted);
    RS_CHECK(sorted, err, "out of memory");
    for (int i = 0; i < st->num_files; i++)
        sorted[i] = &st->files[i];
    qsort(sorted, (size_t)st->num_files, sizeof *sorted, by_request_id_ptr);
    int rc = 0;
    for (int i = 1; i < st->num_files && rc == 0; i++) {
        const request_file *a = sorted[i - 1], *b = sorted[i];
        if ((all_numbers && a->number == b->number) || (!all_numbers && strcmp(a->request_id, b->request_id) == 0))
            rc = rs_fail(err, "%s: request_id: '%.200s' is also the id of %s (each request once)", b->path,
                         b->request_id, a->path);
    }
    free(sorted);
    return rc;
}

/* Which layers are written: --moe-layers, or those with some id not 0. */
static int choose_layers(import_state *st, rs_error *err)
{
    const char *list = rs_param_str(st->job->options, "moe_layers");
    st->kept = malloc((size_t)st->num_layers * sizeof *st->kept);
    RS_CHECK(st->kept, err, "out of memory");
    if (list) {
        int n = 0;
        RS_TRY(parse_layer_list(list, NULL, &n, err));
        int32_t *given = malloc((size_t)n * sizeof *given);
        RS_CHECK(given, err, "out of memory");
        parse_layer_list(list, given, &n, err);
        int rc = given[n - 1] < st->num_layers
                     ? 0
                     : rs_fail(err, "--moe-layers: layer %d, but routed_experts holds layers 0 .. %d", given[n - 1],
                               st->num_layers - 1);
        if (rc == 0)
            memcpy(st->kept, given, (size_t)n * sizeof *given);
        free(given);
        st->num_kept = n;
        return rc;
    }
    for (int l = 0; l < st->num_layers; l++)
        if (st->layer_nonzero[l])
            st->kept[st->num_kept++] = l;
    RS_CHECK(st->num_kept > 0, err,
             "every layer of routed_experts holds only 0 in every request: no MoE layer to tell from a dense one "
             "(--moe-layers names them)");
    return 0;
}

/* ---- the conversion --------------------------------------------------------- */

typedef struct out_piece {
    int32_t *ids, *token_ids;
    uint8_t *phase;
    int64_t tokens; /* capacity */
} out_piece;

static int convert_file(import_state *st, request_file *f, rs_trace_writer *w, out_piece *o, rs_error *err)
{
    request r;
    const int64_t prompt = f->prompt, output = f->output;
    int rc = open_request(st, f, &r, err);
    if (rc == 0 && (r.prompt.count != prompt || r.output.count != output))
        rc = rs_fail(err, "%s: changed while it was read (%lld + %lld tokens, then %lld + %lld)", f->path,
                     (long long)prompt, (long long)output, (long long)r.prompt.count, (long long)r.output.count);
    const int64_t T = prompt + output, rows = T - 1, K = st->k;
    for (int64_t t = 0; rc == 0 && t < T; t += o->tokens) {
        const int n = (int)(T - t < o->tokens ? T - t : o->tokens);
        rc = read_token_ids(st, &r, t, n, o->token_ids, err);
        const int64_t routed = t + n <= rows ? n : rows - t; /* the last token has no row */
        if (rc == 0 && routed > 0)
            rc = read_rows(st, &r, t, routed, err);
        for (int i = 0; rc == 0 && i < n; i++) {
            o->phase[i] = t + i >= prompt; /* 0 prefill (prompt), 1 decode (output) */
            for (int j = 0; j < st->num_kept; j++) {
                int32_t *dst = o->ids + ((int64_t)i * st->num_kept + j) * K;
                const int64_t *src = st->buf + ((int64_t)i * st->num_layers + st->kept[j]) * K;
                for (int s = 0; s < K; s++)
                    dst[s] = i < routed ? (int32_t)src[s] : -1; /* not observed */
            }
        }
        if (rc == 0)
            rc = rs_trace_writer_append(w, n, NULL, o->ids, NULL, o->token_ids, o->phase, err);
    }
    close_request(&r);
    if (rc == 0)
        rc = rs_trace_writer_end_sequence(w, 0, err);
    return rc;
}

/* ---- notes, report ----------------------------------------------------------- */

/* "0-26, 28, 30-47" of the layers whose flag is want. */
static int add_layers(rs_text *t, const uint8_t *flags, int num_layers, int want)
{
    int listed = 0;
    for (int i = 0; i < num_layers;) {
        if (flags[i] != want) {
            i++;
            continue;
        }
        int j = i;
        while (j + 1 < num_layers && flags[j + 1] == want)
            j++;
        rs_text_addf(t, j == i ? "%s%d" : "%s%d-%d", listed ? ", " : "", i, j);
        listed += j - i + 1;
        i = j + 1;
    }
    return listed;
}

static void write_notes(const import_state *st, rs_text *t)
{
    if (st->directory)
        rs_text_addf(t, "one .npz per request (%d), one sequence each, sorted by request_id (%s)\n", st->num_files,
            st->by_number ? "numerically: every id is an integer" : "bytewise, UTF-8: not every id is an integer");
    else
        rs_text_addf(t, "one .npz per request (%d), one sequence each, in the order given\n", st->num_files);
    if (st->skipped)
        rs_text_addf(t, "skipped %d entr%s of %s that %s not .npz files (%s%s)\n", st->skipped, st->skipped == 1 ? "y" : "ies",
            st->directory, st->skipped == 1 ? "is" : "are", st->skipped_names, st->skipped > 3 ? ", ..." : "");
    rs_text_addf(t, "tokens: prompt_token_ids then output_token_ids (/tokens/ids); /tokens/phase 0 for the prompt, 1 for the "
           "output\n");
    rs_text_addf(t, "routed_experts holds prompt + output - 1 rows (vLLM Scheduler._get_routed_experts: the last token was "
           "sampled, never run through the model): each sequence's last token is not observed at any layer "
           "(%d tokens, stored as -1 rows)\n",
        st->num_files);
    uint8_t *kept = calloc((size_t)st->num_layers, 1);
    if (!kept)
        return;
    for (int j = 0; j < st->num_kept; j++)
        kept[st->kept[j]] = 1;
    if (rs_param_str(st->job->options, "moe_layers")) {
        rs_text_addf(t, "MoE layers from --moe-layers: ");
        add_layers(t, kept, st->num_layers, 1);
        rs_text_addf(t, " of the model's %d (layer_index); the %d others dropped as dense\n", st->num_layers,
            st->num_layers - st->num_kept);
        uint8_t *flags = calloc((size_t)st->num_layers, 1);
        int odd_zero = 0, odd_dropped = 0;
        for (int l = 0; flags && l < st->num_layers; l++) {
            flags[l] = kept[l] && !st->layer_nonzero[l];
            odd_zero += flags[l];
        }
        if (odd_zero) {
            rs_text_addf(t, "layers given by --moe-layers that hold only 0 in every request: ");
            add_layers(t, flags, st->num_layers, 1);
            rs_text_addf(t, "\n");
        }
        for (int l = 0; flags && l < st->num_layers; l++) {
            flags[l] = !kept[l] && st->layer_nonzero[l];
            odd_dropped += flags[l];
        }
        if (odd_dropped) {
            rs_text_addf(t, "layers not in --moe-layers that hold experts other than 0, dropped: ");
            add_layers(t, flags, st->num_layers, 1);
            rs_text_addf(t, "\n");
        }
        free(flags);
    } else if (st->num_kept < st->num_layers) {
        rs_text_addf(t, "dense layers detected: ");
        add_layers(t, kept, st->num_layers, 0);
        rs_text_addf(t, " hold only 0 in every request (vLLM's buffer is zero-filled, only MoE layers write to it): dropped; "
               "MoE layers kept: ");
        add_layers(t, kept, st->num_layers, 1);
        rs_text_addf(t, " of %d (layer_index)%s\n", st->num_layers,
            st->k == 1 ? "; with top_k 1 a MoE layer whose every token chose expert 0 would read as dense: "
                         "--moe-layers names the layers" : "");
    } else {
        rs_text_addf(t, "no dense layer detected: every one of the %d layers holds an expert other than 0 somewhere "
               "(--moe-layers names MoE layers)\n",
            st->num_layers);
    }
    free(kept);
    rs_text_addf(t, "routed_experts dtype %s; no weights and no logits (vLLM returns ids only): replay the ids, re-routing "
           "needs logits\n",
        st->dtypes);
    if (t->len && t->buf[t->len - 1] == '\n')
        t->buf[--t->len] = '\0';
}

static void print_report(const import_state *st, const char *notes)
{
    fprintf(stderr,
            "routesim: imported %d request%s into %s: %lld tokens (%lld routed), %d MoE layers of %d, K = %d\n",
            st->num_files, st->num_files == 1 ? "" : "s", st->job->output, (long long)st->tokens,
            (long long)st->rows, st->num_kept, st->num_layers, st->k);
    rs_text_print_lines(stderr, "routesim: note: ", notes);
}

/* ---- the importer ------------------------------------------------------------- */

static int write_trace(import_state *st, rs_error *err)
{
    const rs_import_job *job = st->job;
    char source[1024];
    size_t used = (size_t)snprintf(source, sizeof source, "routesim import vllm");
    for (int i = 0; i < rs_import_input_count(job) && used < sizeof source; i++) {
        const char *path = rs_import_input(job, i), *slash = strrchr(path, '/');
        used += (size_t)snprintf(source + used, sizeof source - used, " %s",
                                 slash && slash[1] ? slash + 1 : path);
    }
    rs_trace_layout layout = {
        .num_layers = st->num_kept,
        .num_experts = st->num_experts,
        .logits = RS_LOGITS_NONE,
        .topk_k = st->k,
        .token_ids = 1,
        .phase = 1,
        .unit = "token",
        .model = rs_param_str(job->options, "model"),
        .source = source,
        .top_k = st->k,
        .norm_topk = -1,
        .layer_index = st->kept,
        .gzip_level = (int)rs_param_int(job->options, "gzip"),
    };
    const int64_t per_token = (int64_t)st->num_kept * st->k;
    out_piece o = {.tokens = piece_rows(st)};
    rs_trace_writer *w = NULL;
    int rc = rs_trace_size_check(job->output, &layout, st->tokens, st->num_files, &job->limit, err);
    if (rc == 0) {
        o.ids = malloc((size_t)(o.tokens * per_token) * sizeof *o.ids);
        o.token_ids = malloc((size_t)o.tokens * sizeof *o.token_ids);
        o.phase = malloc((size_t)o.tokens);
        if (!o.ids || !o.token_ids || !o.phase)
            rc = rs_fail(err, "out of memory");
    }
    if (rc == 0)
        rc = rs_trace_writer_create(&w, job->output, &layout, err);
    for (int i = 0; i < st->num_files && rc == 0; i++)
        rc = convert_file(st, &st->files[i], w, &o, err);
    rs_text notes = {0};
    if (rc == 0) {
        write_notes(st, &notes);
        if (!notes.buf || notes.failed)
            rc = rs_fail(err, "out of memory");
    }
    if (rc == 0) {
        rs_trace_writer_set_import_notes(w, notes.buf);
        rc = rs_trace_writer_finish(w, err);
    } else if (w) {
        rs_trace_writer_abort(w);
    }
    if (rc == 0 && !job->quiet)
        print_report(st, notes.buf);
    free(notes.buf);
    free(o.ids);
    free(o.token_ids);
    free(o.phase);
    return rc;
}

static int vllm_run(const rs_import_job *job, rs_error *err)
{
    import_state st = {.job = job, .num_experts = (int)rs_param_int(job->options, "experts")};
    const int inputs = rs_import_input_count(job);
    int rc = 0, cap = 0;
    for (int i = 0; i < inputs && rc == 0; i++) {
        const char *input = rs_import_input(job, i);
        struct stat sb;
        if (strcmp(input, "-") == 0) {
            rc = rs_fail(err, "import vllm: reads .npz archives, not standard input: save them to files first");
        } else if (stat(input, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            if (inputs > 1)
                rc = rs_fail(err, "%s: a directory among %d inputs: give one directory, or .npz files", input,
                             inputs);
            else {
                st.directory = input;
                rc = list_directory(&st, input, err);
            }
        } else {
            rc = add_file(&st, &cap, NULL, input, err);
        }
    }
    for (int i = 0; i < st.num_files && rc == 0; i++)
        rc = scan_file(&st, &st.files[i], err);
    if (rc == 0)
        rc = order_requests(&st, err);
    if (rc == 0)
        rc = choose_layers(&st, err);
    if (rc == 0)
        rc = write_trace(&st, err);
    for (int i = 0; i < st.num_files; i++)
        free(st.files[i].path);
    free(st.files);
    free(st.layer_nonzero);
    free(st.kept);
    free(st.buf);
    return rc;
}

static const rs_param_def vllm_options[] = {
    {"experts", RS_PARAM_INT, NULL, 1, MAX_EXPERTS, NULL,
     "routed experts per layer (required; the model's n_routed_experts or num_experts); every id must lie in [0, E)"},
    {"moe_layers", RS_PARAM_STRING, NULL, 0, 0, NULL,
     "the model's MoE layers, e.g. 1-47 or 0,2,4 (0-based, as routed_experts' second axis); the others are dropped "
     "as dense. Default: the layers that hold an expert other than 0 in some request"},
    {"model", RS_PARAM_STRING, NULL, 0, 0, NULL, "root attribute model"},
    {"gzip", RS_PARAM_INT, "0", 0, 9, NULL, "compress the datasets with gzip LEVEL 1-9 (default 0: none)"},
};
static const rs_import_option_form vllm_forms[] = {
    {"E", RS_IMPORT_REQUIRED},
    {"LIST", 0},
    {"NAME", 0},
    {"LEVEL", 0},
};
_Static_assert(sizeof vllm_forms / sizeof vllm_forms[0] == sizeof vllm_options / sizeof vllm_options[0],
               "one form per option");

static int vllm_check(const rs_params *p, rs_error *err)
{
    const char *list = rs_param_str(p, "moe_layers");
    int n = 0;
    return list ? parse_layer_list(list, NULL, &n, err) : 0;
}

static const rs_importer_type vllm_type = {
    .name = "vllm",
    .summary = "vLLM routed experts (enable_return_routed_experts), one .npz per request",
    .input = "a directory of .npz files, or .npz files",
    .help =
        "Converts vLLM's routed experts (LLM(..., enable_return_routed_experts=True), then each\n"
        "CompletionOutput.routed_experts) saved one .npz per request with np.savez or\n"
        "np.savez_compressed, arrays request_id, prompt_token_ids, output_token_ids and\n"
        "routed_experts [prompt + output - 1, num_layers, top_k] (int32, uint16 or uint8),\n"
        "into a top-k-only trace (/router/topk_ids, /tokens/ids, /tokens/phase), one sequence\n"
        "per request: a directory's .npz files sorted by request_id (numerically when every id\n"
        "is an integer), or the files given, in that order. vLLM routes every token but the\n"
        "last: that token is stored as not observed. Dense layers hold 0s: --moe-layers names\n"
        "the MoE layers, or the layers all 0 in every request are dropped (layer_index keeps\n"
        "the model's numbers). What had to be assumed is stored in the trace (routesim info\n"
        "shows it) and printed.\n",
    .example = "# Python: llm = LLM(model=..., enable_return_routed_experts=True)\n"
               "#   for o in llm.generate(prompts):\n"
               "#     np.savez_compressed(f'routed/{o.request_id}.npz', request_id=o.request_id,\n"
               "#       prompt_token_ids=o.prompt_token_ids, output_token_ids=list(o.outputs[0].token_ids),\n"
               "#       routed_experts=o.outputs[0].routed_experts)\n"
               "routesim import vllm routed/ -o moe.h5 --experts 128",
    .options = vllm_options,
    .forms = vllm_forms,
    .num_options = sizeof vllm_options / sizeof vllm_options[0],
    .flags = RS_IMPORTER_DIRECTORY | RS_IMPORTER_MANY_INPUTS,
    .check = vllm_check,
    .run = vllm_run,
};
const rs_importer_type *const rs_importer_vllm = &vllm_type;
