#include "sim/config/import_recipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/config/param_sweep.h"

static int option_index(const rs_importer_type *t, const char *name)
{
    for (int i = 0; i < t->num_options; i++)
        if (strcmp(t->options[i].name, name) == 0)
            return i;
    return -1;
}

/* A key that is not an option of t: named as another importer's option
 * when one has it, else unknown. */
static int refuse_import_key(const rs_importer_type *t, const char *key, const char *src, const char *path,
                             rs_error *err)
{
    char list[512] = "";
    size_t len = 0;
    for (int f = 0; f < rs_importer_count(); f++) {
        const rs_importer_type *other = rs_importer_at(f);
        if (other == t || !(other->flags & RS_IMPORTER_CONFIG) || option_index(other, key) < 0)
            continue;
        int count = 0, listed = 0;
        for (int i = 0; i < other->num_options; i++)
            count += option_index(t, other->options[i].name) < 0;
        for (int i = 0; i < other->num_options && len < sizeof list; i++) {
            if (option_index(t, other->options[i].name) >= 0)
                continue;
            const char *sep = listed == 0 ? "" : listed == count - 1 ? " and " : ", ";
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", sep, other->options[i].name);
            listed++;
        }
        return rs_fail(err, "%s: %s: %s %s %s option%s (not %s's)", src, path, list, count > 1 ? "are" : "is a",
                       other->name, count > 1 ? "s" : "", t->name);
    }
    len = (size_t)snprintf(list, sizeof list, "format, input");
    for (int i = 0; i < t->num_options && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, ", %s", t->options[i].name);
    return rs_fail(err, "%s: %s: unknown key '%s' (known: %s)", src, path, key, list);
}

/* One option of an import recipe: a flag is true or false, prices may be an
 * object {"model": price}, anything else a JSON scalar of the option's type. */
static int set_import_option(rs_trace_import *x, int i, const cJSON *v, const char *src, const char *path,
                             rs_error *err)
{
    const rs_param_def *d = &x->type->options[i];
    if (d->kind == RS_PARAM_BOOL) {
        RS_CHECK(cJSON_IsBool(v), err, "%s: %s.%s: expected true or false", src, path, d->name);
        return rs_params_set(&x->options, d->name, cJSON_IsTrue(v) ? "1" : "0", err);
    }
    if ((x->type->forms[i].flags & RS_IMPORT_PRICES) && cJSON_IsObject(v)) { /* -> "model=price,..." */
        size_t cap = 64, len = 0;
        for (const cJSON *c = v->child; c; c = c->next)
            cap += strlen(c->string) + 40;
        char *text = malloc(cap);
        RS_CHECK(text, err, "out of memory");
        text[0] = '\0';
        for (const cJSON *c = v->child; c; c = c->next) {
            if (!cJSON_IsNumber(c) || c->valuedouble < 0) {
                free(text);
                return rs_fail(err, "%s: %s.%s.%s: expected a price >= 0", src, path, d->name, c->string);
            }
            len += (size_t)snprintf(text + len, cap - len, "%s%s=%.17g", len ? "," : "", c->string, c->valuedouble);
        }
        int rc = rs_params_set(&x->options, d->name, text, err);
        free(text);
        return rc;
    }
    if (d->kind == RS_PARAM_STRING) {
        RS_CHECK(cJSON_IsString(v), err, "%s: %s.%s: expected a string", src, path, d->name);
        return rs_params_set(&x->options, d->name, v->valuestring, err);
    }
    return rs_params_set_json(&x->options, d->name, v, src, path, err);
}

int rs_import_recipe_parse(rs_trace_import *x, const cJSON *imp, const char *src, const char *trace_path,
                           rs_error *err)
{
    memset(x, 0, sizeof *x);
    char path[96];
    snprintf(path, sizeof path, "%s.import", trace_path);
    RS_CHECK(cJSON_IsObject(imp), err, "%s: %s: expected {\"format\": ..., \"input\": ...}", src, path);
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(imp, "format");
    const rs_importer_type *type = cJSON_IsString(format) ? rs_importer_find(format->valuestring) : NULL;
    if (!type || !(type->flags & RS_IMPORTER_CONFIG)) {
        char names[256];
        rs_importer_names(RS_IMPORTER_CONFIG, "\"", " or ", names, sizeof names);
        return rs_fail(err, "%s: %s.format: expected %s", src, path, names);
    }
    char owner[160];
    snprintf(owner, sizeof owner, "%s: %s", src, path);
    RS_TRY(rs_importer_options_init(type, &x->options, owner, err));
    x->type = type;
    for (const cJSON *v = imp->child; v; v = v->next) {
        if (strcmp(v->string, "format") == 0)
            continue;
        if (strcmp(v->string, "input") == 0) {
            RS_CHECK(cJSON_IsString(v), err, "%s: %s.input: expected a string", src, path);
            free(x->input);
            x->input = strdup(v->valuestring);
            RS_CHECK(x->input, err, "out of memory");
            continue;
        }
        int i = option_index(type, v->string);
        RS_TRY(i < 0 ? refuse_import_key(type, v->string, src, path, err) : 0);
        RS_TRY(set_import_option(x, i, v, src, path, err));
    }
    RS_CHECK(x->input && x->input[0], err, "%s: %s.input: missing (%s to import)", src, path, type->input);
    for (int i = 0; i < type->num_options; i++)
        RS_CHECK(!(type->forms[i].flags & RS_IMPORT_REQUIRED) || rs_param_is_set(&x->options, type->options[i].name),
                 err, "%s: %s.%s: missing (%s)", src, path, type->options[i].name, type->options[i].help);
    if (type->check && type->check(&x->options, err) != 0)
        return rs_fail_context(err, "%s: %s", src, path);
    return 0;
}

void rs_import_recipe_free(rs_trace_import *x)
{
    if (x->type)
        rs_params_free(&x->options);
    free(x->input);
    memset(x, 0, sizeof *x);
}
