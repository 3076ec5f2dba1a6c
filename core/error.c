#include "routesim/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int rs_fail(rs_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int rs_fail_context(rs_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[RS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    /* Prepend by shifting the old message right (truncating at the end). */
    size_t plen = strlen(prefix), olen = strlen(err->msg);
    if (plen + 2 >= sizeof err->msg)
        plen = sizeof err->msg - 3;
    if (plen + 2 + olen >= sizeof err->msg)
        olen = sizeof err->msg - plen - 3;
    memmove(err->msg + plen + 2, err->msg, olen);
    err->msg[plen + 2 + olen] = '\0';
    memcpy(err->msg, prefix, plen);
    err->msg[plen] = ':';
    err->msg[plen + 1] = ' ';
    return -1;
}

void rs_error_clear(rs_error *err)
{
    if (err)
        err->msg[0] = '\0';
}
