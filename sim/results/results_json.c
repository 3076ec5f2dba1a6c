#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/number_text.h"
#include "core/output_path.h"
#include "sim/results/results.h"

/* The shortest text that reads back as the same double, as in results.csv;
 * cJSON's own printing may round to 15 digits. */
static cJSON *number_or_null(double v)
{
    if (!isfinite(v))
        return cJSON_CreateNull();
    char text[RS_NUMBER_TEXT_MAX];
    rs_number_text(v, text, sizeof text);
    return cJSON_CreateRaw(text);
}

int rs_results_write_json(const rs_results *r, cJSON *meta, const char *path, rs_error *err)
{
    cJSON *runs = cJSON_AddArrayToObject(meta, "runs");
    cJSON *rows = cJSON_AddArrayToObject(meta, "results");
    int ok = runs && rows;
    for (int i = 0; ok && i < r->num_runs; i++) {
        const rs_result_run *run = &r->runs[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(runs, o) && cJSON_AddStringToObject(o, "run", run->label) &&
             cJSON_AddStringToObject(o, "trace", run->trace) && cJSON_AddStringToObject(o, "router", run->router) &&
             cJSON_AddStringToObject(o, "params", run->params) && cJSON_AddStringToObject(o, "spec", run->spec) &&
             cJSON_AddNumberToObject(o, "entry", run->entry);
    }
    for (size_t i = 0; ok && i < r->num_rows; i++) {
        const rs_result_row *row = &r->rows[i];
        const rs_result_run *run = &r->runs[row->run];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(rows, o) && cJSON_AddStringToObject(o, "run", run->label) &&
             cJSON_AddStringToObject(o, "trace", run->trace) && cJSON_AddStringToObject(o, "router", run->router) &&
             cJSON_AddStringToObject(o, "params", run->params) && cJSON_AddStringToObject(o, "metric", row->metric) &&
             cJSON_AddStringToObject(o, "key", row->key);
        if (ok)
            ok = row->layer < 0 ? cJSON_AddStringToObject(o, "layer", "all") != NULL
                                : cJSON_AddNumberToObject(o, "layer", row->layer) != NULL;
        if (ok)
            ok = cJSON_AddItemToObject(o, "value", number_or_null(row->value));
    }
    char *text = ok ? cJSON_Print(meta) : NULL;
    cJSON_Delete(meta);
    RS_CHECK(text, err, "%s: out of memory", path);
    char tmp[4200];
    if (rs_temp_path(path, tmp, sizeof tmp, err) != 0) {
        free(text);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(text);
        rs_temp_discard(tmp);
        return rs_fail(err, "%s: cannot write results (is the directory writable?)", path);
    }
    int bad = fputs(text, f) < 0 || fputc('\n', f) == EOF;
    free(text);
    bad |= fclose(f) != 0;
    if (bad) {
        rs_temp_discard(tmp);
        return rs_fail(err, "%s: write failed (disk full?)", path);
    }
    return rs_commit_path(tmp, path, err);
}
