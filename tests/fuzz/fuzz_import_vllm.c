/* Fuzz target: `routesim import vllm` on any bytes (tests/fuzz/harness_import.h): the
 * input split into files at "@@ NAME" lines, each a request's .npz. */
#include "tests/fuzz/harness_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rs_fuzz_import("vllm", data, size);
    return 0;
}
