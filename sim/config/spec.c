#include "sim/config/spec.h"

#include "routers/common/router_params.h"
#include <stdio.h>
#include <string.h>

void rs_router_names(char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < rs_router_count() && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", rs_router_at(i)->name);
}

void rs_metric_names(char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < rs_metric_count() && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", rs_metric_at(i)->name);
}

int rs_router_spec_init(rs_router_spec *spec, const char *name, const char *owner, rs_error *err)
{
    memset(spec, 0, sizeof *spec);
    spec->type = rs_router_find(name);
    if (!spec->type) {
        char known[2048];
        rs_router_names(known, sizeof known);
        return rs_fail(err, "%sunknown router '%s' (known: %s)", owner, name, known);
    }
    char who[128];
    snprintf(who, sizeof who, "%srouter %s", owner, name);
    const rs_router_type *named = spec->type;
    RS_TRY(rs_router_params_init(&spec->params, named, &spec->type, who, err));
    spec->preset = named != spec->type ? named : NULL;
    spec->repeat = -1;
    snprintf(spec->label, sizeof spec->label, "%s", name);
    return 0;
}

int rs_router_spec_parse(rs_router_spec *spec, const char *text, rs_error *err)
{
    char name[128];
    const char *colon = strchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    RS_CHECK(len > 0 && len < sizeof name, err, "bad router spec '%s' (expected name or name:key=value,...)", text);
    memcpy(name, text, len);
    name[len] = '\0';
    RS_TRY(rs_router_spec_init(spec, name, "", err));
    if (colon && colon[1] && rs_params_parse_list(&spec->params, colon + 1, err) != 0) {
        rs_router_spec_free(spec);
        return -1;
    }
    /* results.csv writes the parameters as "k=v;k=v" */
    for (int i = 0; i < spec->params.n; i++)
        if (spec->params.v[i].s && strchr(spec->params.v[i].s, ';')) {
            rs_fail(err, "router spec '%s': %s: a text value cannot hold ';' (it separates parameters in results)",
                    text, spec->params.defs[i].name);
            rs_router_spec_free(spec);
            return -1;
        }
    rs_router_spec_default_label(spec);
    return 0;
}

void rs_router_spec_free(rs_router_spec *spec)
{
    if (spec->type)
        rs_params_free(&spec->params);
    spec->type = NULL;
    spec->preset = NULL;
}

int rs_router_spec_string(const rs_router_spec *spec, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%s", spec->type->name);
    if (spec->params.n > 0 && (size_t)n < size) {
        char params[1024];
        rs_params_format(&spec->params, rs_router_param_mask(spec->type, &spec->params), 0, ",", params,
                         sizeof params);
        if (params[0])
            n += snprintf(buf + n, size - (size_t)n, ":%s", params);
    }
    return n;
}

void rs_router_spec_default_label(rs_router_spec *spec)
{
    char params[1024];
    const char *name = spec->preset ? spec->preset->name : spec->type->name;
    rs_params_format(&spec->params, ~0ULL, 1, ",", params, sizeof params);
    if (params[0])
        snprintf(spec->label, sizeof spec->label, "%.60s:%.190s", name, params);
    else
        snprintf(spec->label, sizeof spec->label, "%s", name);
}

int rs_metric_spec_init(rs_metric_spec *spec, const char *name, const char *owner, rs_error *err)
{
    memset(spec, 0, sizeof *spec);
    spec->type = rs_metric_find(name);
    if (!spec->type) {
        char known[2048];
        rs_metric_names(known, sizeof known);
        return rs_fail(err, "%sunknown metric '%s' (known: %s)", owner, name, known);
    }
    char who[128];
    snprintf(who, sizeof who, "%smetric %s", owner, name);
    return rs_params_init(&spec->params, spec->type->params, spec->type->num_params, who, err);
}

unsigned long long rs_metric_spec_outputs(const rs_metric_spec *spec)
{
    int n = spec->type->num_outputs;
    unsigned long long all = n >= 64 ? ~0ULL : (1ULL << n) - 1;
    return spec->outputs ? spec->outputs & all : all;
}

int rs_metric_output_index(const rs_metric_type *type, const char *name)
{
    for (int o = 0; o < type->num_outputs; o++)
        if (strcmp(type->outputs[o].name, name) == 0)
            return o;
    return -1;
}

void rs_metric_output_names(const rs_metric_type *type, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int o = 0; o < type->num_outputs && used < size; o++) {
        int w = snprintf(buf + used, size - used, "%s%s", o ? ", " : "", type->outputs[o].name);
        used += w > 0 ? (size_t)w : 0;
    }
}

void rs_metric_outputs_format(const rs_metric_spec *spec, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    if (!spec->outputs)
        return;
    for (int o = 0; o < spec->type->num_outputs && used < size; o++)
        if (spec->outputs & (1ULL << o)) {
            int w = snprintf(buf + used, size - used, "%s%s", used ? "," : "", spec->type->outputs[o].name);
            used += w > 0 ? (size_t)w : 0;
        }
}

void rs_metric_spec_free(rs_metric_spec *spec)
{
    if (spec->type)
        rs_params_free(&spec->params);
    spec->type = NULL;
}
