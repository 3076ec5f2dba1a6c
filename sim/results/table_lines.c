/* The lines of the terminal table: one per metric and key, in the order the
 * rows first appear, except that a histogram (a metric whose key has an item
 * taking more than RS_TABLE_BINS_SHOWN values, as expert=0..63) becomes two
 * lines, its largest bin and where it is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/results/table_internal.h"

typedef struct entry {
    const char *metric, *key;
    size_t start, count;  /* its rows in the sorted row indices */
    size_t first;         /* its first row in results order */
    size_t metric_first;  /* the first row of its metric */
    int histogram;       /* -1, or its histogram */
} entry;

static const rs_results *sort_results; /* qsort has no context argument */

static int by_metric_key_index(const void *a, const void *b)
{
    const rs_result_row *x = &sort_results->rows[*(const size_t *)a], *y = &sort_results->rows[*(const size_t *)b];
    int c = strcmp(x->metric, y->metric);
    if (c == 0)
        c = strcmp(x->key, y->key);
    if (c == 0)
        c = (*(const size_t *)a > *(const size_t *)b) - (*(const size_t *)a < *(const size_t *)b);
    return c;
}

static int by_first(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return (x->first > y->first) - (x->first < y->first);
}

/* A metric's lines together, where it first appears, each in order of first appearance. */
static int by_metric_first(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->metric_first != y->metric_first)
        return (x->metric_first > y->metric_first) - (x->metric_first < y->metric_first);
    return by_first(a, b);
}

/* Item `index` of a key "a=1;b=2": its name and value spans; 0 past the end. */
static int key_item(const char *key, int index, const char **name, size_t *name_len, const char **value,
                    size_t *value_len)
{
    const char *s = key;
    for (int i = 0; i < index; i++) {
        s = strchr(s, ';');
        if (!s)
            return 0;
        s++;
    }
    if (!*key)
        return 0;
    size_t len = strcspn(s, ";");
    const char *eq = memchr(s, '=', len);
    *name = s;
    *name_len = eq ? (size_t)(eq - s) : len;
    *value = eq ? eq + 1 : s + len;
    *value_len = eq ? len - (size_t)(eq - s) - 1 : 0;
    return 1;
}

/* Whether name[0..len) is one of the ';'-separated names of `list`. */
static int in_list(const char *list, const char *name, size_t len)
{
    for (const char *s = list; *s;) {
        size_t n = strcspn(s, ";");
        if (n == len && strncmp(s, name, len) == 0)
            return 1;
        s += n;
        if (*s)
            s++;
    }
    return 0;
}

typedef struct item_text {
    char *text; /* "name\x01value" */
} item_text;

static int by_text(const void *a, const void *b)
{
    return strcmp(((const item_text *)a)->text, ((const item_text *)b)->text);
}

/* The names of the key items of entries[0..m) (one metric) that take more
 * than RS_TABLE_BINS_SHOWN values (expert=0..63); when none does, those that
 * take two values or more (i=0..6 and j=1..7: 28 pairs); ';'-joined into
 * dims. An interval's stat=ci_low is never a bin. -1 out of memory. */
static int bin_dimensions(const entry *entries, int m, char *dims, size_t size)
{
    size_t cap = 0, n = 0;
    item_text *items = NULL;
    int rc = 0;
    dims[0] = '\0';
    for (int e = 0; e < m && rc == 0; e++) {
        const char *name, *value;
        size_t name_len, value_len;
        for (int i = 0; key_item(entries[e].key, i, &name, &name_len, &value, &value_len); i++) {
            if (n == cap) {
                size_t grown = cap ? 2 * cap : 64;
                item_text *more = realloc(items, grown * sizeof *items);
                if (!more) {
                    rc = -1;
                    break;
                }
                items = more;
                cap = grown;
            }
            char *text = malloc(name_len + value_len + 2);
            if (!text) {
                rc = -1;
                break;
            }
            snprintf(text, name_len + value_len + 2, "%.*s\x01%.*s", (int)name_len, name, (int)value_len, value);
            items[n++].text = text;
        }
    }
    if (rc == 0) {
        qsort(items, n, sizeof *items, by_text);
        size_t used = 0;
        for (size_t least = RS_TABLE_BINS_SHOWN + 1; used == 0 && least >= 2; least = least > 2 ? 2 : 0)
            for (size_t i = 0; i < n;) {
                size_t name_len = strcspn(items[i].text, "\x01"), distinct = 0, j = i;
                for (; j < n && strncmp(items[j].text, items[i].text, name_len + 1) == 0; j++)
                    distinct += j == i || strcmp(items[j].text, items[j - 1].text) != 0;
                /* intervals, and the groups a breakdown was asked for, are never bins */
                int kept = (name_len == 4 && strncmp(items[i].text, "stat", 4) == 0) ||
                           (name_len == 6 && strncmp(items[i].text, "domain", 6) == 0) ||
                           (name_len == 5 && strncmp(items[i].text, "phase", 5) == 0);
                if (!kept && distinct >= least && used + name_len + 2 < size)
                    used += (size_t)snprintf(dims + used, size - used, "%s%.*s", used ? ";" : "", (int)name_len,
                                             items[i].text);
                i = j;
            }
    }
    for (size_t i = 0; i < n; i++)
        free(items[i].text);
    free(items);
    return rc;
}

