#define _GNU_SOURCE /* nftw's FTW_DEPTH and FTW_PHYS */
#include "tests/fuzz/harness_import.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
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

/* ---- inputs of several files ------------------------------------------ */

enum { MAX_PARTS = 64, MAX_NAME = 200 };

/* A relative path of plain names: letters, digits, '.', '_', '-', at most 6 levels, no "..". */
static int plain_relative_path(const char *name, size_t len)
{
    if (len == 0 || len > MAX_NAME || name[0] == '/' || name[len - 1] == '/')
        return 0;
    int levels = 1;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (c == '/') {
            if (name[i + 1] == '/' || ++levels > 6)
                return 0;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                     c == '_' || c == '-')) {
            return 0;
        }
        if (c == '.' && (i == 0 || name[i - 1] == '/') && i + 1 < len && name[i + 1] == '.' &&
            (i + 2 == len || name[i + 2] == '/'))
            return 0;
    }
    return 1;
}

/* Writes data to root/name, making its directories; 0 when it cannot (a
 * name used as both a file and a directory, say): the input is skipped. */
static int write_part(const char *root, const char *name, size_t name_len, const uint8_t *data, size_t size,
                      char *path, size_t path_size)
{
    int n = snprintf(path, path_size, "%s/%.*s", root, (int)name_len, name);
    if (n < 0 || (size_t)n >= path_size)
        return 0;
    for (char *c = path + strlen(root) + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        int ok = mkdir(path, 0755) == 0 || errno == EEXIST;
        *c = '/';
        if (!ok)
            return 0;
    }
    struct stat st;
    if (stat(path, &st) == 0)
        return 0; /* given twice, or a directory */
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = (size == 0 || fwrite(data, 1, size, f) == size);
    return fclose(f) == 0 && ok;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Splits data into files at lines "@@ NAME" (what comes before the first is
 * the file "input") under root; paths[] gets them in order. Returns their
 * number, -1 when the input is not files the harness writes. */
static int write_parts(const char *root, const uint8_t *data, size_t size, char paths[][640])
{
    if (mkdir(root, 0755) != 0)
        rs_fuzz_fail("cannot create %s", root);
    int count = 0;
    const uint8_t *name = (const uint8_t *)"input";
    size_t name_len = 5, at = 0;
    for (;;) {
        /* the part runs to the next line that starts with "@@ " */
        size_t end = at;
        while (end < size &&
               !(end + 3 <= size && memcmp(data + end, "@@ ", 3) == 0 && (end == 0 || data[end - 1] == '\n')))
            end++;
        if (!(name_len == 5 && memcmp(name, "input", 5) == 0 && end == at && at == 0)) {
            if (count == MAX_PARTS || !plain_relative_path((const char *)name, name_len) ||
                !write_part(root, (const char *)name, name_len, data + at, end - at, paths[count], sizeof paths[0]))
                return -1;
            count++;
        }
        if (end >= size)
            return count;
        const uint8_t *nl = memchr(data + end, '\n', size - end);
        name = data + end + 3;
        name_len = (nl ? (size_t)(nl - data) : size) - (end + 3);
        at = nl ? (size_t)(nl - data) + 1 : size;
    }
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

void rs_fuzz_import(const char *format, const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        rs_fuzz_limit_file_size();
        ready = 1;
    }
    const rs_importer_type *type = rs_importer_find(format);
    if (!type)
        rs_fuzz_fail("no importer %s", format);
    rs_params options;
    rs_error err = {{0}};
    if (rs_importer_options_init(type, &options, format, &err) != 0)
        rs_fuzz_fail("%s", err.msg);
    for (int i = 0; i < type->num_options; i++)
        if (strcmp(type->options[i].name, "experts") == 0)
            rs_params_set(&options, "experts", "8", &err); /* required: a default the options line may change */

    size_t skip = 0;
    if (size >= 2 && data[0] == '-' && data[1] == '-') {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t len = nl ? (size_t)(nl - data) : size;
        char *line = rs_fuzz_string(data, len);
        int ok = strlen(line) == len && parse_options(&options, line) == 0;
        free(line);
        if (!ok) {
            rs_fuzz_note("skipped", "not options of the importer");
            rs_params_free(&options);
            return;
        }
        skip = nl ? len + 1 : len;
    }
    const char *input = rs_fuzz_path("input"), *output = rs_fuzz_path("out.h5");
    /* a format that reads a directory or several files gets the input split
     * into files at "@@ NAME" lines: under tree/, the directory, or in/, each file an input */
    static char parts[MAX_PARTS][640];
    const char *inputs[MAX_PARTS];
    char root[640] = "";
    int num_inputs = 0;
    if (type->flags & (RS_IMPORTER_DIRECTORY | RS_IMPORTER_MANY_INPUTS)) {
        snprintf(root, sizeof root, "%s", rs_fuzz_path(type->flags & RS_IMPORTER_DIRECTORY ? "tree" : "in"));
        num_inputs = write_parts(root, data + skip, size - skip, parts);
        if (num_inputs <= 0) {
            nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
            rs_fuzz_note("skipped", "not files the harness writes");
            rs_params_free(&options);
            return;
        }
        for (int i = 0; i < num_inputs; i++)
            inputs[i] = parts[i];
        input = type->flags & RS_IMPORTER_DIRECTORY ? root : parts[0];
    } else {
        rs_fuzz_write_file(input, data + skip, size - skip);
    }

    rs_import_job job = {.input = input, .output = output, .options = &options, .quiet = 1};
    if (type->flags & RS_IMPORTER_MANY_INPUTS) {
        job.inputs = inputs;
        job.num_inputs = num_inputs;
    }
    int rc = type->check ? type->check(&options, &err) : 0;
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
    if (root[0])
        nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (stray_files("input") > 0)
        rs_fuzz_fail("import %s left files behind (%s)", format, rc ? err.msg : "it succeeded");
    unlink(input);
    rs_params_free(&options);
}
