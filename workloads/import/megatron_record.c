#include "workloads/import/megatron_record.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* peek() results besides a byte */
enum { AT_END = -1, READ_FAILED = -2 };

/* ---- the stream --------------------------------------------------------- */

int rs_mg_stream_init(rs_mg_stream *s, int fd, const char *label, int64_t buffer_bytes, rs_error *err)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->label = label;
    s->cap = buffer_bytes;
    s->line = 1;
    s->buf = malloc((size_t)buffer_bytes);
    RS_CHECK(s->buf, err, "%s: out of memory", label);
    return 0;
}

void rs_mg_stream_seek(rs_mg_stream *s, int64_t offset, int64_t line)
{
    s->base = offset;
    s->len = s->at = 0;
    s->line = line;
}

void rs_mg_stream_free(rs_mg_stream *s)
{
    free(s->buf);
    free(s->scratch);
    s->buf = NULL;
    s->scratch = NULL;
}

/* The next byte without consuming it, AT_END, or READ_FAILED (err set). */
static int peek(rs_mg_stream *s, rs_error *err)
{
    if (s->at < s->len)
        return s->buf[s->at];
    s->base += s->len;
    s->len = s->at = 0;
    ssize_t got;
    do
        got = pread(s->fd, s->buf, (size_t)s->cap, (off_t)s->base);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
        rs_fail(err, "%s: read error: %s", s->label, strerror(errno));
        return READ_FAILED;
    }
    s->len = got;
    return got > 0 ? s->buf[0] : AT_END;
}

static void consume(rs_mg_stream *s)
{
    if (s->buf[s->at++] == '\n')
        s->line++;
}

static int64_t offset_of_next(const rs_mg_stream *s) { return s->base + s->at; }

/* ---- messages ------------------------------------------------------------ */