/* key with the items named in dims written NAME=*: "expert=3;stat=ci_low" -> "expert=*;stat=ci_low". */
static char *key_with_bins_starred(const char *key, const char *dims)
{
    size_t size = strlen(key) + 2 * strlen(dims) + 8, used = 0;
    char *out = malloc(size);
    if (!out)
        return NULL;
    out[0] = '\0';
    const char *name, *value;
    size_t name_len, value_len;
    for (int i = 0; key_item(key, i, &name, &name_len, &value, &value_len); i++) {
        int bin = in_list(dims, name, name_len);
        size_t item_len = bin ? name_len : (size_t)(value + value_len - name);
        used += (size_t)snprintf(out + used, size - used, "%s%.*s%s", i ? ";" : "", (int)item_len, name,
                                 bin ? "=*" : "");
    }
    return out;
}

typedef struct starred {
    char *key;
    int entry;
} starred;

static int by_starred(const void *a, const void *b)
{
    const starred *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->entry > y->entry) - (x->entry < y->entry);
}

typedef struct histogram {
    char *name_max, *name_at, *dims;
    int first_entry, bins;
} histogram;

/* Finds the histograms among entries[0..m) (one metric, in order of first
 * appearance) and appends them to *hist; -1 out of memory. */
static int find_histograms(entry *entries, int m, histogram **hist, int *num_hist)
{
    char dims[512];
    if (m <= RS_TABLE_BINS_SHOWN || bin_dimensions(entries, m, dims, sizeof dims) != 0)
        return m <= RS_TABLE_BINS_SHOWN ? 0 : -1;
    if (!dims[0])
        return 0;
    starred *keys = calloc((size_t)m, sizeof *keys);
    int rc = keys ? 0 : -1;
    for (int e = 0; e < m && rc == 0; e++) {
        keys[e].entry = e;
        if (!(keys[e].key = key_with_bins_starred(entries[e].key, dims)))
            rc = -1;
    }
    if (rc == 0)
        qsort(keys, (size_t)m, sizeof *keys, by_starred);
    for (int i = 0; rc == 0 && i < m;) {
        int j = i;
        while (j < m && strcmp(keys[j].key, keys[i].key) == 0)
            j++;
        if (j - i > RS_TABLE_BINS_SHOWN) {
            histogram *more = realloc(*hist, (size_t)(*num_hist + 1) * sizeof **hist);
            if (!more) {
                rc = -1;
                break;
            }
            *hist = more;
            histogram *h = &(*hist)[*num_hist];
            memset(h, 0, sizeof *h);
            h->bins = j - i;
            h->first_entry = keys[i].entry; /* the lowest entry: sorted by key, then entry */
            const char *metric = entries[keys[i].entry].metric;
            size_t size = strlen(metric) + strlen(keys[i].key) + 40;
            h->name_max = malloc(size);
            h->name_at = malloc(size);
            h->dims = strdup(dims);
            if (!h->name_max || !h->name_at || !h->dims) {
                free(h->name_max);
                free(h->name_at);
                free(h->dims);
                rc = -1;
                break;
            }
            snprintf(h->name_max, size, "%s[%s] max of %d", metric, keys[i].key, h->bins);
            snprintf(h->name_at, size, "%s[%s] at", metric, keys[i].key);
            for (int k = i; k < j; k++)
                entries[keys[k].entry].histogram = *num_hist;
            (*num_hist)++;
        }
        i = j;
    }
    for (int e = 0; keys && e < m; e++)
        free(keys[e].key);
    free(keys);
    return rc;
}

void rs_table_lines_free(rs_table_lines *t)
{
    for (int i = 0; i < t->num_lines; i++) {
        free(t->lines[i].name);
        free(t->lines[i].bin_items);
    }
    free(t->lines);
    free(t->row_index);
    memset(t, 0, sizeof *t);
}

static int add_line(rs_table_lines *t, char *name, int kind, const size_t *rows, size_t num_rows, char *dims)
{
    if (!name) {
        free(dims);
        return -1;
    }
    t->lines[t->num_lines++] = (rs_table_line){name, kind, rows, num_rows, dims};
    return 0;
}

