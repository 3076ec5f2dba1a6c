/* Checkpoints of a pass. After a chunk the engine's whole state is what
 * the routers and accumulators hold and the position: every accumulator
 * has merged its token slices, covers the tokens [0, position) and is
 * exactly what an uninterrupted run holds at that chunk boundary. Saving
 * it and resuming from it therefore replays the same operations on the
 * same state, and the results are the uninterrupted run's, bit for bit
 * (later chunks may even be cut differently: results do not depend on
 * chunk sizes).
 *
 * File layout (native byte order; read back by the same build only, which
 * the key ensures):
 *   MAGIC, key length (u64), key, position, skipped and paired skipped
 *   tokens, chunks (i64 each), bootstrap block (i32), then every object in
 *   a fixed order (this engine's routers, the paired engine's routers,
 *   each metric slot's bootstrap blocks and accumulator), each followed by
 *   the byte count so far, then the checksum of everything after MAGIC,
 *   verified before anything is restored. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/output_path.h"
#include "core/state_io.h"
#include "sim/engine/engine_internal.h"

typedef struct rs_engine engine;

#define MAGIC "routesim checkpoint 1\n"
#define FILE_BUFFER ((size_t)1 << 20)

/* A router whose state can be saved: it has the function, or it is a
 * per-token router with no serial hook, so it carries nothing. */
static int router_savable(const router_slot *rs)
{
    const rs_router_type *t = rs->spec->type;
    return t->checkpoint || (!(t->flags & (RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED)) && !t->prepare_chunk &&
                             rs->shape.group == RS_GROUP_NONE);
}

int rs_engine_checkpointable(const engine *e, char *why, size_t size)
{
    for (const engine *x = e; x; x = x->paired)
        for (int r = 0; r < x->num_routers; r++)
            if (!router_savable(&x->routers[r])) {
                if (why)
                    snprintf(why, size, "router %s cannot save its state", x->routers[r].spec->label);
                return 0;
            }
    for (int m = 0; m < e->num_metric_slots; m++)
        if (!e->metrics[m].spec->type->checkpoint) {
            if (why)
                snprintf(why, size, "metric %s cannot save its state", e->metrics[m].spec->type->name);
            return 0;
        }
    return 1;
}

/* The byte count so far: restoring, it must equal what was saved, or an
 * object read more or less than it wrote. */
static void boundary(rs_state_io *io)
{
    uint64_t count = io->bytes;
    RS_STATE(io, count);
    if (io->restoring && count != io->bytes - sizeof count)
        rs_state_fail(io);
}

/* Every object, in the file's order. Restoring, missing bootstrap blocks
 * are created first. */
static void walk(engine *e, rs_state_io *io)
{
    for (engine *x = e; x; x = x->paired)
        for (int r = 0; r < x->num_routers; r++) {
            router_slot *rs = &x->routers[r];
            if (rs->spec->type->checkpoint)
                rs->spec->type->checkpoint(rs->state, io);
            boundary(io);
        }
    for (int m = 0; m < e->num_metric_slots && !io->failed; m++) {
        metric_slot *ms = &e->metrics[m];
        const rs_metric_type *t = ms->spec->type;
        for (int b = 0; ms->blocks && b <= e->num_cuts && !io->failed; b++) {
            uint8_t present = ms->blocks[b] != NULL;
            RS_STATE(io, present);
            if (!present)
                continue;
            if (io->restoring && !ms->blocks[b]) {
                rs_error ignored;
                if (t->create(&ms->blocks[b], &ms->spec->params, &ms->setup, &ignored) != 0) {
                    ms->blocks[b] = NULL;
                    rs_state_fail(io);
                    break;
                }
            }
            t->checkpoint(ms->blocks[b], io);
            boundary(io);
        }
        t->checkpoint(ms->acc, io);
        boundary(io);
    }
}

typedef struct counts {
    int64_t position, skipped, paired_skipped, chunks;
    int32_t block;
} counts;

/* What follows the key's length. */
static void header(rs_state_io *io, char *key, uint64_t key_len, counts *n)
{
    rs_state_bytes(io, key, (size_t)key_len);
    RS_STATE(io, n->position);
    RS_STATE(io, n->skipped);
    RS_STATE(io, n->paired_skipped);
    RS_STATE(io, n->chunks);
    RS_STATE(io, n->block);
}

