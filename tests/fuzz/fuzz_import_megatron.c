/* Fuzz target: `routesim import megatron` on a directory of any files
 * (tests/fuzz/harness_import.h: "==> router_trace_rank0.jsonl <==" lines
 * start the files). */
#include "tests/fuzz/harness_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rs_fuzz_import_dir("megatron", data, size);
    return 0;
}