static char *value_line_name(const entry *e)
{
    size_t size = strlen(e->metric) + strlen(e->key) + 3;
    char *name = malloc(size);
    if (name)
        snprintf(name, size, e->key[0] ? "%s[%s]" : "%s", e->metric, e->key);
    return name;
}

int rs_table_lines_build(const rs_results *r, const size_t *rows, size_t n, rs_table_lines *out)
{
    memset(out, 0, sizeof *out);
    entry *entries = NULL;
    histogram *hist = NULL;
    int num_entries = 0, num_hist = 0, rc = -1;
    out->row_index = malloc((2 * n + 1) * sizeof *out->row_index);
    if (!out->row_index)
        goto done;
    size_t *sorted = out->row_index, *grouped = out->row_index + n;
    memcpy(sorted, rows, n * sizeof *rows);
    sort_results = r;
    qsort(sorted, n, sizeof *sorted, by_metric_key_index);
    if (!(entries = malloc((n + 1) * sizeof *entries)))
        goto done;
    for (size_t i = 0; i < n;) {
        const rs_result_row *row = &r->rows[sorted[i]];
        size_t j = i + 1;
        while (j < n && strcmp(r->rows[sorted[j]].metric, row->metric) == 0 &&
               strcmp(r->rows[sorted[j]].key, row->key) == 0)
            j++;
        entries[num_entries++] = (entry){row->metric, row->key, i, j - i, sorted[i], sorted[i], -1};
        i = j;
    }
    /* sorted by metric: the first row of each metric's entries */
    for (int e = 0, start = 0; e <= num_entries; e++)
        if (e == num_entries || strcmp(entries[e].metric, entries[start].metric) != 0) {
            size_t first = entries[start].first;
            for (int f = start; f < e; f++)
                first = entries[f].first < first ? entries[f].first : first;
            for (int f = start; f < e; f++)
                entries[f].metric_first = first;
            start = e;
        }
    qsort(entries, (size_t)num_entries, sizeof *entries, by_metric_first);
    /* per metric: its entries gathered in order of first appearance */
    int *order = malloc(((size_t)num_entries + 1) * sizeof *order);
    entry *same = malloc(((size_t)num_entries + 1) * sizeof *same);
    char *done_metric = calloc((size_t)num_entries + 1, 1);
    int ok = order && same && done_metric;
    for (int e = 0; ok && e < num_entries; e++) {
        if (done_metric[e])
            continue;
        int m = 0;
        for (int f = e; f < num_entries; f++)
            if (!done_metric[f] && strcmp(entries[f].metric, entries[e].metric) == 0) {
                done_metric[f] = 1;
                order[m] = f;
                same[m++] = entries[f];
            }
        int before = num_hist;
        if (find_histograms(same, m, &hist, &num_hist) != 0)
            ok = 0;
        for (int k = 0; ok && k < m; k++)
            entries[order[k]].histogram = same[k].histogram;
        for (int h = before; ok && h < num_hist; h++)
            hist[h].first_entry = order[hist[h].first_entry];
    }
    free(order);
    free(same);
    free(done_metric);
    if (!ok || !(out->lines = malloc(((size_t)num_entries + (size_t)num_hist + 1) * sizeof *out->lines)))
        goto done;
    size_t used = 0;
    for (int e = 0; e < num_entries; e++) {
        const entry *x = &entries[e];
        if (x->histogram < 0) {
            if (add_line(out, value_line_name(x), RS_TABLE_VALUE, sorted + x->start, x->count, NULL) != 0)
                goto done;
            continue;
        }
        histogram *h = &hist[x->histogram];
        if (h->first_entry != e)
            continue;
        size_t start = used;
        for (int f = e; f < num_entries; f++)
            if (entries[f].histogram == x->histogram) {
                memcpy(grouped + used, sorted + entries[f].start, entries[f].count * sizeof *grouped);
                used += entries[f].count;
            }
        int added = add_line(out, h->name_max, RS_TABLE_MAX, grouped + start, used - start, NULL);
        h->name_max = NULL;
        if (added == 0)
            added = add_line(out, h->name_at, RS_TABLE_AT, grouped + start, used - start, h->dims);
        h->name_at = NULL;
        h->dims = NULL;
        if (added != 0)
            goto done;
        out->histograms++;
    }
    rc = 0;
done:
    for (int h = 0; h < num_hist; h++) {
        free(hist[h].name_max);
        free(hist[h].name_at);
        free(hist[h].dims);
    }
    free(hist);
    free(entries);
    if (rc != 0)
        rs_table_lines_free(out);
    return rc;
}
