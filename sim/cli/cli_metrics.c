/* routesim metrics: the metric registries (families, cross-run metrics) as text, markdown or JSON. */
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "metrics/curves/curve_metric.h"
#include "routesim/metric.h"
#include "routesim/router.h"
#include "routers/plugins.h"
#include "sim/cli/cli.h"
#include "sim/cli/cli_describe.h"

static const char *aggregate_name(rs_layer_aggregate a)
{
    switch (a) {
    case RS_AGG_MEAN: return "mean";
    case RS_AGG_SUM: return "sum";
    case RS_AGG_MAX: return "max";
    case RS_AGG_SELF: return "model-level";
    }
    return "?";
}

/* What the family's flags mean for a user, or NULL. */
static const char *flags_text(unsigned flags, char *buf, size_t size)
{
    buf[0] = '\0';
    if (flags & RS_METRIC_REFERENCE)
        snprintf(buf, size, "compares each run with a reference (config key reference)");
    if (flags & RS_METRIC_SEQUENTIAL)
        snprintf(buf + strlen(buf), size - strlen(buf), "%stokens in order within each sequence",
                 buf[0] ? "; " : "");
    return buf[0] ? buf : NULL;
}

/* "p=V for each p of the outcome specs" for a keyed cross-run metric, "" otherwise. */
static const char *curve_key_text(const rs_curve_metric_type *t, char *buf, size_t size)
{
    buf[0] = '\0';
    if (t->key_param)
        snprintf(buf, size, "%s=V for each %s of the outcome specs", t->key_param, t->key_param);
    return buf;
}

/* The cross-run metrics (metrics/curves/), after the families: into root
 * (JSON), as markdown, or as text (detailed: with sources). */
static void print_curve_metrics(cJSON *root, int markdown, int detailed)
{
    char key[64];
    if (markdown) {
        printf("### `%s`\n\n%s. Computed after every run when a config measures `outcome` (docs/metrics.md, "
               "Curves).\n\n| output | definition | key | source |\n|---|---|---|---|\n",
               RS_CURVE_FAMILY, RS_CURVE_SUMMARY);
        for (int i = 0; i < rs_curve_metric_count(); i++) {
            const rs_curve_metric_type *t = rs_curve_metric_at(i);
            printf("| `%s.%s` | ", RS_CURVE_FAMILY, t->output.name);
            rs_describe_md_cell(t->output.definition);
            printf(" | %s | ", curve_key_text(t, key, sizeof key));
            rs_describe_md_cell(t->source);
            printf(" |\n");
        }
        printf("\n");
        return;
    }
    if (root) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(root, o);
        cJSON_AddStringToObject(o, "name", RS_CURVE_FAMILY);
        cJSON_AddStringToObject(o, "summary", RS_CURVE_SUMMARY);
        cJSON_AddBoolToObject(o, "cross_run", 1);
        cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
        for (int i = 0; i < rs_curve_metric_count(); i++) {
            const rs_curve_metric_type *t = rs_curve_metric_at(i);
            cJSON *x = cJSON_CreateObject();
            cJSON_AddItemToArray(outs, x);
            char full[256];
            snprintf(full, sizeof full, "%s.%s", RS_CURVE_FAMILY, t->output.name);
            cJSON_AddStringToObject(x, "name", full);
            cJSON_AddStringToObject(x, "definition", t->output.definition);
            cJSON_AddStringToObject(x, "key", curve_key_text(t, key, sizeof key));
            cJSON_AddStringToObject(x, "source", t->source);
        }
        return;
    }
    printf("%-10s %s\n", RS_CURVE_FAMILY, RS_CURVE_SUMMARY);
    for (int i = 0; i < rs_curve_metric_count(); i++) {
        const rs_curve_metric_type *t = rs_curve_metric_at(i);
        printf("    %s.%-16s %s", RS_CURVE_FAMILY, t->output.name, t->output.definition);
        if (t->key_param)
            printf(" [key %s]", curve_key_text(t, key, sizeof key));
        printf("\n");
        if (detailed)
            printf("        source: %s\n", t->source);
    }
}

