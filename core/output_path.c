#include "core/output_path.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/temp_files.h"

int rs_temp_path(const char *final_path, char *buf, size_t size, rs_error *err)
{
    int n = snprintf(buf, size, "%s.tmp.%ld", final_path, (long)getpid());
    RS_CHECK(n > 0 && (size_t)n < size, err, "%s: path too long", final_path);
    rs_temp_files_remove_stale(final_path);
    rs_temp_files_add(buf);
    return 0;
}

int rs_commit_path(const char *tmp, const char *final_path, rs_error *err)
{
    if (rename(tmp, final_path) != 0) {
        int e = errno;
        rs_temp_discard(tmp);
        return rs_fail(err, "%s: cannot write: %s", final_path, strerror(e));
    }
    rs_temp_files_forget(tmp);
    return 0;
}

void rs_temp_discard(const char *tmp)
{
    unlink(tmp);
    rs_temp_files_forget(tmp);
}

/* The directory of path resolved (symbolic links, "." and "..") followed by
 * its last name; 0 when the directory does not exist. */
static int resolve_parent(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    size_t len = slash ? (size_t)(slash - path) : 1;
    if (len >= sizeof dir)
        return 0;
    if (!slash)
        memcpy(dir, ".", 2);
    else if (len == 0)
        memcpy(dir, "/", 2);
    else {
        memcpy(dir, path, len);
        dir[len] = '\0';
    }
    char resolved[PATH_MAX];
    if (!realpath(dir, resolved))
        return 0;
    int n = snprintf(out, size, "%s/%s", resolved, slash ? slash + 1 : path);
    return n > 0 && (size_t)n < size;
}

int rs_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    int has_a = stat(a, &sa) == 0, has_b = stat(b, &sb) == 0;
    if (has_a && has_b)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    if (has_a || has_b)
        return 0;
    char ra[PATH_MAX + 256], rb[PATH_MAX + 256];
    return resolve_parent(a, ra, sizeof ra) && resolve_parent(b, rb, sizeof rb) && strcmp(ra, rb) == 0;
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
