#include "routesim/params.h"

#include "core/number_text.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rs_param_kind_name(rs_param_kind kind)
{
    switch (kind) {
    case RS_PARAM_INT: return "int";
    case RS_PARAM_FLOAT: return "float";
    case RS_PARAM_BOOL: return "bool";
    case RS_PARAM_ENUM: return "enum";
    case RS_PARAM_STRING: return "string";
    }
    return "?";
}

static int find_index(const rs_params *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->defs[i].name, name) == 0)
            return i;
    return -1;
}

/* Index of `text` among "a|b|c" choices, or -1. */
static int choice_index(const char *choices, const char *text)
{
    size_t len = strlen(text);
    int index = 0;
    for (const char *c = choices; *c;) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        if (n == len && strncmp(c, text, n) == 0)
            return index;
        index++;
        if (!bar)
            break;
        c = bar + 1;
    }
    return -1;
}

static int set_value(rs_params *p, int i, const char *text, rs_error *err)
{
    const rs_param_def *d = &p->defs[i];
    rs_param_value *v = &p->v[i];
    char *end = NULL;
    errno = 0;
    switch (d->kind) {
    case RS_PARAM_INT: {
        long long x = strtoll(text, &end, 10);
        if (end == text || *end != '\0' || errno == ERANGE) {
            /* Accept integral floats such as "2.0" from JSON. */
            double f = strtod(text, &end);
            if (end == text || *end != '\0' || !isfinite(f) || f != floor(f))
                return rs_fail(err, "%s: parameter %s: expected an integer, got '%s'", p->owner, d->name,
                               text);
            /* an integer too large for 64 bits, or 1e30: say what the range is */
            if (f < d->min || f > d->max || fabs(f) > 9e15)
                return rs_fail(err, "%s: parameter %s=%s out of range [%g, %g]", p->owner, d->name, text, d->min,
                               d->max);
            x = (long long)f;
        }
        if ((double)x < d->min || (double)x > d->max)
            return rs_fail(err, "%s: parameter %s=%lld out of range [%g, %g]", p->owner, d->name, x, d->min,
                           d->max);
        v->i = x;
        v->f = (double)x;
        break;
    }
    case RS_PARAM_FLOAT: {
        double x = strtod(text, &end);
        if (end == text || *end != '\0' || !isfinite(x))
            return rs_fail(err, "%s: parameter %s: expected a number, got '%s'", p->owner, d->name, text);
        if (x < d->min || x > d->max)
            return rs_fail(err, "%s: parameter %s=%g out of range [%g, %g]", p->owner, d->name, x, d->min,
                           d->max);
        v->f = x;
        /* the integer mirror saturates: a float range may pass long long's */
        v->i = x >= 9.2e18 ? LLONG_MAX : x <= -9.2e18 ? LLONG_MIN : (long long)x;
        break;
    }
    case RS_PARAM_BOOL:
        if (strcmp(text, "1") == 0 || strcmp(text, "true") == 0 || strcmp(text, "yes") == 0)
            v->i = 1;
        else if (strcmp(text, "0") == 0 || strcmp(text, "false") == 0 || strcmp(text, "no") == 0)
            v->i = 0;
        else
            return rs_fail(err, "%s: parameter %s: expected 0/1 or true/false, got '%s'", p->owner, d->name,
                           text);
        v->f = (double)v->i;
        break;
    case RS_PARAM_ENUM: {
        int c = choice_index(d->choices, text);
        if (c < 0)
            return rs_fail(err, "%s: parameter %s: '%s' is not one of %s", p->owner, d->name, text,
                           d->choices);
        v->i = c;
        v->f = c;
        break;
    }
    case RS_PARAM_STRING:
        break;
    }
    if (d->kind == RS_PARAM_ENUM || d->kind == RS_PARAM_STRING) {
        char *copy = strdup(text);
        if (!copy)
            return rs_fail(err, "%s: out of memory", p->owner);
        free(v->s);
        v->s = copy;
    }
    v->set = 1;
    return 0;
}

int rs_params_init(rs_params *p, const rs_param_def *defs, int n, const char *owner, rs_error *err)
{
    memset(p, 0, sizeof *p);
    if (n > RS_PARAMS_MAX)
        return rs_fail(err, "%s: %d parameters, at most %d supported", owner, n, RS_PARAMS_MAX);
    p->defs = defs;
    p->n = n;
    snprintf(p->owner, sizeof p->owner, "%s", owner);
    for (int i = 0; i < n; i++) {
        if (defs[i].default_value && set_value(p, i, defs[i].default_value, err) != 0) {
            rs_params_free(p);
            return rs_fail_context(err, "bad default");
        }
    }
    return 0;
}

