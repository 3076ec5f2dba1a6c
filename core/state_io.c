#include "core/state_io.h"

#include <string.h>

void rs_state_io_start(rs_state_io *io, FILE *f, int restoring)
{
    memset(io, 0, sizeof *io);
    io->f = f;
    io->restoring = restoring;
    io->hash = 0x6a09e667f3bcc909ULL;
}

int rs_state_restoring(const rs_state_io *io) { return io->restoring; }

void rs_state_fail(rs_state_io *io) { io->failed = 1; }

/* Word at a time: checkpoints of large accumulators hash hundreds of MB. */
static uint64_t mix(uint64_t h, const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = ((h ^ w) * 0x9e3779b97f4a7c15ULL);
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h ^ (uint64_t)n;
}

void rs_state_bytes(rs_state_io *io, void *data, size_t size)
{
    if (io->failed || size == 0)
        return;
    size_t done = io->restoring ? fread(data, 1, size, io->f) : fwrite(data, 1, size, io->f);
    if (done != size) {
        io->failed = 1;
        return;
    }
    io->hash = mix(io->hash, data, size);
    io->bytes += size;
}
