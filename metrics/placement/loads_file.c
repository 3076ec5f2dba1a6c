/* Reading expert loads (loads_file.h): SGLang's logical_count JSON or a CSV
 * of layers x experts. The files are L x E numbers, read whole. */
#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/read_file.h"
#include "metrics/placement/loads_file.h"

/* Large enough for any model (DeepSeek-V3: 58 x 256); a bigger table is a wrong file. */
#define MAX_LOAD_CELLS (1L << 26)

typedef struct table {
    double *v;
    int rows, cols;
    size_t cap;
} table;

static int check_value(double x, const char *path, int row, int col, rs_error *err)
{
    RS_CHECK(isfinite(x) && x >= 0, err, "%s: layer %d expert %d: load %g is not a finite number >= 0", path, row, col,
             x);
    return 0;
}

static int append(table *t, size_t at, double x, rs_error *err, const char *path)
{
    if (at >= t->cap) {
        RS_CHECK(at < (size_t)MAX_LOAD_CELLS, err, "%s: more than %ld loads; not a loads file", path, MAX_LOAD_CELLS);
        size_t cap = t->cap ? 2 * t->cap : 1024;
        double *v = realloc(t->v, cap * sizeof *v);
        RS_CHECK(v, err, "%s: out of memory", path);
        t->v = v;
        t->cap = cap;
    }
    t->v[at] = x;
    return 0;
}

static int read_json(const char *text, const char *path, table *t, rs_error *err)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(text, &end, 1);
    if (!doc)
        return rs_fail(err, "%s: not valid JSON near byte %ld", path, (long)(end ? end - text : 0));
    const cJSON *rows = doc;
    int rc = 0;
    if (cJSON_IsObject(doc)) {
        rows = cJSON_GetObjectItemCaseSensitive(doc, "logical_count");
        if (!rows)
            rc = rs_fail(err, "%s: no field logical_count (expected {\"logical_count\": [[...], ...]})", path);
    }
    if (rc == 0 && !cJSON_IsArray(rows))
        rc = rs_fail(err, "%s: logical_count must be an array of layers, each an array of expert loads", path);
    int row = 0;
    for (const cJSON *r = rc == 0 ? rows->child : NULL; r && rc == 0; r = r->next, row++) {
        if (!cJSON_IsArray(r)) {
            rc = rs_fail(err, "%s: logical_count[%d] is not an array of expert loads", path, row);
            break;
        }
        const int cols = cJSON_GetArraySize(r);
        if (row == 0)
            t->cols = cols;
        if (cols != t->cols || cols == 0) {
            rc = rs_fail(err, "%s: logical_count[%d] has %d experts, logical_count[0] has %d", path, row, cols,
                         t->cols);
            break;
        }
        int col = 0;
        for (const cJSON *x = r->child; x && rc == 0; x = x->next, col++) {
            if (!cJSON_IsNumber(x))
                rc = rs_fail(err, "%s: logical_count[%d][%d] is not a number", path, row, col);
            else if (check_value(x->valuedouble, path, row, col, err) != 0 ||
                     append(t, (size_t)row * (size_t)cols + (size_t)col, x->valuedouble, err, path) != 0)
                rc = -1;
        }
    }
    t->rows = row;
    if (rc == 0 && row == 0)
        rc = rs_fail(err, "%s: logical_count has no layers", path);
    cJSON_Delete(doc);
    return rc;
}

/* One CSV line's numbers; returns the count, or -1 when a field is not a number. */
static int parse_csv_line(char *line, table *t, size_t at, const char *path, int row, rs_error *err, int *bad_col)
{
    int col = 0;
    char *p = line;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        char *end;
        errno = 0;
        const double x = strtod(p, &end);
        char *q = end;
        while (*q == ' ' || *q == '\t' || *q == '\r')
            q++;
        if (end == p || (*q != ',' && *q != '\0')) {
            *bad_col = col;
            return -1;
        }
        if (check_value(x, path, row, col, err) != 0 || append(t, at + (size_t)col, x, err, path) != 0)
            return -2;
        col++;
        if (*q == '\0')
            return col;
        p = q + 1;
    }
}

static int read_csv(char *text, const char *path, table *t, rs_error *err)
{
    int line_no = 0, row = 0;
    for (char *line = text; line && *line; line_no++) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (*s) {
            int bad_col = 0;
            const int n = parse_csv_line(s, t, (size_t)row * (size_t)(t->cols > 0 ? t->cols : 0), path, row, err,
                                         &bad_col);
            if (n == -2)
                return -1;
            if (n == -1) {
                RS_CHECK(row == 0 && line_no == 0, err, "%s: line %d, column %d: not a number", path, line_no + 1,
                         bad_col + 1);
            } else {
                if (row == 0)
                    t->cols = n;
                RS_CHECK(n == t->cols, err, "%s: line %d has %d loads, the first layer has %d", path, line_no + 1, n,
                         t->cols);
                row++;
            }
        }
        line = next;
    }
    t->rows = row;
    RS_CHECK(row > 0, err, "%s: no rows of loads", path);
    return 0;
}

int rs_placement_loads_read(const char *path, double **loads, int *L, int *E, rs_error *err)
{
    *loads = NULL;
    if (rs_is_directory(path))
        return rs_fail(err, "%s: is a directory, expected a loads file (JSON logical_count or CSV)", path);
    char *text = rs_read_file(path);
    if (!text)
        return rs_fail(err, "%s: cannot read: %s", path, strerror(errno));
    const char *s = text;
    while (isspace((unsigned char)*s))
        s++;
    table t = {0};
    const int rc = (*s == '{' || *s == '[') ? read_json(text, path, &t, err) : read_csv(text, path, &t, err);
    free(text);
    if (rc != 0) {
        free(t.v);
        return -1;
    }
    *loads = t.v;
    *L = t.rows;
    *E = t.cols;
    return 0;
}
