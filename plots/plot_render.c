/* Running gnuplot on the generated scripts: find it ($ROUTESIM_GNUPLOT or
 * PATH), run one script per format in the plots directory, keep the
 * figure only when gnuplot succeeded and wrote something. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/output_path.h"
#include "plots/plot_internal.h"

static int executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

int rs_plot_find_gnuplot(char *buf, size_t size)
{
    const char *name = getenv("ROUTESIM_GNUPLOT");
    if (name && (!name[0] || strcmp(name, "none") == 0))
        return 0;
    if (!name)
        name = "gnuplot";
    if (strchr(name, '/')) {
        if (!executable(name))
            return 0;
        snprintf(buf, size, "%s", name);
        return 1;
    }
    const char *path = getenv("PATH");
    for (const char *p = path ? path : ""; p && *p;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int n = snprintf(buf, size, "%.*s/%s", len ? (int)len : 1, len ? p : ".", name);
        if (n > 0 && (size_t)n < size && executable(buf))
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

/* gnuplot's last non-empty lines, joined into one line for a message. */
static void last_lines(const char *text, char *buf, size_t size, int max_lines)
{
    const char *starts[64];
    int n = 0;
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int blank = 1;
        for (size_t i = 0; i < len && blank; i++)
            blank = p[i] == ' ' || p[i] == '\t' || p[i] == '^' || p[i] == '\r';
        if (!blank) {
            if (n == 64) {
                memmove(starts, starts + 1, 63 * sizeof starts[0]);
                n = 63;
            }
            starts[n++] = p;
        }
        p = end ? end + 1 : p + len;
    }
    size_t used = 0;
    buf[0] = '\0';
    for (int i = n > max_lines ? n - max_lines : 0; i < n; i++) {
        const char *end = strchr(starts[i], '\n');
        size_t len = end ? (size_t)(end - starts[i]) : strlen(starts[i]);
        while (len > 0 && (starts[i][len - 1] == '\r' || starts[i][len - 1] == ' '))
            len--;
        used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%.*s", used ? " | " : "", (int)len,
                                 starts[i]);
    }
}

/* Runs gnuplot on stem.gp, writing the figure to tmp. */
static int render_to(const char *gnuplot, const char *dir, const char *stem, const char *format, int double_size,
                     const char *final_path, const char *tmp, char *warnings, size_t wsize, rs_error *err)
{
    char settings[1200], script[256];
    const char *tmp_name = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp; /* gnuplot runs in dir */
    int n = snprintf(settings, sizeof settings, "fmt='%s'; size='%s'; outfile='%s'", format,
                 double_size ? "double" : "single", tmp_name);
    RS_CHECK(n > 0 && (size_t)n < sizeof settings, err, "%s: file name too long", final_path);
    n = snprintf(script, sizeof script, "%s.gp", stem);
    RS_CHECK(n > 0 && (size_t)n < sizeof script, err, "%s: file name too long", final_path);
    if (warnings && wsize)
        warnings[0] = '\0';

    int pipefd[2];
    RS_CHECK(pipe(pipefd) == 0, err, "cannot run gnuplot: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return rs_fail(err, "cannot run gnuplot: %s", strerror(errno));
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
        }
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        if (chdir(dir) != 0)
            _exit(126);
        char *const argv[] = {(char *)gnuplot, "-e", settings, script, NULL};
        execv(gnuplot, argv);
        _exit(127);
    }
    close(pipefd[1]);
    char text[8192];
    size_t len = 0;
    for (;;) {
        char chunk[1024];
        ssize_t got = read(pipefd[0], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        size_t keep = (size_t)got < sizeof text - 1 - len ? (size_t)got : sizeof text - 1 - len;
        memcpy(text + len, chunk, keep); /* the rest is drained, not kept */
        len += keep;
    }
    text[len] = '\0';
    close(pipefd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    struct stat st;
    int wrote = stat(tmp, &st) == 0 && st.st_size > 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !wrote) {
        char detail[1024];
        last_lines(text, detail, sizeof detail, 2);
        if (strstr(text, "unknown or ambiguous terminal"))
            return rs_fail(err,
                           "%s lacks the cairo terminals (pngcairo, pdfcairo) the scripts use; install gnuplot-nox "
                           "(apt-get install gnuplot-nox)",
                           gnuplot);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
            return rs_fail(err, "cannot run %s", gnuplot);
        return rs_fail(err, "%s/%s: gnuplot failed%s%s", dir, script, detail[0] ? ": " : "", detail);
    }
    if (warnings && wsize && len > 0)
        last_lines(text, warnings, wsize, 3);
    return 0;
}

int rs_plot_render(const char *gnuplot, const char *dir, const char *stem, const char *format, int double_size,
                   char *warnings, size_t wsize, rs_error *err)
{
    char final_path[4400], tmp[4500];
    int n = snprintf(final_path, sizeof final_path, "%s/%s.%s", dir, stem, format);
    RS_CHECK(n > 0 && (size_t)n < sizeof final_path, err, "%s: path too long", dir);
    RS_TRY(rs_temp_path(final_path, tmp, sizeof tmp, err));
    if (render_to(gnuplot, dir, stem, format, double_size, final_path, tmp, warnings, wsize, err) != 0) {
        rs_temp_discard(tmp);
        return -1;
    }
    return rs_commit_path(tmp, final_path, err);
}

void rs_plot_print_install_hint(FILE *out, const char *dir, const char *example_stem)
{
    fprintf(out,
            "routesim: plot: gnuplot is not installed (not on PATH): wrote the data files and gnuplot scripts to %s, "
            "but no figures\n"
            "routesim: plot: install it with:  apt-get install gnuplot-nox   (Debian/Ubuntu; scripts/install-deps.sh "
            "installs it with routesim's other dependencies)\n"
            "routesim: plot: then render a script with:  gnuplot %s/%s.gp   (add -e \"fmt='pdf'\" or "
            "\"fmt='svg'\" for vector output), all of them with:  for f in %s/*.gp; do gnuplot \"$f\"; done   "
            "or run routesim plot again\n",
            dir, dir, example_stem ? example_stem : "NAME", dir);
}
