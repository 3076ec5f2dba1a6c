#include "routesim/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Messages quote what the user gave (JSON keys, CSV cells, spec strings),
 * which may hold line breaks: control characters are written as \n, \t,
 * \xNN so that a message stays one line. */
static void escape_controls(char *msg, size_t size)
{
    const unsigned char *p = (const unsigned char *)msg;
    while (*p >= 0x20 && *p != 0x7f)
        p++;
    if (!*p)
        return;
    char out[RS_ERROR_MSG_MAX];
    size_t used = 0;
    for (p = (const unsigned char *)msg; *p; p++) {
        char esc[8] = {(char)*p, '\0'};
        if (*p == '\n' || *p == '\r' || *p == '\t')
            snprintf(esc, sizeof esc, "\\%c", *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't');
        else if (*p < 0x20 || *p == 0x7f)
            snprintf(esc, sizeof esc, "\\x%02x", *p);
        size_t n = strlen(esc);
        if (used + n >= sizeof out || used + n >= size)
            break;
        memcpy(out + used, esc, n);
        used += n;
    }
    out[used] = '\0';
    memcpy(msg, out, used + 1);
}

int rs_fail(rs_error *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    escape_controls(err->msg, sizeof err->msg);
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
    escape_controls(err->msg, sizeof err->msg);
    return -1;
}

void rs_error_clear(rs_error *err)
{
    if (err)
        err->msg[0] = '\0';
}