/* "FILE: line N: KEY: problem" (no KEY part when key is NULL). */
static __attribute__((format(printf, 5, 6))) int fail_at(const rs_mg_stream *s, int64_t line, const char *key,
                                                         rs_error *err, const char *fmt, ...)
{
    char problem[RS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    if (key)
        return rs_fail(err, "%s: line %lld: %s: %s", s->label, (long long)line, key, problem);
    return rs_fail(err, "%s: line %lld: %s", s->label, (long long)line, problem);
}

/* The record ends (a newline or the end of the file) where c was read. */
static int truncated(const rs_mg_stream *s, int64_t line, int c, rs_error *err)
{
    if (c == READ_FAILED)
        return -1;
    return fail_at(s, line, NULL, err, "the record is truncated: %s before its closing '}' (an interrupted write?)",
                   c == AT_END ? "the file ends" : "the line ends");
}

/* A byte of the input as a message shows it: 'x', or its code when it is
 * not printable (a message is one line). */
typedef struct shown_byte {
    char text[8];
} shown_byte;

static shown_byte show(int c)
{
    shown_byte b;
    if (c > 0x20 && c < 0x7f)
        snprintf(b.text, sizeof b.text, "'%c'", c);
    else
        snprintf(b.text, sizeof b.text, "0x%02x", (unsigned)c & 0xffu);
    return b;
}

static const char *value_kind(int c)
{
    return c == '"' ? "a string" : c == '[' ? "an array" : c == '{' ? "an object" : c == 't' || c == 'f' ? "a boolean"
           : c == 'n' ? "null" : c == '-' || (c >= '0' && c <= '9') ? "a number" : "something else";
}

/* ---- JSON pieces ------------------------------------------------------------ */

/* Skips spaces and tabs (json.dumps writes ", " and ": "); a newline is the
 * end of the record, not white space. Returns the next byte as peek does. */
static int skip_space(rs_mg_stream *s, rs_error *err)
{
    int c;
    while ((c = peek(s, err)) == ' ' || c == '\t' || c == '\r')
        consume(s);
    return c;
}

/* Consumes the byte `want` after white space. */
static int expect(rs_mg_stream *s, int64_t line, const char *key, int want, rs_error *err)
{
    int c = skip_space(s, err);
    if (c == want) {
        consume(s);
        return 0;
    }
    if (c < 0 || c == '\n')
        return truncated(s, line, c, err);
    return fail_at(s, line, key, err, "expected '%c', got %s", want, show(c).text);
}

/* A string into out (cut at cap - 1 bytes; *fits = 0 then, and when it has
 * characters beyond printable ASCII, stored as '?', so that it matches no
 * name and prints on one line). */
static int read_string(rs_mg_stream *s, int64_t line, const char *key, char *out, size_t cap, int *fits,
                       rs_error *err)
{
    RS_TRY(expect(s, line, key, '"', err));
    size_t n = 0;
    *fits = 1;
    for (;;) {
        int c = peek(s, err);
        if (c < 0 || c == '\n')
            return truncated(s, line, c, err);
        consume(s);
        if (c == '"')
            break;
        if (c < 0x20)
            return fail_at(s, line, key, err, "a control character inside a string");
        if (c == '\\') {
            int e = peek(s, err);
            if (e < 0 || e == '\n')
                return truncated(s, line, e, err);
            consume(s);
            static const char plain[] = "\"\\/bfnrt", meant[] = "\"\\/\b\f\n\r\t";
            const char *at = strchr(plain, e);
            if (at && e) {
                c = meant[at - plain];
            } else if (e == 'u') {
                int code = 0;
                for (int i = 0; i < 4; i++) {
                    int h = peek(s, err);
                    if (h < 0 || h == '\n')
                        return truncated(s, line, h, err);
                    consume(s);
                    int v = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (v < 0)
                        return fail_at(s, line, key, err, "a bad \\u escape in a string");
                    code = code * 16 + v;
                }
                c = code;
            } else {
                return fail_at(s, line, key, err, "a bad escape \\ then %s in a string", show(e).text);
            }
        }
        if (c < 0x20 || c >= 0x7f) {
            c = '?';
            *fits = 0;
        }
        if (n + 1 < cap)
            out[n++] = (char)c;
        else
            *fits = 0;
    }
    out[n] = '\0';
    return 0;
}

/* An integer >= 0 that fits in int64. */
static int read_count(rs_mg_stream *s, int64_t line, const char *key, int64_t *out, rs_error *err)
{
    int c = skip_space(s, err);
    if (c < 0 || c == '\n')
        return truncated(s, line, c, err);
    int negative = c == '-';
    if (negative) {
        consume(s);
        c = peek(s, err);
    }
    if (c < '0' || c > '9') {
        if (c < 0 || c == '\n')
            return truncated(s, line, c, err);
        return fail_at(s, line, key, err, "expected an integer, got %s", negative ? "'-'" : value_kind(c));
    }
    int64_t v = 0;
    int overflow = 0;
    while ((c = peek(s, err)) >= '0' && c <= '9') {
        consume(s);
        if (v > (INT64_MAX - (c - '0')) / 10)
            overflow = 1;
        else
            v = v * 10 + (c - '0');
    }
    if (c == READ_FAILED)
        return -1;
    if (c == '.' || c == 'e' || c == 'E')
        return fail_at(s, line, key, err, "expected an integer, got a number with a fraction or exponent");
    if (overflow)
        return fail_at(s, line, key, err, "%s does not fit in 64 bits", negative ? "a negative number" : "the number");
    if (negative && v != 0)
        return fail_at(s, line, key, err, "-%lld is negative", (long long)v);
    *out = v;
    return 0;
}

/* Skips any JSON value (keys this reader does not use). */
static int skip_value(rs_mg_stream *s, int64_t line, const char *key, int depth, rs_error *err)
{
    if (depth > 64)
        return fail_at(s, line, key, err, "values nested more than 64 deep");
    int c = skip_space(s, err);
    if (c < 0 || c == '\n')
        return truncated(s, line, c, err);
    if (c == '"') {
        char scratch[8];
        int fits;
        return read_string(s, line, key, scratch, sizeof scratch, &fits, err);
    }
    if (c == '{' || c == '[') {
        int close = c == '{' ? '}' : ']';
        consume(s);
        c = skip_space(s, err);
        if (c == close) {
            consume(s);
            return 0;
        }
        for (;;) {
            if (close == '}') {
                char name[8];
                int fits;
                RS_TRY(read_string(s, line, key, name, sizeof name, &fits, err));
                RS_TRY(expect(s, line, key, ':', err));
            }
            RS_TRY(skip_value(s, line, key, depth + 1, err));
            c = skip_space(s, err);
            if (c < 0 || c == '\n')
                return truncated(s, line, c, err);
            consume(s);
            if (c == close)
                return 0;
            if (c != ',')
                return fail_at(s, line, key, err, "expected ',' or '%c', got %s", close, show(c).text);
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        while ((c = peek(s, err)) == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' || (c >= '0' && c <= '9'))
            consume(s);
        return c == READ_FAILED ? -1 : 0;
    }
    char word[8];
    size_t n = 0;
    while ((c = peek(s, err)) >= 'a' && c <= 'z') {
        consume(s);
        if (n + 1 < sizeof word)
            word[n++] = (char)c;
    }
    word[n] = '\0';
    if (c == READ_FAILED)
        return -1;
    if (strcmp(word, "true") == 0 || strcmp(word, "false") == 0 || strcmp(word, "null") == 0)
        return 0;
    return fail_at(s, line, key, err, "not a JSON value");
}

/* ---- top_indices rows --------------------------------------------------------- */

/* One row "[a, b, ...]" of at most cap ids into ids; *n gets its length. */
static int read_row(rs_mg_stream *s, int64_t line, int64_t row, int32_t *ids, int64_t cap, int64_t *n,
                    rs_error *err)
{
    char key[64];
    snprintf(key, sizeof key, "top_indices[%lld]", (long long)row);
    RS_TRY(expect(s, line, key, '[', err));
    *n = 0;
    int c = skip_space(s, err);
    if (c == ']') {
        consume(s);
        return 0;
    }
    for (;;) {
        int64_t id;
        snprintf(key, sizeof key, "top_indices[%lld][%lld]", (long long)row, (long long)*n);
        RS_TRY(read_count(s, line, key, &id, err));
        if (id > INT32_MAX)
            return fail_at(s, line, key, err, "expert %lld does not fit in int32", (long long)id);
        if (*n == cap)
            return fail_at(s, line, key, err, "a row of more than %lld ids", (long long)cap);
        ids[(*n)++] = (int32_t)id;
        c = skip_space(s, err);
        if (c < 0 || c == '\n')
            return truncated(s, line, c, err);
        consume(s);
        if (c == ']')
            return 0;
        if (c != ',')
            return fail_at(s, line, key, err, "expected ',' or ']', got %s", show(c).text);
    }
}

static int compare_ids(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Checks one row of top_indices: no id twice; notes its order and largest id. */
static int check_row(rs_mg_stream *s, rs_mg_record *rec, int64_t row, const int32_t *ids, int64_t n, rs_error *err)
{
    int ascending = 1;
    for (int64_t j = 0; j < n; j++) {
        if (ids[j] > rec->max_id) {
            rec->max_id = ids[j];
            rec->max_row = row;
            rec->max_col = j;
        }
        if (j > 0 && ids[j] <= ids[j - 1])
            ascending = 0;
    }
    if (n >= 2) {
        rec->rows_seen++;
        rec->order_evidence += lgamma((double)n + 1.0);
        rec->ascending &= ascending;
    }
    if (ascending)
        return 0;
    int32_t *sorted = s->scratch + RS_MG_MAX_TOPK;
    memcpy(sorted, ids, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_ids);
    for (int64_t j = 1; j < n; j++)
        if (sorted[j] == sorted[j - 1]) {
            int64_t first = 0;
            while (ids[first] != sorted[j])
                first++;
            int64_t again = first + 1;
            while (ids[again] != sorted[j])
                again++;
            char key[64];
            snprintf(key, sizeof key, "top_indices[%lld][%lld]", (long long)row, (long long)again);
            return fail_at(s, rec->line, key, err, "expert %d is listed twice in the row", sorted[j]);
        }
    return 0;
}

/* top_indices read and checked row by row; *rows and *row_len get its shape. */
static int read_rows(rs_mg_stream *s, rs_mg_record *rec, int64_t *rows, int64_t *row_len, rs_error *err)
{
    if (!s->scratch && !(s->scratch = malloc(2 * (size_t)RS_MG_MAX_TOPK * sizeof *s->scratch)))
        return rs_fail(err, "%s: out of memory", s->label);
    RS_TRY(expect(s, rec->line, "top_indices", '[', err));
    *rows = 0;
    *row_len = -1;
    int c = skip_space(s, err);
    if (c == ']') {
        consume(s);
        return 0;
    }
    for (;;) {
        int64_t n;
        RS_TRY(read_row(s, rec->line, *rows, s->scratch, RS_MG_MAX_TOPK, &n, err));
        if (*row_len >= 0 && n != *row_len) {
            char key[64];
            snprintf(key, sizeof key, "top_indices[%lld]", (long long)*rows);
            return fail_at(s, rec->line, key, err, "%lld ids, the rows before have %lld", (long long)n,
                           (long long)*row_len);
        }
        *row_len = n;
        RS_TRY(check_row(s, rec, *rows, s->scratch, n, err));
        ++*rows;
        c = skip_space(s, err);
        if (c < 0 || c == '\n')
            return truncated(s, rec->line, c, err);
        consume(s);
        if (c == ']')
            return 0;
        if (c != ',')
            return fail_at(s, rec->line, "top_indices", err, "expected ',' or ']' after row %lld, got %s",
                           (long long)*rows - 1, show(c).text);
    }
}

/* Finds the end of top_indices without reading its numbers. */
static int skip_rows(rs_mg_stream *s, const rs_mg_record *rec, rs_error *err)
{
    RS_TRY(expect(s, rec->line, "top_indices", '[', err));
    for (int depth = 1; depth > 0;) {
        int c = peek(s, err);
        if (c < 0 || c == '\n')
            return truncated(s, rec->line, c, err);
        if (c == '[' && ++depth > 2)
            return fail_at(s, rec->line, "top_indices", err, "nested more than [rows][ids]");
        if (c == ']')
            depth--;
        if (!strchr("[]0123456789-, \t", c))
            return fail_at(s, rec->line, "top_indices", err, "%s in a list of expert ids", show(c).text);
        consume(s);
    }
    return 0;
}

/* ---- records -------------------------------------------------------------- */

enum record_key {
    KEY_STEP, KEY_STAGE, KEY_BLOCK, KEY_LAYER, KEY_RANK, KEY_NUM_TOKENS, KEY_TOPK, KEY_MTP_IDX,
    KEY_LOGIT_OFFSET, KEY_LOGIT_BYTES, KEY_LOGIT_SHAPE, KEY_HS_OFFSET, KEY_HS_BYTES, KEY_HS_SHAPE,
    KEY_TOP_INDICES, NUM_KEYS
};
static const char *const key_names[NUM_KEYS] = {
    "step", "stage", "block", "layer", "rank", "num_tokens", "topk", "mtp_idx",
    "logit_offset", "logit_bytes", "logit_shape", "hs_offset", "hs_bytes", "hs_shape", "top_indices",
};
static const enum record_key required_keys[] = {KEY_STEP, KEY_BLOCK, KEY_LAYER, KEY_RANK,
                                                KEY_NUM_TOKENS, KEY_TOPK, KEY_TOP_INDICES};

/* logit_shape: [num_tokens, num_experts]. */
static int read_shape(rs_mg_stream *s, rs_mg_record *rec, rs_error *err)
{
    int c = skip_space(s, err);
    if (c != '[') {
        if (c < 0 || c == '\n')
            return truncated(s, rec->line, c, err);
        return fail_at(s, rec->line, "logit_shape", err, "expected [num_tokens, num_experts], got %s",
                       value_kind(c));
    }
    consume(s);
    int64_t dims[3]; /* the third holds every value past the second */
    int n = 0;
    for (;;) {
        RS_TRY(read_count(s, rec->line, "logit_shape", &dims[n < 2 ? n : 2], err));
        n += n < 3;
        c = skip_space(s, err);
        if (c < 0 || c == '\n')
            return truncated(s, rec->line, c, err);
        consume(s);
        if (c == ']')
            break;
        if (c != ',')
            return fail_at(s, rec->line, "logit_shape", err, "expected ',' or ']', got %s", show(c).text);
    }
    if (n != 2)
        return fail_at(s, rec->line, "logit_shape", err, "%s, expected [num_tokens, num_experts]",
                       n < 2 ? "1 dimension" : "more than 2 dimensions");
    rec->logit_rows = dims[0];
    rec->logit_cols = dims[1];
    return 0;
}

/* The checks that need the whole record. */
static int check_record(rs_mg_stream *s, rs_mg_record *rec, unsigned seen, int64_t rows, int64_t row_len,
                        rs_mg_read_mode mode, rs_error *err)
{
    for (size_t i = 0; i < sizeof required_keys / sizeof required_keys[0]; i++)
        if (!(seen & (1u << required_keys[i])))
            return fail_at(s, rec->line, key_names[required_keys[i]], err,
                           "missing key (RouterTracer writes it in every record)");
    unsigned logit_keys = seen & ((1u << KEY_LOGIT_OFFSET) | (1u << KEY_LOGIT_BYTES) | (1u << KEY_LOGIT_SHAPE));
    for (int k = KEY_LOGIT_OFFSET; logit_keys && k <= KEY_LOGIT_SHAPE; k++)
        if (!(seen & (1u << k)))
            return fail_at(s, rec->line, key_names[k], err,
                           "missing key (logit_offset, logit_bytes and logit_shape come together)");
    rec->has_logits = logit_keys != 0;
    if (rec->topk < 1 || rec->topk > RS_MG_MAX_TOPK)
        return fail_at(s, rec->line, "topk", err, "%lld is outside [1, %d]", (long long)rec->topk, RS_MG_MAX_TOPK);
    if (rec->mtp_idx >= 0 && rec->block != RS_MG_MTP)
        return fail_at(s, rec->line, "mtp_idx", err, "given for block 'decoder' (only MTP records have one)");
    if (rec->has_logits) {
        if (rec->logit_rows != rec->num_tokens)
            return fail_at(s, rec->line, "logit_shape", err, "[%lld, %lld], but num_tokens is %lld",
                           (long long)rec->logit_rows, (long long)rec->logit_cols, (long long)rec->num_tokens);
        if (rec->logit_cols < 1)
            return fail_at(s, rec->line, "logit_shape", err, "[%lld, 0]: no experts", (long long)rec->logit_rows);
        int fits = rec->logit_cols <= INT64_MAX / 2 / (rec->logit_rows ? rec->logit_rows : 1);
        if (!fits || rec->logit_bytes != rec->logit_rows * rec->logit_cols * 2)
            return fail_at(s, rec->line, "logit_bytes", err, "%lld, but logit_shape [%lld, %lld] of bfloat16 takes "
                           "%s%lld bytes", (long long)rec->logit_bytes, (long long)rec->logit_rows,
                           (long long)rec->logit_cols, fits ? "" : "more than ",
                           fits ? (long long)(rec->logit_rows * rec->logit_cols * 2) : (long long)INT64_MAX);
    }
    if (mode != RS_MG_READ_ROWS)
        return 0;
    if (rows != rec->num_tokens)
        return fail_at(s, rec->line, "top_indices", err, "%lld rows, but num_tokens is %lld", (long long)rows,
                       (long long)rec->num_tokens);
    if (rows > 0 && row_len != rec->topk)
        return fail_at(s, rec->line, "top_indices", err, "rows of %lld ids, but topk is %lld", (long long)row_len,
                       (long long)rec->topk);
    return 0;
}

/* One "key": value of the record. */
static int read_member(rs_mg_stream *s, rs_mg_record *rec, unsigned *seen, rs_mg_read_mode mode, int64_t *rows,
                       int64_t *row_len, rs_error *err)
{
    char name[32];
    int fits;
    RS_TRY(read_string(s, rec->line, NULL, name, sizeof name, &fits, err));
    RS_TRY(expect(s, rec->line, name, ':', err));
    int key = 0;
    while (key < NUM_KEYS && !(fits && strcmp(name, key_names[key]) == 0))
        key++;
    if (key == NUM_KEYS)
        return skip_value(s, rec->line, name, 0, err);
    if (*seen & (1u << key))
        return fail_at(s, rec->line, name, err, "key given twice in one record");
    *seen |= 1u << key;
    int64_t *counts[NUM_KEYS] = {
        [KEY_STEP] = &rec->step, [KEY_LAYER] = &rec->layer, [KEY_RANK] = &rec->rank,
        [KEY_NUM_TOKENS] = &rec->num_tokens, [KEY_TOPK] = &rec->topk, [KEY_MTP_IDX] = &rec->mtp_idx,
        [KEY_LOGIT_OFFSET] = &rec->logit_offset, [KEY_LOGIT_BYTES] = &rec->logit_bytes,
    };
    if (counts[key])
        return read_count(s, rec->line, name, counts[key], err);
    switch (key) {
    case KEY_STAGE:
    case KEY_BLOCK: {
        char value[32];
        int c = skip_space(s, err);
        if (c != '"') {
            if (c < 0 || c == '\n')
                return truncated(s, rec->line, c, err);
            return fail_at(s, rec->line, name, err, "expected a string, got %s", value_kind(c));
        }
        RS_TRY(read_string(s, rec->line, name, value, sizeof value, &fits, err));
        if (key == KEY_STAGE && !(fits && strcmp(value, "pre_dispatch") == 0))
            return fail_at(s, rec->line, name, err, "'%s' is not 'pre_dispatch' (the stage RouterTracer records)",
                           value);
        if (key == KEY_BLOCK) {
            if (!fits || (strcmp(value, "decoder") != 0 && strcmp(value, "mtp") != 0))
                return fail_at(s, rec->line, name, err, "'%s' is neither 'decoder' nor 'mtp'", value);
            rec->block = value[0] == 'm' ? RS_MG_MTP : RS_MG_DECODER;
        }
        return 0;
    }
    case KEY_LOGIT_SHAPE:
        return read_shape(s, rec, err);
    case KEY_HS_OFFSET:
    case KEY_HS_BYTES:
    case KEY_HS_SHAPE:
        rec->has_hidden = 1;
        return skip_value(s, rec->line, name, 0, err);
    default: /* KEY_TOP_INDICES */
        skip_space(s, err);
        rec->indices_at = offset_of_next(s);
        return mode == RS_MG_READ_ROWS ? read_rows(s, rec, rows, row_len, err) : skip_rows(s, rec, err);
    }
}

int rs_mg_read_record(rs_mg_stream *s, rs_mg_record *rec, rs_mg_read_mode mode, rs_error *err)
{
    memset(rec, 0, sizeof *rec);
    rec->mtp_idx = -1;
    rec->max_id = rec->max_row = rec->max_col = -1;
    rec->ascending = 1;
    int c;
    while ((c = peek(s, err)) == '\n' || c == ' ' || c == '\t' || c == '\r') /* blank lines */
        consume(s);
    if (c == AT_END)
        return 0;
    if (c == READ_FAILED)
        return -1;
    rec->line = s->line;
    if (c != '{')
        return fail_at(s, rec->line, NULL, err, "expected a JSON object, got %s", c == '[' ? "an array"
                       : value_kind(c));
    consume(s);
    unsigned seen = 0;
    int64_t rows = 0, row_len = -1;
    c = skip_space(s, err);
    if (c == '}') {
        consume(s);
    } else {
        for (;;) {
            RS_TRY(read_member(s, rec, &seen, mode, &rows, &row_len, err));
            c = skip_space(s, err);
            if (c < 0 || c == '\n')
                return truncated(s, rec->line, c, err);
            consume(s);
            if (c == '}')
                break;
            if (c != ',')
                return fail_at(s, rec->line, NULL, err, "expected ',' or '}' between keys, got %s", show(c).text);
        }
    }
    c = skip_space(s, err);
    if (c == READ_FAILED)
        return -1;
    if (c != AT_END && c != '\n')
        return fail_at(s, rec->line, NULL, err, "text after the record's closing '}' (one record per line)");
    if (c == '\n')
        consume(s);
    RS_TRY(check_record(s, rec, seen, rows, row_len, mode, err));
    return 1;
}

int rs_mg_rows_begin(rs_mg_stream *s, const rs_mg_record *rec, rs_error *err)
{
    rs_mg_stream_seek(s, rec->indices_at, rec->line);
    return expect(s, rec->line, "top_indices", '[', err);
}

int rs_mg_rows_next(rs_mg_stream *s, const rs_mg_record *rec, int64_t row, int num_experts, int32_t *ids,
                    rs_error *err)
{
    int c = skip_space(s, err);
    if (c < 0 || c == '\n')
        return truncated(s, rec->line, c, err);
    int more = c != ']';
    if (!more || row > 0) {
        consume(s);
        if (more && c != ',')
            return fail_at(s, rec->line, "top_indices", err, "expected ',' or ']' after row %lld, got %s",
                           (long long)row - 1, show(c).text);
    }
    if (!more && row < rec->num_tokens)
        return fail_at(s, rec->line, "top_indices", err, "%lld rows, but num_tokens is %lld (the file changed?)",
                       (long long)row, (long long)rec->num_tokens);
    if (!more)
        return 0;
    if (row >= rec->num_tokens)
        return fail_at(s, rec->line, "top_indices", err, "more than num_tokens = %lld rows (the file changed?)",
                       (long long)rec->num_tokens);
    int64_t n;
    RS_TRY(read_row(s, rec->line, row, ids, rec->topk, &n, err));
    if (n != rec->topk) {
        char key[64];
        snprintf(key, sizeof key, "top_indices[%lld]", (long long)row);
        return fail_at(s, rec->line, key, err, "%lld ids, but topk is %lld", (long long)n, (long long)rec->topk);
    }
    for (int64_t j = 0; j < n; j++)
        if (ids[j] >= num_experts) {
            char key[64];
            snprintf(key, sizeof key, "top_indices[%lld][%lld]", (long long)row, (long long)j);
            return fail_at(s, rec->line, key, err, "expert %d is outside [0, %d)", ids[j], num_experts);
        }
    return 1;
}
