#include "sim/config/metric_list.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/config/param_sweep.h"

enum {
    MAX_FAMILIES = 32,
    MAX_SPECS = 256, /* after sweeping lists */
};

/* One family of the list before its lists are swept. */
typedef struct family_entry {
    rs_metric_spec spec;
    int every;                /* listed as FAMILY alone: every output */
    unsigned long long named; /* outputs named FAMILY.OUTPUT */
    cJSON *lists;             /* K: [values] of its K=[...] items, or NULL */
} family_entry;

/* The next item of the list at *p: up to a comma outside brackets. */
static char *next_item(char **p)
{
    char *start = *p;
    if (!*start)
        return NULL;
    int depth = 0;
    char *q = start;
    for (; *q && (*q != ',' || depth > 0); q++)
        depth += *q == '[' ? 1 : *q == ']' ? -1 : 0;
    *p = *q ? q + 1 : q;
    *q = '\0';
    return start;
}

/* "K=[4,8,16]" into lists as K: [4, 8, 16] (numbers where they read as one). */
static int add_list(family_entry *f, const char *item, rs_error *err)
{
    const char *eq = strchr(item, '=');
    size_t len = strlen(item);
    RS_CHECK(eq && eq[1] == '[' && item[len - 1] == ']' && eq - item > 0, err,
             "--metrics: %s: expected K=[A,B,...] (a list of values to sweep)", item);
    if (!f->lists && !(f->lists = cJSON_CreateObject()))
        return rs_fail(err, "out of memory");
    char key[64];
    RS_CHECK((size_t)(eq - item) < sizeof key, err, "--metrics: %s: parameter name too long", item);
    memcpy(key, item, (size_t)(eq - item));
    key[eq - item] = '\0';
    RS_CHECK(!cJSON_GetObjectItemCaseSensitive(f->lists, key), err, "--metrics: %s: %s is swept twice", item, key);
    cJSON *values = cJSON_AddArrayToObject(f->lists, key);
    RS_CHECK(values, err, "out of memory");
    char *inner = strndup(eq + 2, len - (size_t)(eq + 2 - item) - 1);
    RS_CHECK(inner, err, "out of memory");
    int rc = 0;
    char *save = NULL;
    for (char *v = strtok_r(inner, ",", &save); v && rc == 0; v = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        double x = strtod(v, &end);
        cJSON *value = *v && end && *end == '\0' ? cJSON_CreateNumber(x) : cJSON_CreateString(v);
        rc = value && cJSON_AddItemToArray(values, value) ? 0 : rs_fail(err, "out of memory");
    }
    free(inner);
    if (rc == 0 && cJSON_GetArraySize(values) == 0)
        rc = rs_fail(err, "--metrics: %s: the list is empty", item);
    return rc;
}

/* One K=V or K=[...] item for family f. */
static int set_param(family_entry *f, const char *item, rs_error *err)
{
    const char *eq = strchr(item, '=');
    if (eq && eq[1] == '[')
        return add_list(f, item, err);
    return rs_params_parse_list(&f->spec.params, item, err);
}

static int parse_families(char *copy, family_entry *fam, int *count, rs_error *err)
{
    int last = -1; /* the family K=V items set parameters of */
    char *p = copy;
    for (char *name; (name = next_item(&p)) != NULL;) {
        char *colon = strchr(name, ':'), *eq = strchr(name, '=');
        if (eq && (!colon || colon > eq)) { /* K=V: another parameter of the family before it */
            RS_CHECK(last >= 0, err, "--metrics: parameter '%s' comes before any metric (write FAMILY:%s)", name, name);
            RS_TRY(set_param(&fam[last], name, err));
            continue;
        }
        char *params = NULL;
        if (colon) {
            *colon = '\0';
            params = colon + 1;
        }
        char *output = strchr(name, '.');
        if (output)
            *output++ = '\0';
        int i = 0;
        while (i < *count && strcmp(fam[i].spec.type->name, name) != 0)
            i++;
        RS_CHECK(i == *count || output || params || !fam[i].every, err, "--metrics: %s is listed twice", name);
        if (i == *count) {
            RS_CHECK(*count < MAX_FAMILIES, err, "--metrics: at most %d families", MAX_FAMILIES);
            RS_TRY(rs_metric_spec_init(&fam[i].spec, name, "--metrics: ", err));
            (*count)++;
        }
        last = i;
        if (params)
            RS_TRY(set_param(&fam[i], params, err));
        if (!output) {
            fam[i].every |= !params;
            continue;
        }
        int o = rs_metric_output_index(fam[i].spec.type, output);
        if (o < 0 || o >= 64) {
            char known[2048];
            rs_metric_output_names(fam[i].spec.type, known, sizeof known);
            return rs_fail(err, "--metrics: metric %s has no output '%s' (outputs: %s)", name, output, known);
        }
        RS_CHECK(!(fam[i].named >> o & 1), err, "--metrics: %s.%s is listed twice", name, output);
        fam[i].named |= 1ULL << o;
    }
    return 0;
}

/* Appends the specs of family f, its lists swept, to out. */
static int sweep_family(family_entry *f, rs_metric_spec *out, int *n, rs_error *err)
{
    const unsigned long long outputs = f->every ? 0 : f->named; /* 0: every output */
    if (!f->lists) {
        RS_CHECK(*n < MAX_SPECS, err, "--metrics: more than %d metric entries after sweeping lists", MAX_SPECS);
        out[(*n)++] = f->spec;
        out[*n - 1].outputs = outputs;
        f->spec.type = NULL; /* moved */
        return 0;
    }
    rs_params *sets = NULL;
    int count = 0;
    char where[96];
    snprintf(where, sizeof where, "%s", f->spec.type->name);
    RS_TRY(rs_params_expand(&f->spec.params, f->lists, RS_SWEEP_GRID, "--metrics", where, &sets, &count, err));
    if (*n + count > MAX_SPECS) {
        rs_param_sets_free(sets, count);
        return rs_fail(err, "--metrics: more than %d metric entries after sweeping lists", MAX_SPECS);
    }
    for (int c = 0; c < count; c++) {
        rs_metric_spec *spec = &out[(*n)++];
        memset(spec, 0, sizeof *spec);
        spec->type = f->spec.type;
        spec->params = sets[c];
        spec->outputs = outputs;
    }
    free(sets); /* the sets now belong to the specs */
    return 0;
}

int rs_metric_list_parse(const char *list, rs_metric_spec **specs, int *count, rs_error *err)
{
    *specs = NULL;
    *count = 0;
    if (strcmp(list, "none") == 0)
        return 0;
    char *copy = strdup(list);
    family_entry *fam = calloc(MAX_FAMILIES, sizeof *fam);
    rs_metric_spec *out = calloc(MAX_SPECS, sizeof *out);
    int nf = 0, n = 0;
    int rc = copy && fam && out ? parse_families(copy, fam, &nf, err) : rs_fail(err, "out of memory");
    for (int i = 0; i < nf && rc == 0; i++)
        rc = sweep_family(&fam[i], out, &n, err);
    for (int i = 0; i < nf; i++) {
        if (fam[i].spec.type)
            rs_metric_spec_free(&fam[i].spec);
        cJSON_Delete(fam[i].lists);
    }
    free(fam);
    free(copy);
    if (rc != 0) {
        rs_metric_list_free(out, n);
        return rc;
    }
    *specs = out;
    *count = n;
    return 0;
}

void rs_metric_list_free(rs_metric_spec *specs, int count)
{
    for (int i = 0; specs && i < count; i++)
        rs_metric_spec_free(&specs[i]);
    free(specs);
}
