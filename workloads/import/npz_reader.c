/* numpy .npz archives through libzip, .npy headers parsed here (npz_reader.h). */
#include "workloads/import/npz_reader.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

enum {
    MAX_HEADER = 1 << 16,      /* numpy itself refuses headers over 10000 bytes unless told otherwise */
    MAX_STRING_CHARS = 1 << 12, /* a request id */
    READ_BUFFER = 1 << 13,
};

struct npz_archive {
    zip_t *zip;
    const char *path;
};

int rs_npz_open(npz_archive **out, const char *path, rs_error *err)
{
    *out = NULL;
    int code = 0;
    /* no ZIP_CHECKCONS: like Python's zipfile (np.load), bytes after the
     * archive are tolerated; a member's CRC is checked when read to its end */
    zip_t *zip = zip_open(path, ZIP_RDONLY, &code);
    if (!zip) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, code);
        int rc = rs_fail(err, "%s: not a readable .npz (zip: %s)", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return rc;
    }
    npz_archive *a = calloc(1, sizeof *a);
    if (!a) {
        zip_discard(zip);
        return rs_fail(err, "out of memory");
    }
    a->zip = zip;
    a->path = path;
    *out = a;
    return 0;
}

void rs_npz_close(npz_archive *a)
{
    if (!a)
        return;
    zip_discard(a->zip); /* opened read-only: nothing to write back */
    free(a);
}

static zip_int64_t locate(npz_archive *a, const char *name)
{
    char member[512];
    int n = snprintf(member, sizeof member, "%s.npy", name);
    if (n < 0 || (size_t)n >= sizeof member)
        return -1;
    return zip_name_locate(a->zip, member, 0);
}

int rs_npz_has(npz_archive *a, const char *name) { return locate(a, name) >= 0; }

void rs_npz_names(npz_archive *a, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    zip_int64_t n = zip_get_num_entries(a->zip, 0);
    for (zip_int64_t i = 0; i < n && used < size; i++) {
        const char *name = zip_get_name(a->zip, (zip_uint64_t)i, 0);
        if (!name)
            continue;
        size_t len = strlen(name);
        if (len > 4 && strcmp(name + len - 4, ".npy") == 0)
            len -= 4;
        used += (size_t)snprintf(buf + used, size - used, "%s%.*s", used ? ", " : "", (int)(len > 64 ? 64 : len),
                                 name);
    }
    if (!buf[0])
        snprintf(buf, size, "no arrays");
}

/* ---- the header ---------------------------------------------------------- */