void rs_params_free(rs_params *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->v[i].s);
        p->v[i].s = NULL;
    }
}

int rs_params_copy(rs_params *dst, const rs_params *src, rs_error *err)
{
    *dst = *src;
    for (int i = 0; i < src->n; i++) {
        if (src->v[i].s) {
            dst->v[i].s = strdup(src->v[i].s);
            if (!dst->v[i].s) {
                for (int j = 0; j < i; j++)
                    free(dst->v[j].s);
                return rs_fail(err, "%s: out of memory", src->owner);
            }
        }
    }
    return 0;
}

int rs_params_set(rs_params *p, const char *name, const char *text, rs_error *err)
{
    int i = find_index(p, name);
    if (i < 0) {
        char known[512] = "";
        size_t len = 0;
        for (int j = 0; j < p->n && len < sizeof known; j++)
            len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", j ? ", " : "", p->defs[j].name);
        if (p->n == 0)
            return rs_fail(err, "%s: unknown parameter '%s' (it takes no parameters)", p->owner, name);
        return rs_fail(err, "%s: unknown parameter '%s' (known: %s)", p->owner, name, known);
    }
    RS_TRY(set_value(p, i, text, err));
    p->v[i].explicit_ = 1;
    return 0;
}

int rs_params_parse_list(rs_params *p, const char *list, rs_error *err)
{
    char *copy = strdup(list);
    if (!copy)
        return rs_fail(err, "%s: out of memory", p->owner);
    int rc = 0;
    char *save = NULL;
    unsigned long long given = 0; /* bit i: parameter i appeared in this list */
    for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq || eq == item) {
            rc = rs_fail(err, "%s: expected key=value, got '%s'", p->owner, item);
            break;
        }
        *eq = '\0';
        int i = find_index(p, item);
        if (i >= 0 && (given >> i & 1)) {
            char before[512];
            rs_param_value_text(p, i, before, sizeof before);
            rc = rs_fail(err, "%s: parameter %s given twice (%s=%s, then %s=%s)", p->owner, item, item, before, item,
                         eq + 1);
            break;
        }
        if ((rc = rs_params_set(p, item, eq + 1, err)) != 0)
            break;
        given |= 1ULL << i;
    }
    free(copy);
    return rc;
}

static int require_index(const rs_params *p, const char *name)
{
    int i = find_index(p, name);
    if (i < 0) {
        fprintf(stderr, "routesim: internal error: %s has no parameter '%s'\n", p->owner, name);
        abort();
    }
    return i;
}

long long rs_param_int(const rs_params *p, const char *name) { return p->v[require_index(p, name)].i; }
double rs_param_float(const rs_params *p, const char *name) { return p->v[require_index(p, name)].f; }
int rs_param_bool(const rs_params *p, const char *name) { return (int)p->v[require_index(p, name)].i; }
const char *rs_param_str(const rs_params *p, const char *name) { return p->v[require_index(p, name)].s; }
int rs_param_is_set(const rs_params *p, const char *name) { return p->v[require_index(p, name)].set; }

int rs_param_value_text(const rs_params *p, int i, char *buf, size_t size)
{
    const rs_param_value *v = &p->v[i];
    if (!v->set)
        return snprintf(buf, size, "none");
    switch (p->defs[i].kind) {
    case RS_PARAM_INT:
    case RS_PARAM_BOOL:
        return snprintf(buf, size, "%lld", v->i);
    case RS_PARAM_FLOAT:
        return rs_number_text(v->f, buf, size);
    case RS_PARAM_ENUM:
    case RS_PARAM_STRING:
        return snprintf(buf, size, "%s", v->s ? v->s : "");
    }
    return 0;
}

int rs_params_format(const rs_params *p, unsigned long long mask, int explicit_only, const char *sep,
                     char *buf, size_t size)
{
    int order[RS_PARAMS_MAX];
    int count = 0;
    for (int i = 0; i < p->n; i++) {
        if (!(mask & (1ULL << i)) || !p->v[i].set || (explicit_only && !p->v[i].explicit_))
            continue;
        int pos = count++;
        while (pos > 0 && strcmp(p->defs[order[pos - 1]].name, p->defs[i].name) > 0) {
            order[pos] = order[pos - 1];
            pos--;
        }
        order[pos] = i;
    }
    size_t len = 0;
    if (size)
        buf[0] = '\0';
    for (int j = 0; j < count; j++) {
        char value[512];
        rs_param_value_text(p, order[j], value, sizeof value);
        int w = snprintf(len < size ? buf + len : NULL, len < size ? size - len : 0, "%s%s=%s", j ? sep : "",
                         p->defs[order[j]].name, value);
        len += (size_t)w;
    }
    return (int)len;
}
