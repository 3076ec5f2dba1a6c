#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/cli/cli.h"
#include "sim/config/breakdown.h"
#include "sim/engine/engine.h"
#include "sim/experiment/ranks.h"

int rs_cli_fail(const rs_error *err)
{
    if (rs_ranks_rank() != 0) { /* of an MPI job: rank 0 says an error the ranks agreed on */
        if (!rs_ranks_failure_shared())
            fprintf(stderr, "routesim: error: rank %d of %d: %s\n", rs_ranks_rank(), rs_ranks_size(),
                    err->msg[0] ? err->msg : "unknown failure");
        return RS_EXIT_FAIL;
    }
    fprintf(stderr, "routesim: error: %s\n", err->msg[0] ? err->msg : "unknown failure");
    return RS_EXIT_FAIL;
}

int rs_cli_usage_error(const char *command, const char *fmt, ...)
{
    if (rs_ranks_rank() != 0) /* every rank of an MPI job reads the same arguments */
        return RS_EXIT_USAGE;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "routesim: %s: ", command);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see routesim %s --help)\n", command);
    va_end(ap);
    return RS_EXIT_USAGE;
}

int rs_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

int rs_cli_parse_long(const char *command, const char *option, const char *text, long long min, long long max,
                      long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno == ERANGE || v < min || v > max) {
        rs_cli_usage_error(command, "%s: expected an integer in [%lld, %lld], got '%s'", option, min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

int rs_cli_parse_breakdown(const char *command, const char *text, unsigned *dims)
{
    unsigned parsed = 0;
    rs_error err = {{0}};
    if (rs_breakdown_parse(text, &parsed, "--by", &err) != 0) {
        rs_cli_usage_error(command, "%s", err.msg);
        return -1;
    }
    *dims |= parsed;
    return 0;
}

int rs_cli_parse_device(const char *command, const char *text, int *device)
{
    if (strcmp(text, "cpu") != 0 && strcmp(text, "gpu") != 0) {
        rs_cli_usage_error(command, "--device: expected cpu or gpu, got '%s'", text);
        return -1;
    }
    *device = strcmp(text, "gpu") == 0 ? RS_DEVICE_GPU : RS_DEVICE_CPU;
    return 0;
}

int rs_cli_parse_output_limit(const char *command, const char *text, rs_output_limit *limit)
{
    char *end = NULL;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(v) || v <= 0) {
        rs_cli_usage_error(command, "--max-output-gb: expected a size in GiB > 0, got '%s'", text);
        return -1;
    }
    limit->max_gib = v;
    return 0;
}
