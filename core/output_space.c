#include "core/output_space.h"

#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

void rs_format_bytes(double bytes, char *buf, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, size, "%.0f bytes", bytes);
        return;
    }
    int u = -1;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, size, "%.1f %s", bytes, units[u]);
}

/* Bytes free to an unprivileged writer in the directory of path; -1 when
 * the file system does not say (the check is then skipped). */
static double free_bytes(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, size, ".");
    else if (slash == path)
        snprintf(dir, size, "/");
    else
        snprintf(dir, size, "%.*s", (int)(slash - path), path);
    struct statvfs fs;
    if (statvfs(dir, &fs) != 0 || fs.f_blocks == 0)
        return -1;
    return (double)fs.f_bavail * (double)fs.f_frsize;
}

int rs_output_space_check(const char *path, double bytes, const char *detail, int compressed,
                          const rs_output_limit *limit, rs_error *err)
{
    double max_gib = limit && limit->max_gib != 0 ? limit->max_gib : RS_OUTPUT_DEFAULT_LIMIT_GIB;
    const char *lift = limit && limit->lift ? limit->lift : "--max-output-gb N raises it, --no-size-limit lifts it";
    if (max_gib < 0)
        return 0;
    char need[32], have[32];
    rs_format_bytes(bytes, need, sizeof need);
    if (bytes > max_gib * 1073741824.0)
        return rs_fail(err, "%s: the output would take %s (%s), more than the limit of %g GiB (%s)", path, need,
                       detail, max_gib, lift);
    if (compressed)
        return 0;
    char dir[4096];
    double available = free_bytes(path, dir, sizeof dir);
    rs_format_bytes(available, have, sizeof have);
    if (available >= 0 && bytes > available)
        return rs_fail(err, "%s: the output would take %s (%s), but only %s are free on the file system of '%s'",
                       path, need, detail, have, dir);
    return 0;
}
