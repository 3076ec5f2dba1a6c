/* Column headers of the terminal table: run labels, abbreviated when one is
 * too wide, and always distinct (a table whose columns read alike tells
 * nothing). A label is "router:name=value,name=value" (or a name of the
 * user's own, kept as it is unless too wide). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/results/table_internal.h"

enum { MAX_ITEMS = 64 };

typedef struct parsed_label {
    char router[256];
    int num_items;
    char *items[MAX_ITEMS]; /* "name=value"; a part without '=' joins the item before it (a list value) */
    int dropped[MAX_ITEMS];
} parsed_label;

static void free_parsed(parsed_label *p)
{
    for (int i = 0; i < p->num_items; i++)
        free(p->items[i]);
    p->num_items = 0;
}

/* -1 out of memory; a label with no ':' or too many items gets no items. */
static int parse_label(const char *label, parsed_label *p)
{
    memset(p, 0, sizeof *p);
    const char *colon = strchr(label, ':');
    snprintf(p->router, sizeof p->router, "%.*s", colon ? (int)(colon - label) : (int)strlen(label), label);
    if (!colon)
        return 0;
    for (const char *s = colon + 1; *s;) {
        size_t len = strcspn(s, ",");
        int joins = p->num_items > 0 && !memchr(s, '=', len);
        if (!joins && p->num_items == MAX_ITEMS) {
            free_parsed(p);
            snprintf(p->router, sizeof p->router, "%s", label);
            return 0;
        }
        if (joins) {
            char **last = &p->items[p->num_items - 1];
            size_t old = strlen(*last);
            char *grown = realloc(*last, old + len + 2);
            if (!grown)
                return -1;
            snprintf(grown + old, len + 2, ",%.*s", (int)len, s);
            *last = grown;
        } else if (!(p->items[p->num_items++] = strndup(s, len))) {
            p->num_items--;
            return -1;
        }
        s += len;
        if (*s)
            s++;
    }
    return 0;
}

/* "router:a=1,b=2" without the dropped items, names cut to name_max characters
 * (a cut name ends in '.'); router names cut to router_max. */
static void compose(const parsed_label *p, size_t name_max, size_t router_max, char *buf, size_t size)
{
    size_t rlen = strlen(p->router);
    size_t used = rlen > router_max ? (size_t)snprintf(buf, size, "%.*s.", (int)router_max - 1, p->router)
                                    : (size_t)snprintf(buf, size, "%s", p->router);
    int first = 1;
    for (int i = 0; i < p->num_items && used < size; i++) {
        if (p->dropped[i])
            continue;
        const char *item = p->items[i];
        const char *eq = strchr(item, '=');
        size_t nlen = eq ? (size_t)(eq - item) : strlen(item);
        if (nlen > name_max)
            used += (size_t)snprintf(buf + used, size - used, "%s%.*s.%s", first ? ":" : ",", (int)name_max - 1, item,
                                     eq ? eq : "");
        else
            used += (size_t)snprintf(buf + used, size - used, "%s%s", first ? ":" : ",", item);
        first = 0;
    }
}

/* Items that every member shares (members: the labels with items, of
 * `router` when it is not NULL; two or more) are dropped from them all, and
 * named once in notes. */
static void drop_common_items(parsed_label *p, int n, const char *router, rs_text *notes)
{
    int members = 0, first = -1;
    for (int b = 0; b < n; b++)
        if (p[b].num_items > 0 && (!router || strcmp(p[b].router, router) == 0)) {
            members++;
            first = first < 0 ? b : first;
        }
    if (members < 2)
        return;
    char shared[512] = "";
    size_t used = 0;
    int count = 0;
    for (int i = 0; i < p[first].num_items; i++) {
        if (p[first].dropped[i])
            continue;
        int everywhere = 1;
        for (int b = 0; b < n && everywhere; b++) {
            if (p[b].num_items == 0 || (router && strcmp(p[b].router, router) != 0))
                continue;
            int found = 0;
            for (int j = 0; j < p[b].num_items && !found; j++)
                found = !p[b].dropped[j] && strcmp(p[first].items[i], p[b].items[j]) == 0;
            everywhere = found;
        }
        if (!everywhere)
            continue;
        count++;
        if (used < sizeof shared)
            used += (size_t)snprintf(shared + used, sizeof shared - used, "%s%s", used ? "," : "", p[first].items[i]);
        for (int b = 0; b < n; b++)
            for (int j = 0; j < p[b].num_items && (!router || strcmp(p[b].router, router) == 0); j++)
                if (!p[b].dropped[j] && strcmp(p[first].items[i], p[b].items[j]) == 0)
                    p[b].dropped[j] = 1;
    }
    if (count)
        rs_text_addf(notes, "%s%scolumns leave out %s (every run has %s)\n", router ? router : "",
                     router ? ":... " : "", shared, count > 1 ? "them" : "it");
}

