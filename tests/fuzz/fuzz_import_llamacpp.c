/* Fuzz target: `routesim import llamacpp` on any bytes (tests/fuzz/harness_import.h): the
 * input split into files at "@@ NAME" lines, each an input CSV. */
#include "tests/fuzz/harness_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rs_fuzz_import("llamacpp", data, size);
    return 0;
}
