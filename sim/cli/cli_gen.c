/* routesim gen --preset NAME --tokens N --seed S -o FILE: a synthetic trace
 * shaped like a real MoE model (docs/generator.md). Every generator setting
 * is an option of the same name, so the command line and a config's
 * "generate" block accept the same words. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/cli/cli.h"
#include "workloads/generator/generator.h"
#include "workloads/generator/generator_presets.h"
#include "workloads/trace/output_check.h"

static void list_presets(void)
{
    for (int i = 0; i < rs_generator_preset_count(); i++)
        printf("  %-17s %s\n", rs_generator_preset_name(i), rs_generator_preset_summary(i));
}

static const char *value_hint(const rs_param_def *d)
{
    switch (d->kind) {
    case RS_PARAM_INT: return "N";
    case RS_PARAM_FLOAT: return "X";
    case RS_PARAM_BOOL: return "0|1";
    case RS_PARAM_ENUM: return "NAME";
    case RS_PARAM_STRING: return "TEXT";
    }
    return "VALUE";
}

/* Defaults are shown for `preset`, so `gen --preset olmoe --help` shows OLMoE's. */
static void usage(int preset)
{
    printf("usage: routesim gen [--preset NAME] [--tokens N] [--seed S] [--SETTING VALUE ...] -o FILE\n\n"
           "Writes a synthetic trace (routesim trace format v1) whose router logits carry the structure\n"
           "of real ones: expert popularity skew, sequence domains, token-id dependence, temporal\n"
           "locality and layer-to-layer affinity. The same settings and seed give the same trace.\n"
           "A config's \"generate\" block takes the same settings by name.\n\n"
           "settings (defaults marked * come from the preset, here %s):\n",
           rs_generator_preset_name(preset));
    int n = 0;
    const rs_param_def *defs = rs_generator_param_defs(&n);
    for (int i = 0; i < n; i++) {
        char option[64], def[64];
        snprintf(option, sizeof option, "%s %s", defs[i].name, value_hint(&defs[i]));
        if (rs_generator_default_text(preset, defs[i].name, def, sizeof def) < 0)
            snprintf(def, sizeof def, "none");
        printf("  --%-26s %s (default %s%s)\n", option, defs[i].help, def, defs[i].default_value ? "" : "*");
    }
    printf("\noptions:\n"
           "  -o, --out FILE               the trace to write (written atomically)\n"
           "  --force                      let -o replace an existing file that is not a trace\n"
           "  --list-presets               list the presets\n"
           "  --markdown                   print the settings and presets tables of docs/generator.md\n"
           "  --no-progress                no progress bar\n"
           RS_CLI_OUTPUT_LIMIT_HELP
           "\nOptions may be written --name VALUE or --name=VALUE; '-' and '_' are interchangeable.\n"
           "\npresets:\n");
    list_presets();
}

/* Markdown cell text: '|' would end the cell. */
static void print_cell(const char *text)
{
    for (const char *c = text; *c; c++)
        printf(*c == '|' ? "\\|" : "%c", *c);
}

/* The reference tables of docs/generator.md (kept in step by the tests). */
static void markdown(void)
{
    int n = 0;
    const rs_param_def *defs = rs_generator_param_defs(&n);
    printf("| setting | type | default | range | meaning |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const rs_param_def *d = &defs[i];
        printf("| `%s` | %s | %s | ", d->name, rs_param_kind_name(d->kind),
               d->default_value ? d->default_value : "preset");
        if (d->kind == RS_PARAM_INT || d->kind == RS_PARAM_FLOAT)
            printf("[%g, %g]", d->min, d->max);
        else if (d->kind == RS_PARAM_BOOL)
            printf("0 or 1");
        else if (d->kind == RS_PARAM_ENUM)
            print_cell(d->choices);
        printf(" | %s |\n", d->help);
    }
    printf("\n| preset | model | layers | experts | k | scoring | norm_topk | first MoE layer | vocab | seq_len |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < rs_generator_preset_count(); i++) {
        const rs_generator_preset *p = rs_generator_preset_at(i);
        printf("| `%s` | %s | %d | %d | %d | %s | %d | %d | %d | %d |\n", p->name, p->model ? p->model : "(none)",
               p->layers, p->experts, p->k, p->scoring, p->norm_topk, p->first_layer, p->vocab, p->seq_len);
    }
    static const char *const knobs[] = {"skew",           "skew_spread",      "domain_scale",   "locality",
                                        "locality_scale", "token_dependence", "layer_affinity", "noise",
                                        "logit_offset",   "bias_correction"};
    const int num_knobs = (int)(sizeof knobs / sizeof knobs[0]);
    printf("\n| preset |");
    for (int j = 0; j < num_knobs; j++)
        printf(" %s |", knobs[j]);
    printf("\n|---|");
    for (int j = 0; j < num_knobs; j++)
        printf("---|");
    printf("\n");
    for (int i = 0; i < rs_generator_preset_count(); i++) {
        printf("| `%s` |", rs_generator_preset_name(i));
        for (int j = 0; j < num_knobs; j++) {
            char text[64];
            rs_generator_default_text(i, knobs[j], text, sizeof text);
            printf(" %s |", text);
        }
        printf("\n");
    }
}

