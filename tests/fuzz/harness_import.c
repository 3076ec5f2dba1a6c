#include "tests/fuzz/harness_import.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    if (strcmp(format, "jsonl") == 0)
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
    rs_fuzz_write_file(input, data + skip, size - skip);

    rs_import_job job = {.input = input, .output = output, .options = &options, .quiet = 1};
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
    if (stray_files("input") > 0)
        rs_fuzz_fail("import %s left files behind (%s)", format, rc ? err.msg : "it succeeded");
    unlink(input);
    rs_params_free(&options);
}
