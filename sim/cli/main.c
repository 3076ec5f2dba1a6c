/* routesim: replay recorded router inputs against routing strategies and
 * measure what papers report. */
#include <stdio.h>
#include <string.h>

#include "sim/cli/cli.h"
#include "sim/experiment/ranks.h"
#include "version.h"

static const rs_command commands[] = {
    {"run", "run an experiment config (default: experiments/quickstart.json)", rs_cmd_run},
    {"route", "route one trace with one router; write decisions, print metrics", rs_cmd_route},
    {"info", "describe a trace file", rs_cmd_info},
    {"routers", "list routers and their parameters", rs_cmd_routers},
    {"metrics", "list metric families and their outputs", rs_cmd_metrics},
    {"gen", "generate a synthetic trace shaped like a real model", rs_cmd_gen},
    {"import", "convert routing logs into a trace", rs_cmd_import},
    {"plot", "figures from a results directory (gnuplot)", rs_cmd_plot},
    {"place", "plan an expert placement (EPLB, ...) from expert loads; write it as JSON", rs_cmd_place},
};

static void usage(FILE *out)
{
    fprintf(out,
            "routesim %s: a simulator and benchmark for routing algorithms\n\n"
            "usage: routesim COMMAND [ARGS...]\n\ncommands:\n",
            ROUTESIM_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'routesim COMMAND --help' describes one command. 'routesim --version' prints the version.\n");
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return RS_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return RS_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("routesim %s (%s)\n", ROUTESIM_VERSION, ROUTESIM_REVISION);
        return RS_EXIT_OK;
    }
    /* only run splits its work across MPI ranks; the others would all write the same files */
    if (rs_ranks_size() > 1 && strcmp(argv[1], "run") != 0) {
        if (rs_ranks_rank() == 0)
            fprintf(stderr, "routesim: %s: runs in one process only; of the commands, only run splits across MPI ranks\n",
                    argv[1]);
        return RS_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "routesim: unknown command '%s' (see routesim --help)\n", argv[1]);
    return RS_EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (rs_ranks_init(&argc, &argv) != 0) {
        fprintf(stderr, "routesim: error: cannot start MPI\n");
        return RS_EXIT_FAIL;
    }
    int rc = dispatch(argc, argv);
    rs_ranks_finalize();
    return rc;
}
