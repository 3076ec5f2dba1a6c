/* Fuzz target: `routesim import llmrouterbench` on any bytes (tests/fuzz/harness_import.h): the
 * input split into files at "@@ NAME" lines under the results directory. */
#include "tests/fuzz/harness_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rs_fuzz_import("llmrouterbench", data, size);
    return 0;
}
