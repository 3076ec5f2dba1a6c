/* What the writing commands do to the files around them, through the
 * routesim binary: an output never replaces one of its inputs, replaces a
 * file of another kind only with --force, never leaves a temporary file
 * behind when the process is interrupted, and removes the temporaries of
 * dead processes; inputs that are directories are named as such. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/test_util.h"
#include "workloads/trace/h5util.h"

enum { T = 300, L = 2, E = 8 };
static const int64_t offsets[] = {0, 120, 300};

/* dir/name that stays valid for the whole test (rs_test_path's buffers
 * rotate). */
static const char *path_of(const char *name)
{
    static char pool[64][1024];
    static int used;
    ck_assert_int_lt(used, 64);
    snprintf(pool[used], sizeof pool[0], "%s", rs_test_path(name));
    return pool[used++];
}

static const char *make_trace(const char *name)
{
    const char *path = path_of(name);
    float *z = rs_test_random_logits(T, L, E, 5);
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 2, .offsets = offsets, .logits = z};
    rs_test_write_trace(path, &tt);
    free(z);
    return path;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

/* Runs a command expected to fail with exit 1 and one line on stderr that
 * holds every needle (needle2 may be NULL) and no "Input/output error". */
static void expect_failure(const char *args, const char *needle1, const char *needle2)
{
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(args, &out, &err);
    ck_assert_msg(rc == 1, "exit %d (wanted 1) for %s; stderr: %s", rc, args, err);
    ck_assert_msg(count_lines(err) == 1, "stderr should be one line for %s, got: %s", args, err);
    ck_assert_msg(strstr(err, needle1) != NULL, "stderr '%s' lacks '%s'", err, needle1);
    ck_assert_msg(!needle2 || strstr(err, needle2) != NULL, "stderr '%s' lacks '%s'", err, needle2);
    ck_assert_msg(strstr(err, "Input/output error") == NULL, "stderr: %s", err);
    free(out);
    free(err);
}

static void expect_success(const char *args)
{
    char *err = NULL;
    int rc = rs_test_run_cli(args, NULL, &err);
    ck_assert_msg(rc == 0, "exit %d for %s; stderr: %s", rc, args, err);
    free(err);
}

/* The root attribute 'format' of an HDF5 file ("" when it has none). */
static void root_format(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "%s is not an HDF5 file any more", path);
    char *format = NULL;
    rs_error err = {{0}};
    if (rs_h5_attr_string(f, "format", &format, path, "root", &err) == 1)
        snprintf(buf, size, "%s", format);
    free(format);
    H5Fclose(f);
}

static void assert_still_trace(const char *path)
{
    char format[64];
    root_format(path, format, sizeof format);
    ck_assert_str_eq(format, "routesim-trace");
}

static void make_dir(const char *path)
{
    ck_assert_msg(mkdir(path, 0777) == 0, "mkdir %s", path);
}

