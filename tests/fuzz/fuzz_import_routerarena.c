/* Fuzz target: `routesim import routerarena` on any bytes
 * (tests/fuzz/harness_import.h). The input is the prediction file; a line
 * "#costs" ends it, and what follows is the model_cost.json it is imported
 * with (without one, a fixed file pricing m0, m1, m2 and gpt-4o-mini). An
 * options line may come first, as for every import target. The cost file
 * lives outside the harness's scratch directory, whose stray files count as
 * a broken promise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fuzz/harness.h"
#include "tests/fuzz/harness_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char default_costs[] =
    "{\"m0\": {\"input_token_price_per_million\": 0.15, \"output_token_price_per_million\": 0.6},\n"
    " \"m1\": {\"input_token_price_per_million\": 1, \"output_token_price_per_million\": 2},\n"
    " \"m2\": {\"input_token_price_per_million\": 0, \"output_token_price_per_million\": 0},\n"
    " \"gpt-4o-mini\": {\"input_token_price_per_million\": 0.15, \"output_token_price_per_million\": 0.6}}\n";
static const char marker[] = "\n#costs\n";

static char costs_dir[512], costs_path[600];

static void remove_costs(void)
{
    unlink(costs_path);
    rmdir(costs_dir);
}

static void make_costs_dir(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(costs_dir, sizeof costs_dir, "%s/routesim-fuzz-costs-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(costs_dir))
        rs_fuzz_fail("cannot create %s", costs_dir);
    snprintf(costs_path, sizeof costs_path, "%s/model_cost.json", costs_dir);
    atexit(remove_costs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!costs_dir[0])
        make_costs_dir();
    /* the options line, if any, then the predictions, then "#costs" and the prices */
    size_t options_len = 0, body = 0;
    if (size >= 2 && data[0] == '-' && data[1] == '-') {
        const uint8_t *nl = memchr(data, '\n', size);
        options_len = nl ? (size_t)(nl - data) : size;
        body = nl ? options_len + 1 : size;
    }
    size_t predictions_end = size;
    for (size_t i = body; i + sizeof marker - 1 <= size; i++)
        if (memcmp(data + i, marker, sizeof marker - 1) == 0) {
            predictions_end = i;
            break;
        }
    if (predictions_end < size) {
        size_t from = predictions_end + sizeof marker - 1;
        rs_fuzz_write_file(costs_path, data + from, size - from);
    } else {
        rs_fuzz_write_file(costs_path, default_costs, sizeof default_costs - 1);
    }
    /* "--costs=PATH [the input's options]\n" + the predictions */
    size_t head = strlen("--costs=") + strlen(costs_path) + 1 + options_len + 1;
    size_t total = head + (predictions_end - body);
    uint8_t *input = malloc(total);
    if (!input)
        rs_fuzz_fail("out of memory");
    int n = snprintf((char *)input, head + 1, "--costs=%s ", costs_path);
    memcpy(input + n, data, options_len);
    input[n + options_len] = '\n';
    memcpy(input + n + options_len + 1, data + body, predictions_end - body);
    rs_fuzz_import("routerarena", input, (size_t)n + options_len + 1 + (predictions_end - body));
    free(input);
    return 0;
}
