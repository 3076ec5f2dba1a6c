/* routesim import FORMAT INPUT -o TRACE.h5 [options]: converts routing logs
 * written by other tools into traces. The formats, their options and their
 * help come from the importer table (workloads/import/registry.def); an
 * option `top_k` is spelled --top-k, a BOOL option is a flag. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "sim/cli/cli.h"
#include "workloads/import/importer.h"

enum { FIRST_OPTION = 256, FORCE_OPTION = 255, NAME_MAX_LEN = 64, MAX_OUTPUT_GB = 'M', NO_SIZE_LIMIT = 'N' };

/* "top_k" -> "top-k" */
static void flag_name(const char *param, char *out)
{
    snprintf(out, NAME_MAX_LEN, "%s", param);
    for (char *c = out; *c; c++)
        if (*c == '_')
            *c = '-';
}

/* "--top-k K" or "--strict" */
static void option_text(const rs_importer_type *t, int i, char *out, size_t size)
{
    char flag[NAME_MAX_LEN];
    flag_name(t->options[i].name, flag);
    snprintf(out, size, "--%s%s%s", flag, t->forms[i].value ? " " : "", t->forms[i].value ? t->forms[i].value : "");
}

/* Prints text wrapped to lines of at most width columns, every line after
 * the first indented by indent. */
