/* Fuzz target: `routesim import routerbench` on any bytes (tests/fuzz/harness_import.h). */
#include "tests/fuzz/harness_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rs_fuzz_import("routerbench", data, size);
    return 0;
}
