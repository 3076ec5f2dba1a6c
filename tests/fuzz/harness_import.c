#define _GNU_SOURCE /* memmem */
#include "tests/fuzz/harness_import.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/harness.h"
#include "workloads/import/importer.h"
#include "workloads/trace/trace.h"

/* "--name=value --flag ...": the importer's options, '-' in names read as '_'.
 * Returns -1 when the line is not options the importer takes. */
static int parse_options(rs_params *p, char *line)
{
    rs_error err = {{0}};
    for (char *save = NULL, *word = strtok_r(line, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
        if (strncmp(word, "--", 2) != 0)
            return -1;
        word += 2;
        char *eq = strchr(word, '=');
        if (eq)
            *eq = '\0';
        for (char *c = word; *c; c++)
            if (*c == '-')
                *c = '_';
        if (rs_params_set(p, word, eq ? eq + 1 : "1", &err) != 0)
            return -1;
    }
    return 0;
}

/* Every file of the scratch directory but keep. */
static int stray_files(const char *keep)
{
    DIR *d = opendir(rs_fuzz_dir());
    int count = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (e->d_name[0] != '.' && strcmp(e->d_name, keep) != 0) {
            fprintf(stderr, "fuzz: left behind: %s\n", e->d_name);
            count++;
        }
    if (d)
        closedir(d);
    return count;
}

/* What a user of the trace does first: open it, read its first tokens. */
static void read_back(const char *path)
{
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    if (rs_trace_open(&tr, path, &err) != 0)
        rs_fuzz_fail("the import succeeded but its trace does not open: %s", err.msg);
    const rs_trace_info *info = rs_trace_get_info(tr);
    int n = info->num_tokens < 16 ? (int)info->num_tokens : 16;
    size_t rows = (size_t)n * (size_t)info->num_layers;
    if (n > 0 && info->recorded_k > 0 && rows * (size_t)info->recorded_k <= ((size_t)1 << 22)) {
        int32_t *ids = malloc(rows * (size_t)info->recorded_k * sizeof *ids);
        float *w = malloc(rows * (size_t)info->recorded_k * sizeof *w);
        if (!ids || !w || rs_trace_read_topk(tr, 0, n, ids, info->has_topk_weights ? w : NULL, &err) != 0)
            rs_fuzz_fail("the imported trace's top-k does not read: %s", err.msg);
        for (size_t i = 0; i < rows * (size_t)info->recorded_k; i++)
            if (ids[i] < -1 || ids[i] >= info->num_experts)
                rs_fuzz_fail("the imported trace holds expert %d, num_experts is %d", ids[i], info->num_experts);
        free(ids);
        free(w);
    }
    if (n > 0 && info->has_quality && (size_t)n * (size_t)info->num_experts <= ((size_t)1 << 22)) {
        float *q = malloc((size_t)n * (size_t)info->num_experts * sizeof *q);
        float *c = malloc((size_t)n * (size_t)info->num_experts * sizeof *c);
        if (!q || !c || rs_trace_read_outcome(tr, 0, n, q, info->has_cost ? c : NULL, &err) != 0)
            rs_fuzz_fail("the imported trace's outcomes do not read: %s", err.msg);
        free(q);
        free(c);
    }
    rs_trace_close(tr);
}

/* The importer's options with the first line's ("--...") applied; *skip
 * gets the bytes of that line. Returns -1 (noted) when the line is not
 * options of the importer. */
static int import_options(const char *format, const rs_importer_type *type, const uint8_t *data, size_t size,
                          rs_params *options, size_t *skip)
{
    rs_error err = {{0}};
    if (rs_importer_options_init(type, options, format, &err) != 0)
        rs_fuzz_fail("%s", err.msg);
    if (strcmp(format, "jsonl") == 0)
        rs_params_set(options, "experts", "8", &err); /* required: a default the options line may change */
    *skip = 0;
    if (size >= 2 && data[0] == '-' && data[1] == '-') {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t len = nl ? (size_t)(nl - data) : size;
        char *line = rs_fuzz_string(data, len);
        int ok = strlen(line) == len && parse_options(options, line) == 0;
        free(line);
        if (!ok) {
            rs_fuzz_note("skipped", "not options of the importer");
            rs_params_free(options);
            return -1;
        }
        *skip = nl ? len + 1 : len;
    }
    return 0;
}

/* Runs the import of input and checks its promises. */
static void import_and_check(const char *format, const rs_importer_type *type, const rs_params *options,
                             const char *input)
{
    const char *output = rs_fuzz_path("out.h5");
    rs_error err = {{0}};
    rs_import_job job = {.input = input, .output = output, .options = options, .quiet = 1};
    int rc = type->check ? type->check(options, &err) : 0;
    if (rc == 0)
        rc = type->run(&job, &err);
    rs_fuzz_note(rc ? "refused" : "imported", rc ? err.msg : output);
    if (rc != 0) {
        if (!err.msg[0])
            rs_fuzz_fail("import %s failed without a message", format);
        if (strchr(err.msg, '\n'))
            rs_fuzz_fail("import %s failed with a message of several lines: %s", format, err.msg);
        if (access(output, F_OK) == 0)
            rs_fuzz_fail("import %s failed (%s) but left its output", format, err.msg);
    } else {
        read_back(output);
        unlink(output);
    }
    if (stray_files("input") > 0)
        rs_fuzz_fail("import %s left files behind (%s)", format, rc ? err.msg : "it succeeded");
}

static const rs_importer_type *find_type(const char *format)
{
    static int ready;
    if (!ready) {
        rs_fuzz_limit_file_size();
        ready = 1;
    }
    const rs_importer_type *type = rs_importer_find(format);
    if (!type)
        rs_fuzz_fail("no importer %s", format);
    return type;
}

void rs_fuzz_import(const char *format, const uint8_t *data, size_t size)
{
    const rs_importer_type *type = find_type(format);
    rs_params options;
    size_t skip;
    if (import_options(format, type, data, size, &options, &skip) != 0)
        return;
    const char *input = rs_fuzz_path("input");
    rs_fuzz_write_file(input, data + skip, size - skip);
    import_and_check(format, type, &options, input);
    unlink(input);
    rs_params_free(&options);
}

/* The bytes after a marker line "==> NAME <==", up to the next marker, as
 * file NAME of dir; returns the files written (their names in names). */
static int write_files(const char *dir, const uint8_t *data, size_t size, char names[][65], int max)
{
    static const char open_mark[] = "==> ", close_mark[] = " <==\n";
    int count = 0;
    const uint8_t *at = data, *end = data + size;
    while (at < end && count < max) {
        if ((size_t)(end - at) < sizeof open_mark - 1 || memcmp(at, open_mark, sizeof open_mark - 1) != 0)
            break;
        const uint8_t *name = at + sizeof open_mark - 1;
        const uint8_t *close = memmem(name, (size_t)(end - name), close_mark, sizeof close_mark - 1);
        if (!close)
            break;
        size_t len = (size_t)(close - name);
        const uint8_t *body = close + sizeof close_mark - 1, *next = memmem(body, (size_t)(end - body), "\n==> ", 5);
        const uint8_t *stop = next ? next : end; /* the newline before a marker is the marker's */
        int usable = len > 0 && len <= 64 && name[0] != '.' && !memchr(name, '/', len) && !memchr(name, '\0', len);
        for (int i = 0; usable && i < count; i++)
            usable = strlen(names[i]) != len || memcmp(names[i], name, len) != 0;
        if (usable) {
            memcpy(names[count], name, len);
            names[count][len] = '\0';
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", dir, names[count++]);
            rs_fuzz_write_file(path, body, (size_t)(stop - body));
        }
        at = next ? next + 1 : end;
    }
    return count;
}

void rs_fuzz_import_dir(const char *format, const uint8_t *data, size_t size)
{
    const rs_importer_type *type = find_type(format);
    rs_params options;
    size_t skip;
    if (import_options(format, type, data, size, &options, &skip) != 0)
        return;
    char dir[700], names[16][65];
    snprintf(dir, sizeof dir, "%s", rs_fuzz_path("input"));
    if (mkdir(dir, 0700) != 0)
        rs_fuzz_fail("cannot create %s", dir);
    int count = write_files(dir, data + skip, size - skip, names, 16);
    import_and_check(format, type, &options, dir);
    for (int i = 0; i < count; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    if (rmdir(dir) != 0)
        rs_fuzz_fail("import %s left files in its input directory", format);
    rs_params_free(&options);
}
