/* One process, no MPI: the build without MPI=1. */
#include "sim/experiment/ranks.h"

#include <stdlib.h>
#include <string.h>

int rs_ranks_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

void rs_ranks_finalize(void) {}

int rs_ranks_rank(void)
{
    return 0;
}

int rs_ranks_size(void)
{
    return 1;
}

int rs_ranks_agree(int rc, rs_error *err)
{
    (void)err;
    return rc == 0 ? 0 : -1;
}

int rs_ranks_failure_shared(void)
{
    return 0;
}

void rs_ranks_broadcast(void *data, size_t len)
{
    (void)data;
    (void)len;
}

int rs_ranks_gather(const char *data, size_t len, char **all, size_t *lens, rs_error *err)
{
    *all = malloc(len + 1);
    if (!*all)
        return rs_fail(err, "out of memory");
    memcpy(*all, data, len);
    lens[0] = len;
    return 0;
}
