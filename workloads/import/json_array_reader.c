#include "workloads/import/json_array_reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json_keys.h"

enum { EXPECT_OPEN, EXPECT_FIRST, EXPECT_ELEMENT, EXPECT_SEPARATOR, AFTER_ARRAY };
enum { READ_BLOCK = 1 << 16, END_OF_INPUT = -1, READ_FAILED = -2 };

int rs_json_array_open(rs_json_array_reader *r, const char *path, const char *label, rs_error *err)
{
    memset(r, 0, sizeof *r);
    r->label = label;
    r->line = 1;
    errno = 0;
    /* gzclose closes the descriptor it reads, so stdin is read through a copy */
    int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : -1;
    r->gz = fd >= 0 ? gzdopen(fd, "rb") : strcmp(path, "-") != 0 ? gzopen(path, "rb") : NULL;
    if (!r->gz && fd >= 0)
        close(fd);
    RS_CHECK(r->gz, err, "%s: cannot open (%s)", label, errno ? strerror(errno) : "out of memory");
    r->in = malloc(READ_BLOCK);
    RS_CHECK(r->in, err, "%s: out of memory", label);
    return 0;
}

void rs_json_array_close(rs_json_array_reader *r)
{
    if (r->gz)
        gzclose(r->gz);
    free(r->in);
    free(r->element);
    memset(r, 0, sizeof *r);
}

/* The next byte without taking it; END_OF_INPUT or READ_FAILED (err set). */
static int peek(rs_json_array_reader *r, rs_error *err)
{
    if (r->at == r->len && !r->eof) {
        int got = gzread(r->gz, r->in, READ_BLOCK);
        if (got < 0) {
            int code = Z_OK;
            const char *why = gzerror(r->gz, &code);
            rs_fail(err, "%s: read error: %s", r->label, code == Z_ERRNO ? strerror(errno) : why);
            return READ_FAILED;
        }
        r->at = 0;
        r->len = (size_t)got;
        r->eof = got == 0;
    }
    return r->at < r->len ? r->in[r->at] : END_OF_INPUT;
}

/* A byte for a message: 'x', or byte 0xNN when it is not printable ASCII. */
static const char *shown(int c, char buf[16])
{
    if (c >= 32 && c < 127)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", (unsigned)c & 0xffu);
    return buf;
}

static void take(rs_json_array_reader *r)
{
    if (r->in[r->at++] == '\n')
        r->line++;
}

/* Skips white space; returns the next byte as peek does. */
static int skip_space(rs_json_array_reader *r, rs_error *err)
{
    for (;;) {
        int c = peek(r, err);
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return c;
        take(r);
    }
}

static int append(rs_json_array_reader *r, int c, rs_error *err)
{
    if (r->element_len + 2 > r->element_cap) {
        RS_CHECK(r->element_cap < RS_JSON_ARRAY_MAX_ELEMENT, err,
                 "%s: record %lld (line %lld) is longer than %zu MiB", r->label, (long long)r->index,
                 (long long)r->element_line, RS_JSON_ARRAY_MAX_ELEMENT >> 20);
        size_t cap = r->element_cap ? 2 * r->element_cap : 4096;
        char *grown = realloc(r->element, cap);
        RS_CHECK(grown, err, "%s: out of memory for record %lld", r->label, (long long)r->index);
        r->element = grown;
        r->element_cap = cap;
    }
    r->element[r->element_len++] = (char)c;
    return 0;
}

/* Copies one element's text: up to a ',' or ']' outside strings and
 * brackets (left unread), or through the bracket that closes it. Brackets
 * are only counted here; cJSON checks that they match. */
static int scan_element(rs_json_array_reader *r, rs_error *err)
{
    r->element_len = 0;
    r->element_line = r->line;
    int depth = 0, in_string = 0, escaped = 0;
    for (;;) {
        int c = peek(r, err);
        if (c == READ_FAILED)
            return -1;
        RS_CHECK(c != END_OF_INPUT, err, "%s: truncated: record %lld (line %lld) ends with the input, the array is "
                 "never closed", r->label, (long long)r->index, (long long)r->element_line);
        if (in_string) {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']' || c == ',') {
            if (depth == 0)
                break; /* the element's end; the array's separator or end */
            if (c != ',' && --depth == 0) {
                take(r);
                RS_TRY(append(r, c, err));
                break;
            }
        }
        take(r);
        RS_TRY(append(r, c, err));
    }
    r->element[r->element_len] = '\0';
    return 0;
}

