/* The ranks of an MPI job: `make MPI=1` compiles this file with mpicc in
 * place of ranks_single.c. MPI is called only from the thread that started
 * it (OpenMP threads inside a rank never call MPI). */
#include "sim/experiment/ranks.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Large messages go in pieces: MPI counts are ints. */
#define PIECE_BYTES (1 << 30)

static int world_rank, world_size = 1, started, failure_shared;

int rs_ranks_init(int *argc, char ***argv)
{
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return -1;
    started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    return 0;
}

void rs_ranks_finalize(void)
{
    if (started)
        MPI_Finalize();
    started = 0;
}

int rs_ranks_rank(void)
{
    return world_rank;
}

int rs_ranks_size(void)
{
    return world_size;
}

int rs_ranks_agree(int rc, rs_error *err)
{
    if (world_size == 1)
        return rc == 0 ? 0 : -1;
    int mine = rc != 0 ? world_rank : world_size, first = world_size;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == world_size)
        return 0;
    char msg[sizeof err->msg];
    if (world_rank == first) {
        int at = snprintf(msg, sizeof msg, "rank %d of %d: ", first, world_size);
        const char *own = err->msg[0] ? err->msg : "unknown failure";
        size_t room = sizeof msg - (size_t)at, len = strnlen(own, room - 1);
        memcpy(msg + at, own, len);
        msg[(size_t)at + len] = '\0';
    }
    MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, MPI_COMM_WORLD);
    msg[sizeof msg - 1] = '\0';
    memcpy(err->msg, msg, sizeof msg);
    failure_shared = 1;
    return -1;
}

int rs_ranks_failure_shared(void)
{
    return failure_shared;
}

void rs_ranks_broadcast(void *data, size_t len)
{
    if (world_size > 1 && len > 0)
        MPI_Bcast(data, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD);
}

static void send_bytes(const char *data, size_t len)
{
    unsigned long long n = len;
    MPI_Send(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, 0, MPI_COMM_WORLD);
    for (size_t at = 0; at < len; at += PIECE_BYTES) {
        size_t piece = len - at < PIECE_BYTES ? len - at : PIECE_BYTES;
        MPI_Send(data + at, (int)piece, MPI_CHAR, 0, 1, MPI_COMM_WORLD);
    }
}

/* Rank 0 cannot refuse bytes the others are already sending: running out
 * of memory there ends the whole job, after saying so. */
static void abort_job(const char *what)
{
    fprintf(stderr, "routesim: error: rank 0 of %d: %s\n", world_size, what);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int rs_ranks_gather(const char *data, size_t len, char **all, size_t *lens, rs_error *err)
{
    *all = NULL;
    if (world_rank != 0) {
        send_bytes(data, len);
        return 0;
    }
    size_t total = len, cap = len + 1;
    char *buf = malloc(cap);
    if (!buf)
        abort_job("out of memory gathering results");
    memcpy(buf, data, len);
    lens[0] = len;
    for (int k = 1; k < world_size; k++) {
        unsigned long long n = 0;
        MPI_Recv(&n, 1, MPI_UNSIGNED_LONG_LONG, k, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (total + n + 1 > cap) {
            cap = (total + n + 1) * 2;
            char *grown = realloc(buf, cap);
            if (!grown)
                abort_job("out of memory gathering results");
            buf = grown;
        }
        for (size_t at = 0; at < n; at += PIECE_BYTES) {
            size_t piece = n - at < PIECE_BYTES ? n - at : PIECE_BYTES;
            MPI_Recv(buf + total + at, (int)piece, MPI_CHAR, k, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        }
        total += n;
        lens[k] = n;
    }
    (void)err;
    *all = buf;
    return 0;
}
