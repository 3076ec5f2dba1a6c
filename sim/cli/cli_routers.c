/* routesim routers: the router registry as text, markdown or JSON; presets
 * separately, and the capacity stage's parameters once. */
#include <cJSON.h>
#include <stdio.h>
#include <string.h>

#include "routesim/router.h"
#include "routers/common/capacity.h"
#include "sim/cli/cli.h"
#include "sim/cli/cli_describe.h"
#include "routers/plugins.h"
#include "routers/common/router_params.h"

static int is_preset(const rs_router_type *t) { return (t->flags & RS_ROUTER_PRESET) != 0; }

static const char *flags_text(const rs_router_type *t, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s%s%s%s", t->flags & RS_ROUTER_CAUSAL ? "causal" : "not causal (looks at later tokens)",
             t->flags & RS_ROUTER_STATEFUL ? ", stateful" : "", t->flags & RS_ROUTER_STOCHASTIC ? ", stochastic" : "",
             t->flags & RS_ROUTER_GROUPED ? ", decides per token group" : "",
             t->flags & RS_ROUTER_TOKEN_CHOICE ? ", token choice (capacity stage available)" : "",
             t->flags & RS_ROUTER_QUERY ? ", routes queries among models (unit = query)" : "");
    return buf;
}

static void markdown_router(const rs_router_type *t)
{
    char needs[128], flags[256];
    printf("### `%s`\n\n%s\n\n", t->name, t->summary);
    if (t->formula)
        printf("- Rule: %s\n", t->formula);
    printf("- Source: %s\n", t->source);
    printf("- Flags: %s\n", flags_text(t, flags, sizeof flags));
    printf("- Needs: %s\n", rs_describe_needs_text(t->needs, needs, sizeof needs));
    if (t->capacity_defaults)
        printf("- Capacity stage defaults: `%s`\n", t->capacity_defaults);
    rs_describe_markdown_params(t->params, t->num_params);
    printf("\n");
}

static void markdown_presets(void)
{
    printf("## Presets\n\nNamed parameter sets of the routers above; the values are defaults that a spec can "
           "override (`mixtral:k=3`).\n\n| preset | runs | parameters | model |\n|---|---|---|---|\n");
    for (int i = 0; i < rs_router_count(); i++) {
        const rs_router_type *t = rs_router_at(i);
        if (!is_preset(t))
            continue;
        printf("| `%s` | `%s` | `%s` | ", t->name, t->preset_of, t->preset_params ? t->preset_params : "");
        rs_describe_md_cell(t->summary);
        printf(" |\n");
    }
    printf("\n## Capacity stage\n\nParameters every token-choice router accepts; the stage runs when "
           "`capacity_factor` is set.\n");
    rs_describe_markdown_params(rs_capacity_param_defs, rs_capacity_num_params);
}

static void print_router(const rs_router_type *t, int detailed)
{
    if (is_preset(t)) {
        printf("%-18s = %s:%s  (%s)\n", t->name, t->preset_of, t->preset_params ? t->preset_params : "", t->summary);
        return;
    }
    printf("%-18s %s\n", t->name, t->summary);
    if (detailed) {
        char flags[256];
        printf("    rule:   %s\n    source: %s\n    flags:  %s\n", t->formula ? t->formula : "", t->source,
               flags_text(t, flags, sizeof flags));
    }
    rs_describe_print_params(t->params, t->num_params);
    if (t->capacity_defaults && !detailed)
        printf("    (capacity stage defaults: %s)\n", t->capacity_defaults);
    if (detailed && (t->flags & RS_ROUTER_TOKEN_CHOICE)) {
        /* the stage's table with this router's own defaults filled in */
        rs_param_def defs[RS_PARAMS_MAX];
        char values[RS_PARAMS_MAX][64];
        rs_params p;
        rs_error err = {{0}};
        int n = rs_capacity_num_params;
        memcpy(defs, rs_capacity_param_defs, (size_t)n * sizeof *defs);
        if (rs_router_params_init(&p, t, NULL, t->name, &err) == 0) {
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < p.n; j++) {
                    if (strcmp(p.defs[j].name, defs[i].name) != 0 || !p.v[j].set)
                        continue;
                    rs_param_value_text(&p, j, values[i], sizeof values[i]);
                    defs[i].default_value = values[i];
                }
            }
            rs_params_free(&p);
        }
        printf("  capacity stage (runs when capacity_factor is set):\n");
        rs_describe_print_params(defs, n);
    }
}

int rs_cmd_routers(int argc, char **argv)
{
    if (rs_cli_wants_help(argc, argv)) {
        printf("usage: routesim routers [NAME] [--json | --markdown] [--plugin FILE.so]\n\n"
               "Lists every router with its parameters (type, default, range), source and flags,\n"
               "then the presets (named parameter sets). NAME shows one router in full.\n"
               "--markdown prints the reference section of docs/routers.md.\n");
        return RS_EXIT_OK;
    }
    int json = 0, markdown = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--markdown") == 0) {
            markdown = 1;
        } else if (strcmp(argv[i], "--plugin") == 0 && i + 1 < argc) {
            rs_error err = {{0}};
            if (rs_plugin_load(argv[++i], &err) != 0)
                return rs_cli_fail(&err);
        } else if (argv[i][0] != '-' && !only) {
            only = argv[i];
        } else {
            return rs_cli_usage_error("routers", "unexpected argument '%s'", argv[i]);
        }
    }
    if (only && !rs_router_find(only)) {
        fprintf(stderr, "routesim: error: unknown router '%s' (routesim routers lists them)\n", only);
        return RS_EXIT_FAIL;
    }
    if (json)
        return rs_describe_emit_json(rs_routers_json_doc(only));
    /* routers first, then presets */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !only && !markdown)
            printf("\npresets:\n");
        if (pass == 1 && markdown && !only) {
            markdown_presets();
            break;
        }
        for (int i = 0; i < rs_router_count(); i++) {
            const rs_router_type *t = rs_router_at(i);
            if (is_preset(t) != pass || (only && strcmp(only, t->name) != 0))
                continue;
            if (markdown)
                markdown_router(t);
            else
                print_router(t, only != NULL);
        }
    }
    return RS_EXIT_OK;
}
