/* Fuzz target: `routesim import megatron` on any bytes (tests/fuzz/harness_import.h): the
 * input split into files at "@@ NAME" lines (router_trace_rank0.jsonl, logits_rank0.bin, ...) under the
 * directory it imports. */
#include "tests/fuzz/harness_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rs_fuzz_import("megatron", data, size);
    return 0;
}