int rs_cmd_metrics(int argc, char **argv)
{
    if (rs_cli_wants_help(argc, argv)) {
        printf("usage: routesim metrics [NAME] [--json | --markdown] [--plugin FILE.so]\n\n"
               "Lists every metric family with its outputs (definition, how layers aggregate),\n"
               "parameters and source, then the cross-run metrics (curve.*, over the runs of a swept\n"
               "query router). Results name an output FAMILY.OUTPUT, e.g. load.maxvio.\n"
               "--markdown prints the reference section of docs/metrics.md.\n");
        return RS_EXIT_OK;
    }
    int json = 0, markdown = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--markdown") == 0)
            markdown = 1;
        else if (strcmp(argv[i], "--plugin") == 0 && i + 1 < argc) {
            rs_error err = {{0}};
            if (rs_plugin_load(argv[++i], &err) != 0)
                return rs_cli_fail(&err);
        } else if (argv[i][0] != '-' && !only)
            only = argv[i];
        else
            return rs_cli_usage_error("metrics", "unexpected argument '%s'", argv[i]);
    }
    int curves = !only || strcmp(only, RS_CURVE_FAMILY) == 0;
    if (only && !rs_metric_find(only) && !curves) {
        fprintf(stderr, "routesim: error: unknown metric '%s' (routesim metrics lists them)\n", only);
        return RS_EXIT_FAIL;
    }
    cJSON *root = json ? cJSON_CreateArray() : NULL;
    for (int i = 0; i < rs_metric_count(); i++) {
        const rs_metric_type *t = rs_metric_at(i);
        if (only && strcmp(only, t->name) != 0)
            continue;
        if (markdown) {
            char needs[128];
            char flags[160];
            printf("### `%s`\n\n%s\n\n- Source: %s\n- Needs: %s\n", t->name, t->summary, t->source,
                   rs_describe_needs_text(t->needs, needs, sizeof needs));
            if (flags_text(t->flags, flags, sizeof flags))
                printf("- Runs: %s\n", flags);
            rs_describe_markdown_params(t->params, t->num_params);
            printf("\n| output | definition | layer = all |\n|---|---|---|\n");
            for (int j = 0; j < t->num_outputs; j++) {
                printf("| `%s.%s` | ", t->name, t->outputs[j].name);
                rs_describe_md_cell(t->outputs[j].definition);
                printf(" | %s |\n", aggregate_name(t->outputs[j].aggregate));
            }
            printf("\n");
            continue;
        }
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToArray(root, o);
            cJSON_AddStringToObject(o, "name", t->name);
            cJSON_AddStringToObject(o, "summary", t->summary);
            cJSON_AddStringToObject(o, "source", t->source);
            cJSON_AddItemToObject(o, "needs", rs_describe_needs_json(t->needs));
            cJSON_AddBoolToObject(o, "needs_reference", (t->flags & RS_METRIC_REFERENCE) != 0);
            cJSON_AddBoolToObject(o, "sequential", (t->flags & RS_METRIC_SEQUENTIAL) != 0);
            cJSON_AddItemToObject(o, "params", rs_describe_params_json(t->params, t->num_params));
            cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
            for (int j = 0; j < t->num_outputs; j++) {
                cJSON *x = cJSON_CreateObject();
                cJSON_AddItemToArray(outs, x);
                char full[256];
                snprintf(full, sizeof full, "%s.%s", t->name, t->outputs[j].name);
                cJSON_AddStringToObject(x, "name", full);
                cJSON_AddStringToObject(x, "definition", t->outputs[j].definition);
                cJSON_AddStringToObject(x, "layer_all", aggregate_name(t->outputs[j].aggregate));
            }
            continue;
        }
        printf("%-10s %s\n", t->name, t->summary);
        char flags[160];
        if (only)
            printf("    source: %s\n", t->source);
        if (only && flags_text(t->flags, flags, sizeof flags))
            printf("    runs: %s\n", flags);
        for (int j = 0; j < t->num_outputs; j++)
            printf("    %s.%-16s %s [all layers: %s]\n", t->name, t->outputs[j].name, t->outputs[j].definition,
                   aggregate_name(t->outputs[j].aggregate));
        if (t->num_params)
            rs_describe_print_params(t->params, t->num_params);
    }
    if (curves)
        print_curve_metrics(json ? root : NULL, markdown, only != NULL);
    return json ? rs_describe_emit_json(root) : RS_EXIT_OK;
}
