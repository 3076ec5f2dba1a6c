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

/* The cross-run metrics (metrics/curves/), after the families: into root
 * as markdown, or as text (detailed: with sources). */
static void print_curve_metrics(int markdown, int detailed)
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
            printf(" | %s | ", rs_curve_key_text(t, key, sizeof key));
            rs_describe_md_cell(t->source);
            printf(" |\n");
        }
        printf("\n");
        return;
    }
    printf("%-10s %s\n", RS_CURVE_FAMILY, RS_CURVE_SUMMARY);
    for (int i = 0; i < rs_curve_metric_count(); i++) {
        const rs_curve_metric_type *t = rs_curve_metric_at(i);
        printf("    %s.%-16s %s", RS_CURVE_FAMILY, t->output.name, t->output.definition);
        if (t->key_param)
            printf(" [key %s]", rs_curve_key_text(t, key, sizeof key));
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
    if (json)
        return rs_describe_emit_json(rs_metrics_json_doc(only));
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
                printf(" | %s |\n", rs_layer_aggregate_name(t->outputs[j].aggregate));
            }
            printf("\n");
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
                   rs_layer_aggregate_name(t->outputs[j].aggregate));
        if (t->num_params)
            rs_describe_print_params(t->params, t->num_params);
    }
    if (curves)
        print_curve_metrics(markdown, only != NULL);
    return RS_EXIT_OK;
}