static void print_wrapped(const char *text, int column, int indent, int width)
{
    while (*text) {
        int room = width - column, len = (int)strlen(text);
        int cut = len;
        if (len > room) {
            cut = room;
            while (cut > 0 && text[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = len;
        }
        printf("%.*s\n", cut, text);
        text += cut;
        while (*text == ' ')
            text++;
        if (*text)
            printf("%*s", indent, "");
        column = indent;
    }
}

static void print_options(const rs_importer_type *t)
{
    printf("  %-22s %s\n", "-o, --out FILE", "the trace to write (required; written atomically)");
    printf("  %-22s %s\n", "--force", "let -o replace an existing file that is not a trace (never INPUT)");
    for (int i = 0; i < t->num_options; i++) {
        char text[128];
        option_text(t, i, text, sizeof text);
        printf("  %-22s ", text);
        print_wrapped(t->options[i].help, 25, 25, 110);
    }
    printf("  %-22s %s\n", "--max-output-gb N", "refuse a trace over N GiB (default 64; free disk space is checked too)");
    printf("  %-22s %s\n", "--no-size-limit", "write whatever size the trace takes; checks neither limit nor free space");
}

/* What the usage line calls the input: "DIR|INPUT...", "DIR", "INPUT..." or "INPUT". */
static const char *input_word(const rs_importer_type *t)
{
    const unsigned dir_or_files = RS_IMPORTER_DIRECTORY | RS_IMPORTER_MANY_INPUTS;
    return (t->flags & dir_or_files) == dir_or_files ? "DIR|INPUT..."
           : t->flags & RS_IMPORTER_DIRECTORY         ? "DIR"
           : t->flags & RS_IMPORTER_MANY_INPUTS       ? "INPUT..."
                                                      : "INPUT";
}

static void format_usage(const rs_importer_type *t)
{
    printf("usage: routesim import %s %s -o TRACE.h5", t->name, input_word(t));
    for (int i = 0; i < t->num_options; i++) {
        char text[128];
        option_text(t, i, text, sizeof text);
        printf(t->forms[i].flags & RS_IMPORT_REQUIRED ? " %s" : " [%s]", text);
    }
    printf("\n\n%s\noptions:\n", t->help);
    print_options(t);
    if (t->example) {
        printf("\nexample:\n  ");
        for (const char *c = t->example; *c; c++)
            printf(*c == '\n' ? "\n  " : "%c", *c);
        printf("\n");
    }
}

static void usage(void)
{
    printf("usage: routesim import FORMAT INPUT -o TRACE.h5 [options]\n\n"
           "Converts routing logs written by other tools into a routesim trace.\n\nformats:\n");
    for (int f = 0; f < rs_importer_count(); f++) {
        const rs_importer_type *t = rs_importer_at(f);
        printf("  %-12s %s\n", t->name, t->summary);
        printf("  %-12s options:", "");
        for (int i = 0; i < t->num_options; i++) {
            char text[128];
            option_text(t, i, text, sizeof text);
            printf(" %s%s%s", text, t->forms[i].flags & RS_IMPORT_REQUIRED ? " (required)" : "",
                   i + 1 < t->num_options ? "," : "\n");
        }
    }
    printf("\nEvery format also takes --max-output-gb N (refuse a trace over N GiB; default 64, and the free\n"
           "disk space is checked too) and --no-size-limit (check neither).\n"
           "-o replaces an existing trace; --force lets it replace a file of another kind (never INPUT).\n"
           "'routesim import FORMAT --help' describes one format and its options.\n");
}

/* Sets option i from the command line; a bad value is a usage error. A
 * repeatable list given again is appended to what came before. */
static int set_option(const char *command, const rs_importer_type *t, rs_params *p, int i, const char *value)
{
    const rs_param_def *d = &t->options[i];
    char flag[NAME_MAX_LEN + 2] = "--";
    flag_name(d->name, flag + 2);
    rs_error err = {{0}};
    if (d->kind == RS_PARAM_BOOL)
        value = "1";
    long long number = 0;
    if (d->kind == RS_PARAM_INT &&
        rs_cli_parse_long(command, flag, value, (long long)d->min, (long long)d->max, &number) != 0)
        return RS_EXIT_USAGE;
    if (d->kind == RS_PARAM_ENUM) { /* named by its flag, as the other usage errors are */
        size_t n = strlen(value);
        const char *c = d->choices;
        while (c && !(strncmp(c, value, n) == 0 && (c[n] == '|' || c[n] == '\0')))
            c = (c = strchr(c, '|')) ? c + 1 : NULL;
        if (!c || n == 0)
            return rs_cli_usage_error(command, "%s: '%s' is not one of %s", flag, value, d->choices);
    }
    const char *before = rs_param_str(p, d->name);
    if ((t->forms[i].flags & RS_IMPORT_REPEATABLE) && before && p->v[i].explicit_) {
        char joined[4096];
        snprintf(joined, sizeof joined, "%s,%s", before, value);
        if (rs_params_set(p, d->name, joined, &err) != 0)
            return rs_cli_usage_error(command, "%s", err.msg);
        return 0;
    }
    if (rs_params_set(p, d->name, value, &err) != 0)
        return rs_cli_usage_error(command, "%s", err.msg);
    return 0;
}

/* The checks before anything is read: one input (or several where the
 * format takes them), -o, required options, the importer's own check. */
static int check_arguments(const char *command, const rs_importer_type *t, const rs_params *p, int inputs,
                           const char *output)
{
    if ((t->flags & RS_IMPORTER_DIRECTORY) && (t->flags & RS_IMPORTER_MANY_INPUTS)) {
        if (inputs < 1)
            return rs_cli_usage_error(command, "expected a directory or one or more input files");
    } else if (t->flags & RS_IMPORTER_DIRECTORY) {
        if (inputs != 1)
            return rs_cli_usage_error(command, "expected one directory");
    } else if (t->flags & RS_IMPORTER_MANY_INPUTS) {
        if (inputs < 1)
            return rs_cli_usage_error(command, "expected one or more input files");
    } else if (inputs != 1) {
        return rs_cli_usage_error(command, "expected one input file ('-' for standard input)");
    }
    if (!output)
        return rs_cli_usage_error(command, "-o TRACE.h5 is required");
    for (int i = 0; i < t->num_options; i++) {
        if ((t->forms[i].flags & RS_IMPORT_REQUIRED) && !rs_param_is_set(p, t->options[i].name)) {
            char text[128];
            option_text(t, i, text, sizeof text);
            return rs_cli_usage_error(command, "%s is required", text);
        }
    }
    rs_error err = {{0}};
    if (t->check && t->check(p, &err) != 0)
        return rs_cli_usage_error(command, "%s", err.msg);
    return 0;
}

static int import_format(const rs_importer_type *t, int argc, char **argv)
{
    char command[NAME_MAX_LEN + 8];
    snprintf(command, sizeof command, "import %s", t->name);
    if (rs_cli_wants_help(argc, argv)) {
        format_usage(t);
        return RS_EXIT_OK;
    }
    struct option options[RS_PARAMS_MAX + 5] = {{"out", required_argument, NULL, 'o'},
                                                {"max-output-gb", required_argument, NULL, MAX_OUTPUT_GB},
                                                {"no-size-limit", no_argument, NULL, NO_SIZE_LIMIT},
                                                {"force", no_argument, NULL, FORCE_OPTION}};
    char names[RS_PARAMS_MAX][NAME_MAX_LEN];
    for (int i = 0; i < t->num_options && i < RS_PARAMS_MAX; i++) {
        flag_name(t->options[i].name, names[i]);
        options[i + 4] = (struct option){names[i], t->forms[i].value ? required_argument : no_argument, NULL,
                                         FIRST_OPTION + i};
    }
    rs_params p;
    rs_error err = {{0}};
    if (rs_importer_options_init(t, &p, command, &err) != 0)
        return rs_cli_fail(&err);
    const char *output = NULL;
    rs_output_limit limit = {0};
    int rc = 0, force = 0;
    optind = 1;
    opterr = 0;
    for (int c; rc == 0 && (c = getopt_long(argc, argv, "o:", options, NULL)) != -1;) {
        if (c == 'o')
            output = optarg;
        else if (c == MAX_OUTPUT_GB)
            rc = rs_cli_parse_output_limit(command, optarg, &limit) == 0 ? 0 : RS_EXIT_USAGE;
        else if (c == NO_SIZE_LIMIT)
            limit.max_gib = -1;
        else if (c == FORCE_OPTION)
            force = 1;
        else if (c >= FIRST_OPTION)
            rc = set_option(command, t, &p, c - FIRST_OPTION, optarg);
        else
            rc = rs_cli_usage_error(command, "unknown option or missing value '%s'", argv[optind - 1]);
    }
    if (rc == 0)
        rc = check_arguments(command, t, &p, argc - optind, output);
    if (rc == 0) {
        rs_import_job job = {.input = argv[optind],
                             .inputs = (const char *const *)(argv + optind),
                             .num_inputs = argc - optind,
                             .output = output,
                             .options = &p,
                             .limit = limit,
                             .force = force};
        rc = rs_import_run(t, &job, &err) == 0 ? RS_EXIT_OK : rs_cli_fail(&err);
    }
    rs_params_free(&p);
    return rc;
}

int rs_cmd_import(int argc, char **argv)
{
    const rs_importer_type *t = argc >= 2 ? rs_importer_find(argv[1]) : NULL;
    if (t)
        return import_format(t, argc - 1, argv + 1);
    if (rs_cli_wants_help(argc, argv)) {
        usage();
        return RS_EXIT_OK;
    }
    char names[256];
    rs_importer_names(0, "", ", ", names, sizeof names);
    if (argc < 2)
        return rs_cli_usage_error("import", "expected a format (%s)", names);
    return rs_cli_usage_error("import", "unknown format '%s' (formats: %s)", argv[1], names);
}
