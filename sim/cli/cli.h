/* Shared pieces of the command-line front end. Each subcommand lives in its
 * own sim/cli_<name>.c and is listed in sim/cli/main.c. */
#ifndef ROUTESIM_CLI_H
#define ROUTESIM_CLI_H

#include "core/output_space.h"
#include "routesim/error.h"

typedef struct rs_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} rs_command;

/* Exit codes: 0 success, 1 bad input or failed run, 2 bad usage. */
enum { RS_EXIT_OK = 0, RS_EXIT_FAIL = 1, RS_EXIT_USAGE = 2 };

/* Prints "routesim: error: <message>" and returns RS_EXIT_FAIL. */
int rs_cli_fail(const rs_error *err);
/* Prints "routesim: <command>: <message>" plus a pointer to --help and returns RS_EXIT_USAGE. */
int rs_cli_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* True when argv holds -h or --help. */
int rs_cli_wants_help(int argc, char **argv);
/* Parses an integer or number option value, or reports a usage error. */
int rs_cli_parse_long(const char *command, const char *option, const char *text, long long min, long long max,
                      long long *out);

/* --by LIST: breakdown dimensions ("domain", "phase", "domain,phase") added
 * to *dims; a usage error otherwise. */
int rs_cli_parse_breakdown(const char *command, const char *text, unsigned *dims);
/* --device cpu|gpu into *device (RS_DEVICE_CPU, RS_DEVICE_GPU). */
int rs_cli_parse_device(const char *command, const char *text, int *device);

/* --max-output-gb N: a limit in GiB, a number > 0; a usage error otherwise. */
int rs_cli_parse_output_limit(const char *command, const char *text, rs_output_limit *limit);
/* The help lines of --max-output-gb and --no-size-limit. */
#define RS_CLI_OUTPUT_LIMIT_HELP                                                                                     \
    "  --max-output-gb N            refuse an output over N GiB (default 64; the free disk space is checked too)\n" \
    "  --no-size-limit              write whatever size the output takes; checks neither limit nor free space\n"

int rs_cmd_run(int argc, char **argv);
int rs_cmd_route(int argc, char **argv);
int rs_cmd_info(int argc, char **argv);
int rs_cmd_routers(int argc, char **argv);
int rs_cmd_metrics(int argc, char **argv);
int rs_cmd_gen(int argc, char **argv);
int rs_cmd_import(int argc, char **argv);
int rs_cmd_plot(int argc, char **argv);
int rs_cmd_place(int argc, char **argv);

#endif
