#include "sim/experiment/run_exchange.h"

#include <stdlib.h>
#include <string.h>

#include "sim/experiment/ranks.h"
#include "sim/experiment/run_cache.h"

void rs_run_share(int trace, int num_traces, int n, int rank, int size, int *first, int *last)
{
    long long total = (long long)num_traces * n, base = (long long)trace * n;
    long long lo = total * rank / size - base, hi = total * (rank + 1) / size - base;
    *first = (int)(lo < 0 ? 0 : lo > n ? n : lo);
    *last = (int)(hi < 0 ? 0 : hi > n ? n : hi);
}

/* This rank's runs, each as its run store text followed by a NUL. */
static char *encode_share(int first, int last, const unsigned char *by_blocks, const rs_results *held,
                          const int *held_run, size_t *len)
{
    size_t used = 0;
    char *buf = malloc(1);
    for (int r = first; r < last && buf; r++) {
        if (by_blocks && by_blocks[r])
            continue;
        char *text = rs_run_cache_encode("", held, held_run[r]);
        size_t n = text ? strlen(text) + 1 : 0;
        char *grown = text ? realloc(buf, used + n + 1) : NULL;
        if (!grown) {
            free(text);
            free(buf);
            return NULL;
        }
        buf = grown;
        memcpy(buf + used, text, n);
        used += n;
        free(text);
    }
    *len = used;
    return buf;
}

int rs_run_exchange(int trace, int num_traces, int n, const unsigned char *by_blocks, rs_results *held,
                    int *held_run, rs_error *err)
{
    const int rank = rs_ranks_rank(), size = rs_ranks_size();
    if (size == 1)
        return 0;
    int first = 0, last = 0;
    size_t len = 0;
    char *mine = NULL;
    if (rank != 0) {
        rs_run_share(trace, num_traces, n, rank, size, &first, &last);
        mine = encode_share(first, last, by_blocks, held, held_run, &len);
    }
    size_t *lens = calloc((size_t)size, sizeof *lens);
    int rc = (rank != 0 && !mine) || !lens ? rs_fail(err, "out of memory") : 0;
    if (rs_ranks_agree(rc, err) != 0) {
        free(mine);
        free(lens);
        return -1;
    }
    char *all = NULL;
    rc = rs_ranks_gather(mine ? mine : "", len, &all, lens, err);
    free(mine);
    const char *at = all ? all + lens[0] : NULL;
    for (int k = 1; rank == 0 && rc == 0 && k < size; k++) {
        rs_run_share(trace, num_traces, n, k, size, &first, &last);
        const char *end = at + lens[k];
        for (int r = first; r < last && rc == 0; r++) {
            if (by_blocks && by_blocks[r])
                continue;
            int ok = at < end ? rs_run_cache_decode(at, NULL, held, &held_run[r], err) : 0;
            if (ok < 0)
                rc = -1;
            else if (ok == 0)
                rc = rs_fail(err, "rank %d of %d sent a damaged result for run %d", k, size, r + 1);
            else
                at += strlen(at) + 1;
        }
    }
    free(lens);
    free(all);
    return rc;
}
