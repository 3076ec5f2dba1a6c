/* Error reporting: every failure carries one human-readable line that names
 * the file and the field at fault. Functions that can fail return 0 on
 * success and -1 on failure after filling an rs_error. */
#ifndef ROUTESIM_ERROR_H
#define ROUTESIM_ERROR_H

#include <stddef.h>

#include "routesim/api.h"

#define RS_ERROR_MSG_MAX 1024

typedef struct rs_error {
    char msg[RS_ERROR_MSG_MAX]; /* empty when no error was recorded */
} rs_error;

/* Records a formatted message and returns -1, so callers can write
 * `return rs_fail(err, "...")`. A NULL err is allowed. */
RS_API int rs_fail(rs_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "context: " to an already recorded message and returns -1. */
RS_API int rs_fail_context(rs_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

RS_API void rs_error_clear(rs_error *err);

/* Propagates a failure: evaluates expr and returns -1 from the caller if it failed. */
#define RS_TRY(expr)              \
    do {                          \
        if ((expr) != 0)          \
            return -1;            \
    } while (0)

/* Returns -1 with a message when cond does not hold. */
#define RS_CHECK(cond, err, ...)             \
    do {                                     \
        if (!(cond))                         \
            return rs_fail((err), __VA_ARGS__); \
    } while (0)

#endif