/* Items every run shares, then items every run of a router shares. */
static void drop_shared_items(parsed_label *p, int n, rs_text *notes)
{
    drop_common_items(p, n, NULL, notes);
    for (int a = 0; a < n; a++) {
        int seen = 0;
        for (int b = 0; b < a && !seen; b++)
            seen = strcmp(p[a].router, p[b].router) == 0;
        if (!seen)
            drop_common_items(p, n, p[a].router, notes);
    }
}

static int all_distinct(char *const *headers, int n)
{
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++)
            if (strcmp(headers[a], headers[b]) == 0)
                return 0;
    return 1;
}

static int widest(char *const *headers, int n)
{
    size_t w = 0;
    for (int i = 0; i < n; i++)
        if (strlen(headers[i]) > w)
            w = strlen(headers[i]);
    return (int)w;
}

int rs_table_headers(const char *const *labels, int n, char **headers, rs_text *notes)
{
    int rc = 0;
    for (int i = 0; i < n; i++)
        headers[i] = NULL;
    for (int i = 0; i < n && rc == 0; i++)
        if (!(headers[i] = strdup(labels[i])))
            rc = -1;
    /* one column (routesim route) is as wide as its label */
    if (rc != 0 || n == 1 || widest(headers, n) <= RS_TABLE_HEADER_MAX)
        return rc;
    parsed_label *parsed = calloc((size_t)n, sizeof *parsed);
    if (!parsed)
        return -1;
    for (int i = 0; i < n && rc == 0; i++)
        rc = parse_label(labels[i], &parsed[i]);
    rs_text shared = {0};
    if (rc == 0)
        drop_shared_items(parsed, n, &shared);
    /* each header too wide: parameter names cut, then router names, as little as makes it fit */
    static const size_t name_cuts[] = {64, 8, 6, 5, 4, 3, 2};
    static const size_t router_cuts[] = {64, 64, 64, 64, 10, 8, 6};
    enum { CUTS = sizeof name_cuts / sizeof name_cuts[0] };
    for (int i = 0; i < n && rc == 0; i++) {
        char text[RS_TABLE_HEADER_MAX * 4];
        for (size_t c = 0; c < CUTS; c++) {
            compose(&parsed[i], name_cuts[c], router_cuts[c], text, sizeof text);
            if (strlen(text) <= RS_TABLE_HEADER_MAX)
                break;
        }
        free(headers[i]);
        if (!(headers[i] = strdup(text)))
            rc = -1;
    }
    int fits = rc == 0 && widest(headers, n) <= RS_TABLE_HEADER_MAX && all_distinct(headers, n);
    if (rc == 0 && fits && shared.buf)
        rs_text_addf(notes, "%s", shared.buf);
    /* nothing shorter tells the runs apart: number them, and say which is which */
    for (int i = 0; rc == 0 && !fits && i < n; i++) {
        char number[16];
        snprintf(number, sizeof number, "#%d", i + 1);
        free(headers[i]);
        if (!(headers[i] = strdup(number)))
            rc = -1;
        rs_text_addf(notes, "column #%d: %s\n", i + 1, labels[i]);
    }
    rs_text_free(&shared);
    for (int i = 0; i < n; i++)
        free_parsed(&parsed[i]);
    free(parsed);
    if (rc != 0)
        for (int i = 0; i < n; i++) {
            free(headers[i]);
            headers[i] = NULL;
        }
    return rc;
}
