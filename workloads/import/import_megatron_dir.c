/* routesim import megatron: the rank files of the directory, and the notes. */
#include "workloads/import/import_megatron_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- messages and notes --------------------------------------------------------- */

void rs_mg_key_name(const layer_key *k, char *out, size_t size)
{
    if (k->block == RS_MG_DECODER)
        snprintf(out, size, "decoder layer %lld", (long long)k->layer);
    else if (k->mtp_idx >= 0)
        snprintf(out, size, "mtp %lld layer %lld", (long long)k->mtp_idx, (long long)k->layer);
    else
        snprintf(out, size, "mtp layer %lld", (long long)k->layer);
}

int rs_mg_add_note(import_state *st, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    size_t len = strlen(line);
    if (st->notes_len + len + 2 > st->notes_cap) {
        size_t cap = st->notes_cap ? st->notes_cap * 2 : 4096;
        while (cap < st->notes_len + len + 2)
            cap *= 2;
        char *grown = realloc(st->notes, cap);
        if (!grown)
            return -1;
        st->notes = grown;
        st->notes_cap = cap;
    }
    if (st->notes_len)
        st->notes[st->notes_len++] = '\n';
    memcpy(st->notes + st->notes_len, line, len + 1);
    st->notes_len += len;
    return 0;
}

/* ---- the directory ------------------------------------------------------------ */

/* rank when name is PREFIX<rank>SUFFIX with the rank written as Python's
 * str(int) writes it (no sign, no leading zero), else -1. */
static int64_t rank_in_name(const char *name, const char *prefix, const char *suffix)
{
    size_t p = strlen(prefix), s = strlen(suffix), n = strlen(name);
    if (n <= p + s || strncmp(name, prefix, p) != 0 || strcmp(name + n - s, suffix) != 0)
        return -1;
    size_t digits = n - p - s;
    if (digits > 9 || (digits > 1 && name[p] == '0'))
        return -1;
    int64_t rank = 0;
    for (size_t i = p; i < p + digits; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        rank = rank * 10 + (name[i] - '0');
    }
    return rank;
}

static char *join_path(const char *dir, const char *name)
{
    size_t d = strlen(dir), n = strlen(name);
    char *path = malloc(d + n + 2);
    if (path)
        snprintf(path, d + n + 2, "%s%s%s", dir, d && dir[d - 1] == '/' ? "" : "/", name);
    return path;
}

static int compare_ranks(const void *a, const void *b)
{
    int64_t x = ((const rank_file *)a)->rank, y = ((const rank_file *)b)->rank;
    return (x > y) - (x < y);
}

/* Opens one of the files DIR holds, refusing what is not a plain file. */
static int open_input(const char *path, const char *name, int *fd, int64_t *size, rs_error *err)
{
    errno = 0;
    *fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO must not block the import */
    RS_CHECK(*fd >= 0, err, "%s: cannot open (%s)", path, strerror(errno));
    struct stat sb;
    RS_CHECK(fstat(*fd, &sb) == 0 && S_ISREG(sb.st_mode), err, "%s: not a plain file (%s)", path, name);
    *size = (int64_t)sb.st_size;
    return 0;
}

/* The rank files of DIR (router_trace_rank0.jsonl ... rank R-1, none
 * missing), their sidecars, and what else is there. */
int rs_mg_list_directory(import_state *st, rs_error *err)
{
    DIR *d = opendir(st->dir);
    RS_CHECK(d, err, "%s: cannot open the directory (%s)", st->dir, strerror(errno));
    int cap = 0, rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        const char *name = e->d_name;
        if (name[0] == '.')
            continue;
        int64_t rank = rank_in_name(name, "router_trace_rank", ".jsonl");
        if (rank >= 0) {
            if (st->num_ranks == cap) {
                cap = cap ? cap * 2 : 8;
                rank_file *grown = realloc(st->ranks, (size_t)cap * sizeof *grown);
                if (!grown) {
                    rc = rs_fail(err, "%s: out of memory", st->dir);
                    break;
                }
                st->ranks = grown;
            }
            rank_file *rf = &st->ranks[st->num_ranks++];
            memset(rf, 0, sizeof *rf);
            rf->rank = rank;
            rf->trace_fd = rf->logits_fd = -1;
            rf->trace_path = join_path(st->dir, name);
            if (!rf->trace_path)
                rc = rs_fail(err, "%s: out of memory", st->dir);
            else
                rf->trace_name = rf->trace_path + strlen(rf->trace_path) - strlen(name);
        } else if (rank_in_name(name, "hidden_states_rank", ".bin") >= 0) {
            st->skipped_hidden++;
        } else if (rank_in_name(name, "router_state_rank", ".pt") >= 0) {
            st->skipped_state++;
        } else if (rank_in_name(name, "logits_rank", ".bin") < 0) {
            st->ignored_files++;
        }
    }
    closedir(d);
    RS_TRY(rc);
    RS_CHECK(st->num_ranks > 0, err,
             "%s: no router_trace_rank*.jsonl files (RouterTracer writes one per rank where "
             "--moe-routing-trace-path points)", st->dir);
    qsort(st->ranks, (size_t)st->num_ranks, sizeof *st->ranks, compare_ranks);
    for (int i = 0; i < st->num_ranks; i++)
        if (st->ranks[i].rank != i)
            return rs_fail(err, "%s: router_trace_rank%d.jsonl is missing: the directory has %d rank files up to "
                           "router_trace_rank%lld.jsonl, and RouterTracer writes one for every rank from 0",
                           st->dir, i, st->num_ranks, (long long)st->ranks[st->num_ranks - 1].rank);
    for (int i = 0; i < st->num_ranks; i++) {
        rank_file *rf = &st->ranks[i];
        int64_t size;
        RS_TRY(open_input(rf->trace_path, "a rank file", &rf->trace_fd, &size, err));
        unsigned char magic[2] = {0, 0};
        ssize_t got = pread(rf->trace_fd, magic, 2, 0);
        RS_CHECK(!(got == 2 && magic[0] == 0x1f && magic[1] == 0x8b), err,
                 "%s: gzip-compressed; RouterTracer writes plain JSON lines, read here with random access: "
                 "decompress it first", rf->trace_path);
        char name[64];
        snprintf(name, sizeof name, "logits_rank%d.bin", i);
        rf->logits_path = join_path(st->dir, name);
        RS_CHECK(rf->logits_path, err, "%s: out of memory", st->dir);
        rf->logits_name = rf->logits_path + strlen(rf->logits_path) - strlen(name);
        if (access(rf->logits_path, F_OK) == 0) {
            RS_TRY(open_input(rf->logits_path, "a logits sidecar", &rf->logits_fd, &rf->logits_size, err));
        } else {
            free(rf->logits_path);
            rf->logits_path = NULL;
        }
    }
    return 0;
}