/* Line and column of offset in the current element. */
static void element_position(const rs_json_array_reader *r, size_t offset, long long *line, long long *column)
{
    *line = (long long)r->element_line;
    *column = 1;
    for (size_t i = 0; i < offset && i < r->element_len; i++) {
        if (r->element[i] == '\n') {
            ++*line;
            *column = 1;
        } else {
            ++*column;
        }
    }
}

static int parse_element(rs_json_array_reader *r, cJSON **element, rs_error *err)
{
    const char *end = NULL;
    cJSON *value = cJSON_ParseWithLengthOpts(r->element, r->element_len, &end, 0);
    size_t offset = end ? (size_t)(end - r->element) : 0;
    while (value && offset < r->element_len && strchr(" \t\r\n", r->element[offset]))
        offset++;
    if (!value || offset < r->element_len) {
        long long line = 0, column = 0;
        element_position(r, offset, &line, &column);
        cJSON_Delete(value);
        return rs_fail(err, "%s: record %lld: malformed JSON at line %lld, column %lld", r->label,
                       (long long)r->index, line, column);
    }
    char key[256];
    if (rs_json_duplicate_key(value, key, sizeof key)) {
        for (char *k = key; *k; k++) /* the message stays one line */
            if ((unsigned char)*k < 32)
                *k = '?';
        cJSON_Delete(value);
        return rs_fail(err, "%s: record %lld (line %lld): %s: key given twice in one object", r->label,
                       (long long)r->index, (long long)r->element_line, key);
    }
    *element = value;
    return 0;
}

static int truncated(const rs_json_array_reader *r, rs_error *err)
{
    if (r->index == 0)
        return rs_fail(err, "%s: truncated: the input ends before the array's first record or its ']'", r->label);
    return rs_fail(err, "%s: truncated: the input ends after record %lld, the array is never closed", r->label,
                   (long long)r->index - 1);
}

int rs_json_array_next(rs_json_array_reader *r, cJSON **element, rs_error *err)
{
    *element = NULL;
    char buf[16];
    for (;;) {
        int c = skip_space(r, err);
        if (c == READ_FAILED)
            return -1;
        switch (r->state) {
        case EXPECT_OPEN:
            RS_CHECK(c != END_OF_INPUT, err, "%s: empty input, expected a JSON array", r->label);
            RS_CHECK(c == '[', err, "%s: line %lld: expected a JSON array ('['), got %s", r->label,
                     (long long)r->line, shown(c, buf));
            take(r);
            r->state = EXPECT_FIRST;
            break;
        case EXPECT_FIRST:
        case EXPECT_ELEMENT:
            if (c == END_OF_INPUT)
                return truncated(r, err);
            if (c == ']' && r->state == EXPECT_FIRST) {
                take(r);
                r->state = AFTER_ARRAY;
                break;
            }
            RS_CHECK(c != ']' && c != ',' && c != '}', err, "%s: line %lld: expected record %lld, got %s", r->label,
                     (long long)r->line, (long long)r->index, shown(c, buf));
            RS_TRY(scan_element(r, err));
            RS_TRY(parse_element(r, element, err));
            r->index++;
            r->state = EXPECT_SEPARATOR;
            return 1;
        case EXPECT_SEPARATOR:
            if (c == END_OF_INPUT)
                return truncated(r, err);
            RS_CHECK(c == ',' || c == ']', err, "%s: line %lld: expected ',' or ']' after record %lld, got %s",
                     r->label, (long long)r->line, (long long)r->index - 1, shown(c, buf));
            take(r);
            r->state = c == ']' ? AFTER_ARRAY : EXPECT_ELEMENT;
            break;
        default: /* AFTER_ARRAY */
            if (c == END_OF_INPUT)
                return 0;
            return rs_fail(err, "%s: line %lld: unexpected text after the array", r->label, (long long)r->line);
        }
    }
}
