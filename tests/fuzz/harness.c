#define _GNU_SOURCE /* nftw's FTW_DEPTH and FTW_PHYS */
#include "tests/fuzz/harness.h"

#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static char scratch[512];

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_scratch(void)
{
    if (scratch[0])
        nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *rs_fuzz_dir(void)
{
    if (scratch[0])
        return scratch;
    /* RAM-backed when there is one: every input writes files. */
    const char *base = getenv("TMPDIR");
    if (!base || !base[0])
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(scratch, sizeof scratch, "%s/routesim-fuzz-XXXXXX", base);
    if (!mkdtemp(scratch))
        rs_fuzz_fail("cannot create a scratch directory under %s", base);
    atexit(remove_scratch);
    return scratch;
}

const char *rs_fuzz_path(const char *name)
{
    static char bufs[4][640];
    static int next;
    char *buf = bufs[next++ % 4];
    snprintf(buf, sizeof bufs[0], "%s/%s", rs_fuzz_dir(), name);
    return buf;
}

void rs_fuzz_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        rs_fuzz_fail("cannot write %s", path);
}

char *rs_fuzz_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        rs_fuzz_fail("out of memory");
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

void rs_fuzz_limit_file_size(void)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {.rlim_cur = (rlim_t)64 << 20, .rlim_max = (rlim_t)64 << 20};
    struct rlimit old;
    if (getrlimit(RLIMIT_FSIZE, &old) == 0 && old.rlim_max != RLIM_INFINITY && old.rlim_max < lim.rlim_max)
        lim.rlim_cur = lim.rlim_max = old.rlim_max;
    setrlimit(RLIMIT_FSIZE, &lim);
}

void rs_fuzz_note(const char *what, const char *message)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("RS_FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "fuzz: %s: %s\n", what, message);
}

void rs_fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

uint8_t rs_fuzz_u8(rs_fuzz_bytes *b) { return b->at < b->size ? b->data[b->at++] : 0; }

uint32_t rs_fuzz_u32(rs_fuzz_bytes *b)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | rs_fuzz_u8(b);
    return v;
}

uint64_t rs_fuzz_u64(rs_fuzz_bytes *b) { return (uint64_t)rs_fuzz_u32(b) << 32 | rs_fuzz_u32(b); }

int64_t rs_fuzz_range(rs_fuzz_bytes *b, int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1;
    uint64_t v = span <= 256 ? rs_fuzz_u8(b) : span <= 65536 ? (uint64_t)rs_fuzz_u8(b) << 8 | rs_fuzz_u8(b)
                                                               : rs_fuzz_u64(b);
    return span == 0 ? (int64_t)v : (int64_t)((uint64_t)lo + v % span);
}

void rs_fuzz_text(rs_fuzz_bytes *b, char *buf, size_t max)
{
    size_t n = rs_fuzz_u8(b) % (max + 1);
    size_t i = 0;
    for (; i < n && b->at < b->size; i++)
        buf[i] = (char)rs_fuzz_u8(b);
    buf[i] = '\0';
}