static int is_setting(const char *name)
{
    int n = 0;
    const rs_param_def *defs = rs_generator_param_defs(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0)
            return 1;
    return 0;
}

/* "--seq-len=64" -> name "seq_len", value "64"; value NULL when not inline. */
static int split_option(const char *arg, char *name, size_t size, const char **value)
{
    const char *body = arg + 2, *eq = strchr(body, '=');
    size_t len = eq ? (size_t)(eq - body) : strlen(body);
    if (len == 0 || len >= size)
        return -1;
    for (size_t i = 0; i < len; i++)
        name[i] = body[i] == '-' ? '_' : body[i];
    name[len] = '\0';
    *value = eq ? eq + 1 : NULL;
    return 0;
}

/* The preset named on the command line, for --help; the default otherwise. */
static int help_preset(int argc, char **argv)
{
    int preset = 0;
    for (int i = 1; i < argc; i++) {
        const char *name = NULL;
        if (strcmp(argv[i], "--preset") == 0 && i + 1 < argc)
            name = argv[i + 1];
        else if (strncmp(argv[i], "--preset=", 9) == 0)
            name = argv[i] + 9;
        for (int p = 0; name && p < rs_generator_preset_count(); p++)
            if (strcmp(rs_generator_preset_name(p), name) == 0)
                preset = p;
    }
    return preset;
}

enum { GENERATE, LIST_PRESETS, MARKDOWN };

static int parse(int argc, char **argv, rs_params *params, const char **out, int *progress, rs_output_limit *limit,
                 int *force,
                 int *action)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value = NULL;
        char name[64];
        if (strcmp(arg, "--list-presets") == 0 || strcmp(arg, "--list_presets") == 0) {
            *action = LIST_PRESETS;
            continue;
        }
        if (strcmp(arg, "--markdown") == 0) {
            *action = MARKDOWN;
            continue;
        }
        if (strcmp(arg, "--no-progress") == 0 || strcmp(arg, "--no_progress") == 0) {
            *progress = 0;
            continue;
        }
        if (strcmp(arg, "--no-size-limit") == 0 || strcmp(arg, "--no_size_limit") == 0) {
            limit->max_gib = -1;
            continue;
        }
        if (strcmp(arg, "--force") == 0) {
            *force = 1;
            continue;
        }
        if (strcmp(arg, "-o") == 0) {
            snprintf(name, sizeof name, "out");
        } else if (strncmp(arg, "--", 2) != 0) {
            return rs_cli_usage_error("gen", "unexpected argument '%s'", arg);
        } else if (split_option(arg, name, sizeof name, &value) != 0 ||
                   (strcmp(name, "out") != 0 && strcmp(name, "max_output_gb") != 0 && !is_setting(name))) {
            return rs_cli_usage_error("gen", "unknown option '%s'", arg);
        }
        if (!value) {
            if (i + 1 >= argc)
                return rs_cli_usage_error("gen", "option '%s' needs a value", arg);
            value = argv[++i];
        }
        if (strcmp(name, "out") == 0) {
            *out = value;
            continue;
        }
        if (strcmp(name, "max_output_gb") == 0) {
            if (rs_cli_parse_output_limit("gen", value, limit) != 0)
                return RS_EXIT_USAGE;
            continue;
        }
        rs_error err = {{0}};
        if (rs_params_set(params, name, value, &err) != 0) {
            fprintf(stderr, "routesim: %s (see routesim gen --help)\n", err.msg);
            return RS_EXIT_USAGE;
        }
    }
    return RS_EXIT_OK;
}

int rs_cmd_gen(int argc, char **argv)
{
    if (rs_cli_wants_help(argc, argv)) {
        usage(help_preset(argc, argv));
        return RS_EXIT_OK;
    }
    rs_error err = {{0}};
    rs_params params;
    if (rs_generator_params_init(&params, "gen", &err) != 0)
        return rs_cli_fail(&err);
    const char *out = NULL;
    int progress = -1, force = 0, action = GENERATE;
    rs_output_limit limit = {0};
    int rc = parse(argc, argv, &params, &out, &progress, &limit, &force, &action);
    rs_output_check check = {.path = out, .kind = RS_FILE_TRACE, .what = "trace", .force = force};
    if (rc == RS_EXIT_OK && action == LIST_PRESETS) {
        list_presets();
    } else if (rc == RS_EXIT_OK && action == MARKDOWN) {
        markdown();
    } else if (rc == RS_EXIT_OK && !out) {
        rc = rs_cli_usage_error("gen", "-o FILE is required");
    } else if (rc == RS_EXIT_OK && rs_generator_check(&params, &err) != 0) {
        fprintf(stderr, "routesim: %s (see routesim gen --help)\n", err.msg);
        rc = RS_EXIT_USAGE;
    } else if (rc == RS_EXIT_OK && rs_output_check_path(&check, &err) != 0) {
        rc = rs_cli_fail(&err);
    } else if (rc == RS_EXIT_OK) {
        if (rs_generate_trace(out, &params, &limit, progress, &err) != 0)
            rc = rs_cli_fail(&err);
        else
            fprintf(stderr, "routesim: wrote %s (%lld tokens)\n", out, rs_param_int(&params, "tokens"));
    }
    rs_params_free(&params);
    return rc;
}