int rs_engine_checkpoint_save(engine *e, int64_t position, int64_t skipped, int64_t paired_skipped, int64_t chunks,
                              rs_error *err)
{
    const rs_engine_checkpoint *cp = &e->opt->checkpoint;
    char tmp[4200];
    RS_TRY(rs_make_parent_dirs(cp->path, err));
    RS_TRY(rs_temp_path(cp->path, tmp, sizeof tmp, err));
    FILE *f = fopen(tmp, "wb");
    RS_CHECK(f, err, "%s: cannot write: %s", tmp, strerror(errno));
    setvbuf(f, NULL, _IOFBF, FILE_BUFFER);
    int bad = fwrite(MAGIC, 1, sizeof MAGIC - 1, f) != sizeof MAGIC - 1;
    rs_state_io io;
    rs_state_io_start(&io, f, 0);
    uint64_t key_len = strlen(cp->key);
    counts n = {position, skipped, paired_skipped, chunks, e->block};
    RS_STATE(&io, key_len);
    header(&io, (char *)cp->key, key_len, &n);
    walk(e, &io);
    uint64_t digest = rs_state_io_digest(&io);
    bad |= io.failed || fwrite(&digest, sizeof digest, 1, f) != 1;
    int saved_errno = ferror(f) ? errno : 0;
    bad |= fclose(f) != 0;
    if (bad) {
        remove(tmp);
        return rs_fail(err, "%s: cannot write the checkpoint%s%s", tmp, saved_errno ? ": " : "",
                       saved_errno ? strerror(saved_errno) : "");
    }
    return rs_commit_path(tmp, cp->path, err);
}

/* Whether the bytes from `start` to the last 8 of f sum to those 8; *body
 * gets their count. */
static int intact(FILE *f, long start, uint64_t *body)
{
    if (fseek(f, 0, SEEK_END) != 0)
        return 0;
    long size = ftell(f);
    if (size < start + (long)sizeof(uint64_t) || fseek(f, start, SEEK_SET) != 0)
        return 0;
    *body = (uint64_t)(size - start) - sizeof(uint64_t);
    rs_state_io sum;
    rs_state_io_start(&sum, NULL, 0);
    unsigned char *block = malloc(FILE_BUFFER);
    if (!block)
        return 0;
    uint64_t left = *body;
    while (left > 0) {
        size_t n = left < FILE_BUFFER ? (size_t)left : FILE_BUFFER;
        if (fread(block, 1, n, f) != n)
            break;
        rs_state_io_sum(&sum, block, n);
        left -= n;
    }
    free(block);
    uint64_t digest = 0;
    return left == 0 && fread(&digest, sizeof digest, 1, f) == 1 && digest == rs_state_io_digest(&sum);
}

int rs_engine_resume(engine *e, rs_error *note, rs_error *err)
{
    const rs_engine_checkpoint *cp = &e->opt->checkpoint;
    note->msg[0] = '\0';
    if (!cp->path || !cp->key)
        return 0;
    FILE *f = fopen(cp->path, "rb");
    if (!f)
        return 0;
    char why[300];
    if (!rs_engine_checkpointable(e, why, sizeof why)) {
        fclose(f);
        rs_fail(note, "%s: not used: %s", cp->path, why);
        return 0;
    }
    setvbuf(f, NULL, _IOFBF, FILE_BUFFER);
    /* the checksum first: nothing is restored from a damaged file */
    char magic[sizeof MAGIC] = {0};
    const long start = (long)sizeof MAGIC - 1;
    uint64_t body = 0;
    if (fread(magic, 1, sizeof MAGIC - 1, f) != sizeof MAGIC - 1 || strcmp(magic, MAGIC) != 0 ||
        !intact(f, start, &body) || fseek(f, start, SEEK_SET) != 0) {
        fclose(f);
        rs_fail(note, "%s: not used: not a whole routesim checkpoint (damaged or truncated)", cp->path);
        return 0;
    }
    rs_state_io io;
    rs_state_io_start(&io, f, 1);
    uint64_t key_len = 0;
    counts n = {0};
    char *key = NULL;
    RS_STATE(&io, key_len);
    int usable = !io.failed && key_len == strlen(cp->key) && (key = malloc((size_t)key_len + 1)) != NULL;
    if (usable) {
        header(&io, key, key_len, &n);
        usable = !io.failed && memcmp(key, cp->key, (size_t)key_len) == 0;
    }
    free(key);
    if (!usable) {
        fclose(f);
        rs_fail(note, "%s: not used: saved for another configuration, trace or routesim build", cp->path);
        return 0;
    }
    const int64_t T = e->info->num_tokens;
    if (n.position <= 0 || n.position >= T || n.block < 0 || n.block > e->num_cuts || n.skipped < 0 ||
        n.chunks < 1) {
        fclose(f);
        rs_fail(note, "%s: not used: position %lld of %lld tokens does not fit the trace", cp->path,
                (long long)n.position, (long long)T);
        return 0;
    }
    /* from here on the engine's state changes */
    e->block = n.block;
    walk(e, &io);
    fclose(f);
    RS_CHECK(!io.failed && io.bytes == body, err,
             "%s: its objects do not read back as they were saved (another build?); starting the pass over",
             cp->path);
    for (engine *x = e; x; x = x->paired)
        x->start = n.position;
    e->resumed_skipped = n.skipped;
    e->resumed_paired_skipped = n.paired_skipped;
    e->resumed_chunks = n.chunks;
    return 1;
}
