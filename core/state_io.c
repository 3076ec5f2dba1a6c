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

static uint64_t mix(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    return h ^ (h >> 29);
}

/* Eight bytes at a time (checkpoints of large accumulators sum hundreds of
 * MB), carrying a partial word from one call to the next. */
void rs_state_io_sum(rs_state_io *io, const void *data, size_t size)
{
    const unsigned char *p = data;
    io->bytes += size;
    while (size > 0 && io->num_pending > 0) { /* complete the partial word first */
        io->pending[io->num_pending++] = *p++;
        size--;
        if (io->num_pending == 8) {
            uint64_t w;
            memcpy(&w, io->pending, 8);
            io->hash = mix(io->hash, w);
            io->num_pending = 0;
        }
    }
    for (; size >= 8; p += 8, size -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        io->hash = mix(io->hash, w);
    }
    if (size > 0) { /* only when no partial word was left above */
        memcpy(io->pending, p, size);
        io->num_pending = (int)size;
    }
}

uint64_t rs_state_io_digest(const rs_state_io *io)
{
    uint64_t w = 0;
    memcpy(&w, io->pending, (size_t)io->num_pending);
    return mix(mix(io->hash, w), io->bytes);
}

void rs_state_bytes(rs_state_io *io, void *data, size_t size)
{
    if (io->failed || size == 0)
        return;
    if (!io->f && !io->restoring) { /* counting only: what the object names (engine_metric_bytes.c) */
        io->bytes += size;
        return;
    }
    size_t done = io->restoring ? fread(data, 1, size, io->f) : fwrite(data, 1, size, io->f);
    if (done != size) {
        io->failed = 1;
        return;
    }
    rs_state_io_sum(io, data, size);
}