START_TEST(outputs_never_replace_inputs)
{
    const char *trace = make_trace("in.h5");
    char dir_trace[1200], dotted[1300];
    snprintf(dir_trace, sizeof dir_trace, "%s", trace);
    *strrchr(dir_trace, '/') = '\0';
    make_dir(path_of("sub"));
    /* ./x, dir/../x, a symbolic link, a hard link: all the trace itself */
    snprintf(dotted, sizeof dotted, "%s/./sub/../in.h5", dir_trace);
    const char *symlink_path = path_of("link.h5"), *hardlink_path = path_of("hard.h5");
    ck_assert_int_eq(symlink("in.h5", symlink_path), 0);
    ck_assert_int_eq(link(trace, hardlink_path), 0);
    const char *aliases[] = {trace, dotted, symlink_path, hardlink_path};
    for (int i = 0; i < 4; i++) {
        expect_failure(rs_test_cmd("route %s --router topk:k=2 --out %s", trace, aliases[i]), "would overwrite the input",
                       "in.h5");
        /* --force replaces files of another kind, never an input */
        expect_failure(rs_test_cmd("route %s --router topk:k=2 --out %s --force", trace, aliases[i]),
                       "would overwrite the input", NULL);
        expect_failure(rs_test_cmd("route %s --router topk:k=2 --csv %s --force", trace, aliases[i]),
                       "would overwrite the input", NULL);
    }
    assert_still_trace(trace);
    ck_assert(!rs_test_file_exists(path_of("in.h5.tmp")));

    /* the paired reference trace and a replayed decisions file are inputs too */
    const char *other = make_trace("other.h5");
    expect_failure(rs_test_cmd("route %s --router topk --reference topk:k=1 --reference-trace %s --out %s", trace, other, other),
                   "would overwrite the input", "other.h5");
    const char *dec = path_of("dec.h5");
    expect_success(rs_test_cmd("route %s --router topk:k=2 --out %s --metrics none", trace, dec));
    expect_failure(rs_test_cmd("route %s --router replay:decisions=%s --out %s --metrics none", trace, dec, dec),
                   "would overwrite the input", "dec.h5");
    /* both outputs on one file */
    expect_failure(rs_test_cmd("route %s --router topk --out %s --csv %s", trace, path_of("both"), path_of("both")),
                   "would be the same file", NULL);
    ck_assert(!rs_test_file_exists(path_of("both")));

    /* import: the log stays as it was */
    const char *log = path_of("same.jsonl");
    const char *log_text = "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1, 2]}\n";
    write_text(log, log_text);
    expect_failure(rs_test_cmd("import jsonl %s -o %s --experts 4 --force", log, log), "would overwrite the input",
                   "same.jsonl");
    char *kept = rs_test_read_file(log);
    ck_assert_str_eq(kept, log_text);
    free(kept);

    /* run: the config and its traces are inputs of OUTPUT/results.* */
    const char *out_dir = path_of("run-out");
    make_dir(out_dir);
    char config[1200];
    snprintf(config, sizeof config, "%s/results.json", out_dir);
    char text[4096];
    snprintf(text, sizeof text, "{\"traces\": [\"%s\"], \"routers\": [\"topk\"], \"output\": \"%s\"}", trace,
             out_dir);
    write_text(config, text);
    expect_failure(rs_test_cmd("run %s --force -q --no-plots", config), "would overwrite the input", "results.json");
    kept = rs_test_read_file(config);
    ck_assert_str_eq(kept, text);
    free(kept);
    const char *config2 = path_of("in-dir.json");
    snprintf(text, sizeof text, "{\"traces\": [\"%s/results.csv\"], \"routers\": [\"topk\"], \"output\": \"%s\"}",
             dir_trace, dir_trace);
    ck_assert_int_eq(link(trace, path_of("results.csv")), 0);
    write_text(config2, text);
    expect_failure(rs_test_cmd("run %s --force -q --no-plots", config2), "would overwrite the input", "results.csv");
    assert_still_trace(path_of("results.csv"));
}
END_TEST

