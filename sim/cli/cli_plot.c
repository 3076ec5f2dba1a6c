/* routesim plot RESULTS_DIR: figures from results.csv with gnuplot
 * (docs/plots.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/cli/cli.h"
#include "plots/plot.h"

static void usage(void)
{
    printf("usage: routesim plot RESULTS_DIR [options]\n\n"
           "Makes figures from RESULTS_DIR/results.csv (written by routesim run): for each figure a data\n"
           "file (.dat), a self-contained gnuplot script (.gp) and a caption (.txt) in RESULTS_DIR/plots/,\n"
           "rendered with gnuplot when it is installed. Without --kind and --metric it makes every figure\n"
           "the results allow.\n\n"
           "options:\n"
           "  --format FMT        png, svg or pdf; several: png,pdf or the option repeated (default png)\n"
           "  --size SIZE         single (3.5 in wide, one column) or double (7 in, two columns); default single\n"
           "  --kind KIND         only these figure kinds (repeatable, or a comma list)\n"
           "  --metric NAME       only these metrics, e.g. load.maxvio, or families, e.g. load (repeatable)\n"
           "  --output DIR        write here instead of RESULTS_DIR/plots\n"
           "  --style FILE        gnuplot commands added to every script before its plot command\n"
           "                      (default: the file named by $ROUTESIM_PLOT_STYLE, if any)\n"
           "  --no-render         write data files and scripts only\n"
           "  -q, --quiet         no summary on stderr\n\n"
           "kinds:\n");
    for (int k = 0; k < rs_plot_kind_count(); k++)
        printf("  %-13s needs %s\n", rs_plot_kind_name(k), rs_plot_kind_needs(k));
    printf("\nRender a script again, in another format or size, from any directory:\n"
           "  gnuplot -e \"fmt='pdf'; size='double'\" RESULTS_DIR/plots/NAME.gp\n"
           "gnuplot comes from Debian's gnuplot-nox package (scripts/install-deps.sh installs it);\n"
           "$ROUTESIM_GNUPLOT names another gnuplot binary.\n");
}

typedef struct name_list {
    char **items;
    int n;
} name_list;

/* Adds the comma-separated names of text. */
static int add_names(name_list *list, const char *text)
{
    for (const char *p = text;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            char **grown = realloc(list->items, (size_t)(list->n + 1) * sizeof *grown);
            if (!grown)
                return -1;
            list->items = grown;
            if (!(list->items[list->n] = strndup(p, len)))
                return -1;
            list->n++;
        }
        if (!end)
            return 0;
        p = end + 1;
    }
}

static void free_names(name_list *list)
{
    for (int i = 0; i < list->n; i++)
        free(list->items[i]);
    free(list->items);
}

int rs_cmd_plot(int argc, char **argv)
{
    if (rs_cli_wants_help(argc, argv)) {
        usage();
        return RS_EXIT_OK;
    }
    static const struct option options[] = {
        {"format", required_argument, NULL, 'f'}, {"size", required_argument, NULL, 's'},
        {"kind", required_argument, NULL, 'k'},   {"metric", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'}, {"style", required_argument, NULL, 'S'},
        {"no-render", no_argument, NULL, 'n'},    {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    rs_plot_options opt = {0};
    name_list kinds = {0}, metrics = {0}, formats = {0};
    int rc = RS_EXIT_OK;
    optind = 1;
    opterr = 0;
    for (int c; rc == RS_EXIT_OK && (c = getopt_long(argc, argv, "q", options, NULL)) != -1;) {
        switch (c) {
        case 'f':
            if (add_names(&formats, optarg) != 0)
                rc = rs_cli_usage_error("plot", "out of memory");
            break;
        case 's':
            if (strcmp(optarg, "single") != 0 && strcmp(optarg, "double") != 0)
                rc = rs_cli_usage_error("plot", "--size: expected single or double, got '%s'", optarg);
            opt.size = optarg;
            break;
        case 'k':
            if (add_names(&kinds, optarg) != 0)
                rc = rs_cli_usage_error("plot", "out of memory");
            break;
        case 'm':
            if (add_names(&metrics, optarg) != 0)
                rc = rs_cli_usage_error("plot", "out of memory");
            break;
        case 'o': opt.output_dir = optarg; break;
        case 'S': opt.style_file = optarg; break;
        case 'n': opt.no_render = 1; break;
        case 'q': opt.quiet = 1; break;
        default: rc = rs_cli_usage_error("plot", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (rc == RS_EXIT_OK && argc - optind != 1)
        rc = rs_cli_usage_error("plot", argc - optind < 1 ? "expected a results directory"
                                                          : "expected one results directory");
    for (int i = 0; rc == RS_EXIT_OK && i < kinds.n; i++) {
        int known = 0;
        for (int k = 0; k < rs_plot_kind_count() && !known; k++)
            known = strcmp(kinds.items[i], rs_plot_kind_name(k)) == 0;
        if (!known) {
            char list[256] = "";
            for (int k = 0; k < rs_plot_kind_count(); k++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k ? ", " : "", rs_plot_kind_name(k));
            rc = rs_cli_usage_error("plot", "--kind: unknown kind '%s' (known: %s)", kinds.items[i], list);
        }
    }
    char format_text[64] = "";
    for (int i = 0; rc == RS_EXIT_OK && i < formats.n; i++) {
        const char *f = formats.items[i];
        if (strcmp(f, "png") != 0 && strcmp(f, "svg") != 0 && strcmp(f, "pdf") != 0)
            rc = rs_cli_usage_error("plot", "--format: unknown format '%s' (known: png, svg, pdf)", f);
        else if (!strstr(format_text, f))
            snprintf(format_text + strlen(format_text), sizeof format_text - strlen(format_text), "%s%s",
                     format_text[0] ? "," : "", f);
    }
    if (rc == RS_EXIT_OK) {
        opt.results_dir = argv[optind];
        opt.formats = format_text[0] ? format_text : NULL;
        opt.kinds = (const char *const *)kinds.items;
        opt.num_kinds = kinds.n;
        opt.metrics = (const char *const *)metrics.items;
        opt.num_metrics = metrics.n;
        rs_error err = {{0}};
        if (rs_plot_make(&opt, &err) != 0)
            rc = rs_cli_fail(&err);
    }
    free_names(&kinds);
    free_names(&metrics);
    free_names(&formats);
    return rc;
}
