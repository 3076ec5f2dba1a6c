/* What the fuzz targets share: a scratch directory per process, the input
 * as a file or a string, the input read as a stream of choices, and the
 * abort that reports a broken promise (the fuzzer keeps the input). */
#ifndef ROUTESIM_FUZZ_HARNESS_H
#define ROUTESIM_FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* The process's scratch directory (created on first use, removed at exit). */
const char *rs_fuzz_dir(void);
/* dir/name in one of a few rotating static buffers. */
const char *rs_fuzz_path(const char *name);
/* Writes size bytes to path; aborts when it cannot (the harness is broken). */
void rs_fuzz_write_file(const char *path, const void *data, size_t size);
/* A NUL-terminated copy of the input (caller frees). */
char *rs_fuzz_string(const uint8_t *data, size_t size);
/* Files written by the code under test are capped at 64 MiB: a write past
 * that fails (EFBIG) instead of filling the disk or stopping the process. */
void rs_fuzz_limit_file_size(void);
/* With RS_FUZZ_VERBOSE set, prints what the input came to ("refused: MESSAGE"),
 * to see what a seed or a reproducer exercises. */
void rs_fuzz_note(const char *what, const char *message);
/* A promise of the code under test is broken: prints why and aborts. */
__attribute__((noreturn, format(printf, 1, 2))) void rs_fuzz_fail(const char *fmt, ...);

/* The input read front to back as choices; past its end every read is 0. */
typedef struct rs_fuzz_bytes {
    const uint8_t *data;
    size_t size, at;
} rs_fuzz_bytes;

uint8_t rs_fuzz_u8(rs_fuzz_bytes *b);
uint32_t rs_fuzz_u32(rs_fuzz_bytes *b);
uint64_t rs_fuzz_u64(rs_fuzz_bytes *b);
/* An integer in [lo, hi]. */
int64_t rs_fuzz_range(rs_fuzz_bytes *b, int64_t lo, int64_t hi);
/* A string of at most max bytes (a length byte, then the bytes) into buf[max + 1]. */
void rs_fuzz_text(rs_fuzz_bytes *b, char *buf, size_t max);

#endif
