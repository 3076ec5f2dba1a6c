#include "core/output_path.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int rs_temp_path(const char *final_path, char *buf, size_t size, rs_error *err)
{
    int n = snprintf(buf, size, "%s.tmp.%ld", final_path, (long)getpid());
    RS_CHECK(n > 0 && (size_t)n < size, err, "%s: path too long", final_path);
    return 0;
}

int rs_commit_path(const char *tmp, const char *final_path, rs_error *err)
{
    if (rename(tmp, final_path) != 0) {
        int e = errno;
        unlink(tmp);
        return rs_fail(err, "%s: cannot write: %s", final_path, strerror(e));
    }
    return 0;
}

int rs_make_dirs(const char *dir, rs_error *err)
{
    char buf[4096];
    size_t len = strlen(dir);
    RS_CHECK(len > 0 && len < sizeof buf, err, "%s: bad directory name", dir);
    memcpy(buf, dir, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return rs_fail(err, "%s: cannot create directory: %s", buf, strerror(errno));
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return rs_fail(err, "%s: not a directory", dir);
    if (access(dir, W_OK | X_OK) != 0)
        return rs_fail(err, "%s: output directory is not writable", dir);
    return 0;
}

int rs_make_parent_dirs(const char *file_path, rs_error *err)
{
    const char *slash = strrchr(file_path, '/');
    if (!slash || slash == file_path)
        return 0;
    char dir[4096];
    size_t len = (size_t)(slash - file_path);
    RS_CHECK(len < sizeof dir, err, "%s: path too long", file_path);
    memcpy(dir, file_path, len);
    dir[len] = '\0';
    return rs_make_dirs(dir, err);
}