START_TEST(outputs_replace_other_kinds_only_when_forced)
{
    const char *trace = make_trace("kinds.h5");
    const char *other_trace = make_trace("kinds2.h5");
    const char *dec = path_of("kinds-dec.h5");
    const char *log = path_of("kinds.jsonl");
    write_text(log, "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1, 2]}\n");
    char format[64];

    /* route --out over a trace: refused, then replaced with --force */
    expect_failure(rs_test_cmd("route %s --router topk --out %s", trace, other_trace), "kinds2.h5: exists and is not a "
                                                                                "decisions file",
                   "routesim trace); --force overwrites it");
    assert_still_trace(other_trace);
    expect_success(rs_test_cmd("route %s --router topk --out %s --force --metrics none", trace, other_trace));
    root_format(other_trace, format, sizeof format);
    ck_assert_str_eq(format, "routesim-decisions");
    /* a decisions file over a decisions file needs nothing */
    expect_success(rs_test_cmd("route %s --router topk --out %s --metrics none", trace, dec));
    expect_success(rs_test_cmd("route %s --router topk:k=1 --out %s --metrics none", trace, dec));

    /* gen -o over a decisions file or a log */
    expect_failure(rs_test_cmd("gen --tokens 50 --layers 2 --experts 4 -o %s", dec), "exists and is not a trace",
                   "decisions file");
    root_format(dec, format, sizeof format);
    ck_assert_str_eq(format, "routesim-decisions");
    expect_failure(rs_test_cmd("gen --tokens 50 --layers 2 --experts 4 -o %s", log), "kinds.jsonl: exists and is not a trace",
                   "not HDF5");
    expect_success(rs_test_cmd("gen --tokens 50 --layers 2 --experts 4 -o %s", trace)); /* a trace over a trace */

    /* import -o over something that is not a trace */
    const char *csv = path_of("kinds.csv");
    write_text(csv, "a,b\n1,2\n");
    expect_failure(rs_test_cmd("import jsonl %s -o %s --experts 4", log, csv), "kinds.csv: exists and is not a trace", NULL);
    expect_failure(rs_test_cmd("import jsonl %s -o %s --experts 4", log, dec), "exists and is not a trace", NULL);
    expect_success(rs_test_cmd("import jsonl %s -o %s --experts 4 --force", log, csv));
    assert_still_trace(csv);

    /* route --csv over something that is not a results table */
    const char *table = path_of("table.csv");
    write_text(table, "my,own\n1,2\n");
    expect_failure(rs_test_cmd("route %s --router topk --csv %s", trace, table), "exists and is not a results table",
                   NULL);
    expect_success(rs_test_cmd("route %s --router topk --csv %s --force", trace, table));
    expect_success(rs_test_cmd("route %s --router topk:k=1 --csv %s", trace, table)); /* now a results table */

    /* run: OUTPUT/results.csv holding something else */
    const char *out_dir = path_of("kinds-out");
    make_dir(out_dir);
    char results_csv[1200];
    snprintf(results_csv, sizeof results_csv, "%s/results.csv", out_dir);
    write_text(results_csv, "notes I keep here\n");
    const char *config = path_of("kinds.json");
    write_text(config, rs_test_cmd("{\"traces\": [\"%s\"], \"routers\": [\"topk\"], \"output\": \"%s\"}", trace, out_dir));
    expect_failure(rs_test_cmd("run %s -q --no-plots", config), "results.csv: exists and is not a results table", NULL);
    char *kept = rs_test_read_file(results_csv);
    ck_assert_str_eq(kept, "notes I keep here\n");
    free(kept);
    expect_success(rs_test_cmd("run %s -q --no-plots --force", config));
    expect_success(rs_test_cmd("run %s -q --no-plots", config)); /* results over results */

    /* outputs that are directories are refused before any work */
    const char *dir = path_of("kinds-dir");
    make_dir(dir);
    expect_failure(rs_test_cmd("route %s --router topk --out %s --force", trace, dir), "kinds-dir: is a directory",
                   "expected a file name for the decisions file");
    expect_failure(rs_test_cmd("gen --tokens 50 -o %s --force", dir), "kinds-dir: is a directory", NULL);
    expect_failure(rs_test_cmd("import jsonl %s -o %s --experts 4 --force", log, dir), "kinds-dir: is a directory", NULL);
}
END_TEST