static __attribute__((format(printf, 3, 4))) int fail_header(const npy_array *arr, rs_error *err, const char *fmt, ...)
{
    char problem[RS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return rs_fail(err, "%s: %s.npy: %s", arr->archive->path, arr->name, problem);
}

/* Exactly n bytes of the member; 0, or -1 with a message. */
static int read_exact(npy_array *arr, void *buf, size_t n, const char *what, rs_error *err)
{
    size_t got = 0;
    while (got < n) {
        zip_int64_t r = zip_fread(arr->member, (char *)buf + got, n - got);
        if (r < 0)
            return fail_header(arr, err, "%s: cannot read (zip: %s)", what, zip_file_strerror(arr->member));
        if (r == 0)
            return fail_header(arr, err, "%s: the member ends after %zu of %zu bytes", what, got, n);
        got += (size_t)r;
    }
    return 0;
}

typedef struct cursor {
    const char *s;
    size_t at, len;
} cursor;

static void skip_space(cursor *c)
{
    while (c->at < c->len && (c->s[c->at] == ' ' || c->s[c->at] == '\t' || c->s[c->at] == '\n' || c->s[c->at] == '\r'))
        c->at++;
}

static int take(cursor *c, char ch)
{
    skip_space(c);
    if (c->at < c->len && c->s[c->at] == ch) {
        c->at++;
        return 1;
    }
    return 0;
}

/* A Python string literal in single or double quotes, no escapes (numpy writes none). */
static int quoted(cursor *c, char *out, size_t size)
{
    skip_space(c);
    if (c->at >= c->len || (c->s[c->at] != '\'' && c->s[c->at] != '"'))
        return -1;
    char q = c->s[c->at++];
    size_t start = c->at;
    while (c->at < c->len && c->s[c->at] != q && c->s[c->at] != '\\')
        c->at++;
    if (c->at >= c->len || c->s[c->at] != q || c->at - start >= size)
        return -1;
    memcpy(out, c->s + start, c->at - start);
    out[c->at - start] = '\0';
    c->at++;
    return 0;
}

static int word(cursor *c, const char *w)
{
    skip_space(c);
    size_t n = strlen(w);
    if (c->len - c->at >= n && memcmp(c->s + c->at, w, n) == 0) {
        c->at += n;
        return 1;
    }
    return 0;
}

/* (d0, d1, ...) with an optional trailing comma; () is a 0-d array. */
static int shape_tuple(npy_array *arr, cursor *c, rs_error *err)
{
    if (!take(c, '('))
        return fail_header(arr, err, "shape: not a tuple");
    arr->ndim = 0;
    for (;;) {
        if (take(c, ')'))
            return 0;
        skip_space(c);
        int64_t v = 0;
        size_t digits = 0;
        while (c->at < c->len && c->s[c->at] >= '0' && c->s[c->at] <= '9') {
            if (++digits > 15)
                return fail_header(arr, err, "shape: a dimension of more than 15 digits");
            v = v * 10 + (c->s[c->at++] - '0');
        }
        if (digits == 0)
            return fail_header(arr, err, "shape: not a tuple of integers");
        if (arr->ndim == NPY_MAX_DIMS)
            return fail_header(arr, err, "shape: more than %d dimensions", NPY_MAX_DIMS);
        arr->shape[arr->ndim++] = v;
        if (!take(c, ',')) {
            if (take(c, ')'))
                return 0;
            return fail_header(arr, err, "shape: not a tuple of integers");
        }
    }
}

/* '<i4', '|u1', '<U12', '|S5', '<f8': byte order, kind, size. */
static int parse_descr(npy_array *arr, rs_error *err)
{
    const char *d = arr->descr;
    if (d[0] == '>' || (d[0] == '=' && d[1] != '\0'))
        return fail_header(arr, err, "descr: '%s' is not little-endian (save it on a little-endian machine, or "
                                     "with .astype('<%s'))", d, d + 1);
    if (d[0] != '<' && d[0] != '|')
        return fail_header(arr, err, "descr: '%s' is not a plain numpy type (a structured or pickled array?)", d);
    char kind = d[1];
    int64_t n = 0;
    size_t i = 2;
    for (; d[i] >= '0' && d[i] <= '9' && i < 10; i++)
        n = n * 10 + (d[i] - '0');
    if (d[i] != '\0' || i == 2)
        return fail_header(arr, err, "descr: '%s' is not a type routesim reads%s", d,
                           kind == 'O' ? " (an object array, pickled: save plain integers or a str)" : "");
    switch (kind) {
    case 'i':
    case 'u':
        if (n != 1 && n != 2 && n != 4 && n != 8)
            break;
        arr->kind = NPY_INT;
        arr->item_size = (int)n;
        arr->is_signed = kind == 'i';
        return 0;
    case 'f':
        if (n != 4 && n != 8)
            break;
        arr->kind = NPY_FLOAT;
        arr->item_size = (int)n;
        return 0;
    case 'U':
    case 'S':
        if (n < 1 || n > MAX_STRING_CHARS)
            break;
        arr->kind = kind == 'U' ? NPY_UNICODE : NPY_BYTES;
        arr->item_size = (int)(kind == 'U' ? 4 * n : n);
        return 0;
    default:
        break;
    }
    return fail_header(arr, err, "descr: '%s' is not a type routesim reads", d);
}

/* {'descr': '<i4', 'fortran_order': False, 'shape': (3, 4), } */
static int parse_header(npy_array *arr, const char *text, size_t len, rs_error *err)
{
    cursor c = {text, 0, len};
    int seen_descr = 0, seen_order = 0, seen_shape = 0;
    if (!take(&c, '{'))
        return fail_header(arr, err, "header: not a dict");
    for (;;) {
        if (take(&c, '}'))
            break;
        char key[32];
        if (quoted(&c, key, sizeof key) != 0 || !take(&c, ':'))
            return fail_header(arr, err, "header: not a dict of descr, fortran_order and shape");
        if (strcmp(key, "descr") == 0) {
            if (quoted(&c, arr->descr, sizeof arr->descr) != 0)
                return fail_header(arr, err, "descr: not a type string (a structured array?)");
            seen_descr++;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (word(&c, "True"))
                arr->fortran_order = 1;
            else if (word(&c, "False"))
                arr->fortran_order = 0;
            else
                return fail_header(arr, err, "fortran_order: neither True nor False");
            seen_order++;
        } else if (strcmp(key, "shape") == 0) {
            RS_TRY(shape_tuple(arr, &c, err));
            seen_shape++;
        } else {
            return fail_header(arr, err, "header: key '%s' is not one of descr, fortran_order, shape", key);
        }
        if (!take(&c, ',')) {
            if (take(&c, '}'))
                break;
            return fail_header(arr, err, "header: not a dict of descr, fortran_order and shape");
        }
    }
    skip_space(&c);
    if (c.at != c.len)
        return fail_header(arr, err, "header: text after the dict");
    if (seen_descr != 1 || seen_order != 1 || seen_shape != 1)
        return fail_header(arr, err, "header: %s", seen_descr != 1 ? "descr missing or given twice"
                                                   : seen_order != 1 ? "fortran_order missing or given twice"
                                                                     : "shape missing or given twice");
    RS_TRY(parse_descr(arr, err));
    if (arr->fortran_order)
        return fail_header(arr, err, "fortran_order: True (column-major): save a C-order array "
                                     "(np.ascontiguousarray)");
    arr->count = 1;
    for (int i = 0; i < arr->ndim; i++) {
        if (arr->shape[i] != 0 && arr->count > INT64_MAX / arr->item_size / arr->shape[i])
            return fail_header(arr, err, "shape: more elements than a file can hold");
        arr->count *= arr->shape[i];
    }
    return 0;
}

int rs_npy_open(npz_archive *a, const char *name, npy_array *arr, rs_error *err)
{
    memset(arr, 0, sizeof *arr);
    arr->archive = a;
    arr->name = name;
    zip_int64_t index = locate(a, name);
    if (index < 0) {
        char names[512];
        rs_npz_names(a, names, sizeof names);
        return rs_fail(err, "%s: no array %s (the .npz holds: %s)", a->path, name, names);
    }
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(a->zip, (zip_uint64_t)index, 0, &st) != 0)
        return fail_header(arr, err, "cannot read its entry (zip: %s)", zip_strerror(a->zip));
    arr->member = zip_fopen_index(a->zip, (zip_uint64_t)index, 0);
    if (!arr->member)
        return fail_header(arr, err, "cannot open (zip: %s)", zip_strerror(a->zip));

    unsigned char pre[12];
    RS_TRY(read_exact(arr, pre, 8, "magic", err));
    if (memcmp(pre, "\x93NUMPY", 6) != 0)
        return fail_header(arr, err, "magic: not a .npy file (no \\x93NUMPY)");
    const int major = pre[6], minor = pre[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return fail_header(arr, err, "version: %d.%d, not 1.0, 2.0 or 3.0", major, minor);
    size_t len_bytes = major == 1 ? 2 : 4;
    RS_TRY(read_exact(arr, pre + 8, len_bytes, "header length", err));
    uint64_t header_len = pre[8] | (uint64_t)pre[9] << 8;
    if (major > 1)
        header_len |= (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
    if (header_len > MAX_HEADER)
        return fail_header(arr, err, "header length: %llu bytes, more than %d", (unsigned long long)header_len,
                           MAX_HEADER);
    char *text = malloc(header_len + 1);
    if (!text)
        return rs_fail(err, "out of memory");
    int rc = read_exact(arr, text, header_len, "header", err);
    if (rc == 0) {
        text[header_len] = '\0';
        rc = strlen(text) == header_len ? parse_header(arr, text, header_len, err)
                                        : fail_header(arr, err, "header: a NUL byte in the dict");
    }
    free(text);
    RS_TRY(rc);
    if (st.valid & ZIP_STAT_SIZE) {
        uint64_t data = st.size >= 8 + len_bytes + header_len ? st.size - 8 - len_bytes - header_len : 0;
        uint64_t want = (uint64_t)arr->count * (uint64_t)arr->item_size;
        if (data != want)
            return fail_header(arr, err, "data: the shape needs %llu bytes (%lld elements of %d bytes), the member "
                                         "holds %llu (truncated?)",
                               (unsigned long long)want, (long long)arr->count, arr->item_size,
                               (unsigned long long)data);
    }
    return 0;
}

/* After the last element: the member must end there, which also has libzip check its CRC. */
static int check_end(npy_array *arr, rs_error *err)
{
    char extra;
    zip_int64_t r = zip_fread(arr->member, &extra, 1);
    if (r < 0)
        return fail_header(arr, err, "data: cannot read (zip: %s)", zip_file_strerror(arr->member));
    if (r > 0)
        return fail_header(arr, err, "data: bytes after the last element");
    return 0;
}

static int64_t decode_int(const unsigned char *p, int size, int is_signed)
{
    uint64_t v = 0;
    for (int b = size - 1; b >= 0; b--)
        v = v << 8 | p[b];
    if (is_signed && size < 8 && (v >> (8 * size - 1)) & 1)
        v |= ~(uint64_t)0 << (8 * size);
    return (int64_t)v;
}

int rs_npy_read_ints(npy_array *arr, int64_t *out, int64_t n, rs_error *err)
{
    if (arr->kind != NPY_INT)
        return fail_header(arr, err, "descr: '%s' is not an integer type", arr->descr);
    if (n < 0 || n > arr->count - arr->read)
        return fail_header(arr, err, "data: %lld elements asked for, %lld left", (long long)n,
                           (long long)(arr->count - arr->read));
    unsigned char buf[READ_BUFFER];
    const int64_t per = READ_BUFFER / arr->item_size;
    for (int64_t done = 0; done < n;) {
        int64_t m = n - done < per ? n - done : per;
        RS_TRY(read_exact(arr, buf, (size_t)(m * arr->item_size), "data", err));
        for (int64_t i = 0; i < m; i++)
            out[done + i] = decode_int(buf + i * arr->item_size, arr->item_size, arr->is_signed);
        done += m;
    }
    arr->read += n;
    return n > 0 && arr->read == arr->count ? check_end(arr, err) : 0;
}

/* One code point as UTF-8; 0 when it is not a Unicode scalar value. */
static size_t put_utf8(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int rs_npy_read_scalar_text(npy_array *arr, char *out, size_t size, rs_error *err)
{
    if (arr->count != 1 || arr->ndim > 1)
        return fail_header(arr, err, "shape: %s, expected one value", arr->count == 0 ? "empty" : "several values");
    if (arr->kind == NPY_INT) {
        int64_t v = 0;
        RS_TRY(rs_npy_read_ints(arr, &v, 1, err));
        if (arr->is_signed)
            snprintf(out, size, "%lld", (long long)v);
        else
            snprintf(out, size, "%llu", (unsigned long long)v);
        return 0;
    }
    if (arr->kind == NPY_FLOAT)
        return fail_header(arr, err, "descr: '%s', expected a str or an integer", arr->descr);
    unsigned char *raw = malloc((size_t)arr->item_size);
    if (!raw)
        return rs_fail(err, "out of memory");
    int rc = read_exact(arr, raw, (size_t)arr->item_size, "data", err);
    size_t used = 0;
    if (arr->kind == NPY_BYTES) {
        for (int i = 0; rc == 0 && i < arr->item_size && raw[i]; i++) {
            if (used + 1 >= size)
                rc = fail_header(arr, err, "data: longer than %zu bytes", size - 1);
            else
                out[used++] = (char)raw[i];
        }
    } else {
        for (int i = 0; rc == 0 && i < arr->item_size / 4; i++) {
            uint32_t cp = (uint32_t)decode_int(raw + 4 * i, 4, 0);
            if (cp == 0)
                break; /* numpy pads a shorter string with NULs */
            char utf8[4];
            size_t n = put_utf8(cp, utf8);
            if (n == 0)
                rc = fail_header(arr, err, "data: U+%X is not a character", (unsigned)cp);
            else if (used + n >= size)
                rc = fail_header(arr, err, "data: longer than %zu bytes", size - 1);
            else {
                memcpy(out + used, utf8, n);
                used += n;
            }
        }
    }
    free(raw);
    out[used] = '\0';
    RS_TRY(rc);
    arr->read = 1;
    return check_end(arr, err);
}

void rs_npy_close(npy_array *arr)
{
    if (arr->member)
        zip_fclose(arr->member);
    arr->member = NULL;
}
