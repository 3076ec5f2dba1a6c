/* Fuzz target: reading a results directory back (rs_results_table_read)
 * and planning figures from it (rs_plot_make without rendering), as
 * `routesim plot` does. The input is results.csv; a line "#results.json"
 * starts results.json, which holds the rest.
 *
 * What must hold: results refused get one line; for results read, every
 * value is found again by rs_results_table_find, and figures are planned
 * and written without a crash (or refused in one line). */
#define _GNU_SOURCE /* memmem, nftw's FTW_DEPTH */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plots/plot.h"
#include "sim/results/results_reader.h"
#include "tests/fuzz/harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char json_marker[] = "#results.json\n";

static void check_table(const rs_results_table *t)
{
    for (int m = 0; m < t->num_metrics; m++) {
        const rs_results_table_metric *metric = &t->metrics[m];
        if (rs_results_find_metric(t, metric->name) != m)
            rs_fuzz_fail("metric %s is not found at its own index %d", metric->name, m);
        for (size_t i = metric->first; i < metric->first + metric->count; i++) {
            const rs_results_table_value *v = &t->values[i];
            if (v->run < 0 || v->run >= t->num_runs || v->key < 0 || v->key >= t->num_keys || v->layer < -1)
                rs_fuzz_fail("value %zu of %s points outside the table", i, metric->name);
            if (rs_results_table_find(t, m, v->run, v->key, v->layer) != v)
                rs_fuzz_fail("value %zu of %s is not found again", i, metric->name);
        }
        int *keys = malloc((size_t)(t->num_keys ? t->num_keys : 1) * sizeof *keys);
        if (!keys)
            rs_fuzz_fail("out of memory");
        rs_results_metric_keys(t, m, keys, t->num_keys);
        free(keys);
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        rs_fuzz_limit_file_size();
        ready = 1;
    }
    const char *dir = rs_fuzz_path("results");
    char csv[700], json[700], plots[700];
    snprintf(csv, sizeof csv, "%s/results.csv", dir);
    snprintf(json, sizeof json, "%s/results.json", dir);
    snprintf(plots, sizeof plots, "%s/plots", dir);
    mkdir(dir, 0700);
    size_t csv_size = size;
    const uint8_t *marker = memmem(data, size, json_marker, sizeof json_marker - 1);
    if (marker) {
        csv_size = (size_t)(marker - data);
        size_t at = csv_size + sizeof json_marker - 1;
        rs_fuzz_write_file(json, data + at, size - at);
    }
    rs_fuzz_write_file(csv, data, csv_size);

    rs_results_table t;
    rs_error err = {{0}};
    int rc = rs_results_table_read(&t, dir, &err);
    rs_fuzz_note(rc ? "refused" : "read", rc ? err.msg : "");
    if (rc != 0) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            rs_fuzz_fail("results refused without a one-line message: '%s'", err.msg);
    } else {
        check_table(&t);
        rs_results_table_free(&t);
        rs_plot_options opt = {.results_dir = dir, .output_dir = plots, .no_render = 1, .quiet = 1};
        rc = rs_plot_make(&opt, &err);
        rs_fuzz_note(rc ? "figures refused" : "figures", rc ? err.msg : "");
        if (rc != 0 && (!err.msg[0] || strchr(err.msg, '\n')))
            rs_fuzz_fail("figures refused without a one-line message: '%s'", err.msg);
    }
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
