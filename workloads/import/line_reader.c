#include "workloads/import/line_reader.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int rs_line_reader_open(rs_line_reader *r, const char *path, const char *label, rs_error *err)
{
    errno = 0;
    /* gzclose closes the descriptor it reads, so stdin is read through a copy. */
    int fd = strcmp(path, "-") == 0 ? dup(STDIN_FILENO) : -1;
    r->gz = fd >= 0 ? gzdopen(fd, "rb") : strcmp(path, "-") != 0 ? gzopen(path, "rb") : NULL;
    if (!r->gz && fd >= 0)
        close(fd);
    RS_CHECK(r->gz, err, "%s: cannot open (%s)", label, errno ? strerror(errno) : "out of memory");
    gzbuffer(r->gz, 1 << 17);
    r->cap = 1 << 16;
    r->buf = malloc(r->cap);
    return r->buf ? 0 : rs_fail(err, "%s: out of memory", label);
}

int rs_line_reader_next(rs_line_reader *r, size_t *len, const char *label, rs_error *err)
{
    size_t used = 0;
    int got_text = 0;
    for (;;) {
        if (r->cap - used < 2) {
            char *grown = realloc(r->buf, r->cap * 2);
            RS_CHECK(grown, err, "%s: out of memory for a %zu-byte line", label, used);
            r->buf = grown;
            r->cap *= 2;
        }
        size_t room = r->cap - used;
        if (!gzgets(r->gz, r->buf + used, room > INT_MAX ? INT_MAX : (int)room))
            break;
        got_text = 1;
        used += strlen(r->buf + used);
        if (used > 0 && r->buf[used - 1] == '\n')
            break;
    }
    int code = Z_OK;
    const char *why = gzerror(r->gz, &code);
    RS_CHECK(code == Z_OK, err, "%s: read error: %s", label, code == Z_ERRNO ? strerror(errno) : why);
    if (used > 0 && r->buf[used - 1] == '\n')
        used--;
    r->buf[used] = '\0';
    *len = used;
    return got_text;
}

void rs_line_reader_close(rs_line_reader *r)
{
    if (r->gz)
        gzclose(r->gz);
    free(r->buf);
}