START_TEST(directories_and_ranges_name_the_cause)
{
    const char *trace = make_trace("msg.h5");
    const char *dir = path_of("msg-dir");
    make_dir(dir);
    expect_failure(rs_test_cmd("run %s", dir), "msg-dir: is a directory, expected a config file", NULL);
    expect_failure(rs_test_cmd("import jsonl %s -o %s --experts 4", dir, path_of("msg-out.h5")),
                   "msg-dir: is a directory, expected the JSON-lines log", NULL);
    expect_failure(rs_test_cmd("route %s --router topk", dir), "msg-dir: is a directory", NULL);
    expect_failure(rs_test_cmd("route %s --router topk --plugin %s", trace, dir), "msg-dir: is a directory",
                   "expected a plugin");
    expect_failure(rs_test_cmd("route %s --router replay:decisions=%s", trace, dir), "msg-dir: is a directory",
                   "expected a decisions file");
    const char *config = path_of("msg-style.json");
    write_text(config, rs_test_cmd("{\"traces\": [\"%s\"], \"routers\": [\"topk\"], \"output\": \"%s\"}", trace,
                           path_of("msg-out")));
    expect_success(rs_test_cmd("run %s -q --no-plots", config));
    expect_failure(rs_test_cmd("plot %s --style %s", path_of("msg-out"), dir), "msg-dir: is a directory",
                   "expected a plot style file");

    /* num_experts far above what routesim reads: the message gives the limit */
    const char *huge = make_trace("huge.h5");
    hid_t f = H5Fopen(huge, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t a = H5Aopen(f, "num_experts", H5P_DEFAULT);
    long long value = 2147483647;
    ck_assert_int_ge(H5Awrite(a, H5T_NATIVE_LLONG, &value), 0);
    H5Aclose(a);
    H5Fclose(f);
    expect_failure(rs_test_cmd("route %s --router topk", huge), "'num_experts' = 2147483647 must be in [1, 1000000]", NULL);
    /* integers past 64 bits are out of range, not "not an integer" */
    expect_failure(rs_test_cmd("route %s --router topk:k=99999999999999999999", trace),
                   "parameter k=99999999999999999999 out of range [1, 1024]", NULL);
}
END_TEST

/* ---- interrupted writers --------------------------------------------- */

/* Names in dir that hold ".tmp." (temporary files), counted. */
static int count_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* Starts routesim with argv[1..] (argv[0] is replaced by $ROUTESIM_BIN),
 * the cleanup signals at their default action whatever the test runner
 * set (a shell's background jobs ignore SIGINT), output to /dev/null. */
static pid_t spawn(char **argv)
{
    const char *bin = getenv("ROUTESIM_BIN");
    ck_assert_ptr_nonnull(bin);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
        }
        setenv("ROUTESIM_NO_PROGRESS", "1", 1);
        argv[0] = (char *)bin;
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits until the process has a temporary file in dir (it is writing), then
 * sends sig; the process must die of sig leaving no temporary and no final
 * file. The workloads take seconds, so the signal comes mid-write. */
static void interrupt_while_writing(char **argv, const char *dir, const char *final_path, int sig)
{
    pid_t pid = spawn(argv);
    int status = 0, waited = 0;
    for (int i = 0; i < 120000 && count_temporaries(dir) == 0; i++) {
        ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "%s exited before writing (status %d)", argv[1], status);
        sleep_ms(1);
        waited = i;
    }
    ck_assert_msg(count_temporaries(dir) > 0, "no temporary file appeared in %s after %d ms", dir, waited);
    sleep_ms(50); /* some data written */
    ck_assert_int_eq(kill(pid, sig), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == sig, "%s: status %d, wanted death by signal %d",
                  argv[1], status, sig);
    ck_assert_msg(count_temporaries(dir) == 0, "%s left a temporary file in %s", argv[1], dir);
    ck_assert_msg(!rs_test_file_exists(final_path), "%s left %s", argv[1], final_path);
}

START_TEST(interrupted_writers_leave_no_temporaries)
{
    /* gen: about 2.5 s of writing, SIGINT */
    const char *dir = path_of("sig-gen");
    make_dir(dir);
    char out[1200];
    snprintf(out, sizeof out, "%s/big.h5", dir);
    char *gen[] = {"routesim", "gen", "--tokens", "2000000", "--layers", "2", "--experts", "8", "-o", out, NULL};
    interrupt_while_writing(gen, dir, out, SIGINT);

    /* route --out: a chunk of one token at a time over 200000 tokens takes seconds, SIGTERM */
    const char *trace = path_of("sig-trace.h5");
    expect_success(rs_test_cmd("gen --tokens 200000 --layers 2 --experts 8 -o %s", trace));
    dir = path_of("sig-route");
    make_dir(dir);
    snprintf(out, sizeof out, "%s/dec.h5", dir);
    char *route[] = {"routesim", "route", (char *)trace, "--router", "topk", "--threads", "1", "--chunk-tokens", "1",
                     "--metrics", "none", "--out", out, NULL};
    interrupt_while_writing(route, dir, out, SIGTERM);

    /* run: the trace its config generates, SIGHUP */
    dir = path_of("sig-run");
    make_dir(dir);
    char config[1200], text[2048];
    snprintf(config, sizeof config, "%s/gen.json", rs_test_dir());
    snprintf(out, sizeof out, "%s/generated.h5", dir);
    snprintf(text, sizeof text,
             "{\"traces\": [{\"path\": \"%s\", \"generate\": {\"tokens\": 2000000, \"layers\": 2, \"experts\": 8}}], "
             "\"routers\": [\"topk\"], \"output\": \"%s/out\"}",
             out, dir);
    write_text(config, text);
    char *run[] = {"routesim", "run", config, "-q", "--no-plots", NULL};
    interrupt_while_writing(run, dir, out, SIGHUP);
}
END_TEST

/* A process id that no longer runs: a child that exited and was reaped. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(0);
    ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
    return pid;
}

START_TEST(stale_temporaries_are_removed)
{
    const char *dir = path_of("stale");
    make_dir(dir);
    char out[1200], stale[1300], live[1300], foreign[1300];
    snprintf(out, sizeof out, "%s/t.h5", dir);
    snprintf(stale, sizeof stale, "%s.tmp.%d", out, (int)dead_pid());
    snprintf(live, sizeof live, "%s.tmp.%d", out, (int)getpid());
    snprintf(foreign, sizeof foreign, "%s/other.h5.tmp.%d", dir, (int)dead_pid());
    write_text(stale, "left by a killed gen");
    write_text(live, "being written by a running process");
    write_text(foreign, "another output's");
    expect_success(rs_test_cmd("gen --tokens 50 --layers 2 --experts 4 -o %s", out));
    ck_assert_msg(!rs_test_file_exists(stale), "%s was not removed", stale);
    ck_assert_msg(rs_test_file_exists(live), "%s of a running process was removed", live);
    ck_assert_msg(rs_test_file_exists(foreign), "%s belongs to another output", foreign);

    /* the same for route --out and import -o */
    char dec[1200];
    snprintf(dec, sizeof dec, "%s/d.h5", dir);
    snprintf(stale, sizeof stale, "%s.tmp.%d", dec, (int)dead_pid());
    write_text(stale, "left by a killed route");
    expect_success(rs_test_cmd("route %s --router topk --out %s --metrics none", out, dec));
    ck_assert_msg(!rs_test_file_exists(stale), "%s was not removed", stale);
    const char *log = path_of("stale.jsonl");
    write_text(log, "{\"seq\": 0, \"token\": 0, \"layer\": 0, \"experts\": [1, 2]}\n");
    char imported[1200];
    snprintf(imported, sizeof imported, "%s/i.h5", dir);
    snprintf(stale, sizeof stale, "%s.tmp.%d", imported, (int)dead_pid());
    write_text(stale, "left by a killed import");
    expect_success(rs_test_cmd("import jsonl %s -o %s --experts 4", log, imported));
    ck_assert_msg(!rs_test_file_exists(stale), "%s was not removed", stale);
}
END_TEST

Suite *outputs_suite(void)
{
    Suite *s = suite_create("outputs");
    TCase *tc = tcase_create("outputs");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, outputs_never_replace_inputs);
    tcase_add_test(tc, outputs_replace_other_kinds_only_when_forced);
    tcase_add_test(tc, directories_and_ranges_name_the_cause);
    tcase_add_test(tc, interrupted_writers_leave_no_temporaries);
    tcase_add_test(tc, stale_temporaries_are_removed);
    suite_add_tcase(s, tc);
    return s;
}
