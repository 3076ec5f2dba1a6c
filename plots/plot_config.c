/* A config's "plots" value: true (automatic), false, or a list of
 * {"kind", "metric", "format", "size"} objects, each key optional. Checked
 * when the config is read; acted on after the run's results are written. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/curves/curve_metric.h"
#include "routesim/metric.h"
#include "plots/plot_internal.h"

static const char *const entry_keys[] = {"kind", "metric", "format", "size"};

/* A family (load, curve) or one of its outputs (load.maxvio, curve.aiq). */
static int known_metric(const char *name)
{
    if (!strchr(name, '.'))
        return rs_metric_find(name) || strcmp(name, RS_CURVE_FAMILY) == 0;
    return rs_plot_metric_output(name) != NULL;
}

static int check_entry(const cJSON *entry, int i, const char *source, rs_error *err)
{
    char kinds[256];
    rs_plot_kind_list(kinds, sizeof kinds);
    RS_CHECK(cJSON_IsObject(entry), err,
             "%s: plots[%d]: expected an object {\"kind\": ..., \"metric\": ..., \"format\": ..., \"size\": ...}",
             source, i);
    const cJSON *item;
    cJSON_ArrayForEach(item, entry)
    {
        int known = 0;
        for (size_t k = 0; k < sizeof entry_keys / sizeof entry_keys[0] && !known; k++)
            known = strcmp(item->string, entry_keys[k]) == 0;
        RS_CHECK(known, err, "%s: plots[%d]: unknown key '%s' (known: kind, metric, format, size)", source, i,
                 item->string);
        RS_CHECK(cJSON_IsString(item), err, "%s: plots[%d].%s: expected a string", source, i, item->string);
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(entry, "kind");
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(entry, "metric");
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(entry, "format");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(entry, "size");
    RS_CHECK(!kind || rs_plot_kind_find(kind->valuestring) >= 0, err,
             "%s: plots[%d].kind: unknown kind '%s' (known: %s)", source, i, kind->valuestring, kinds);
    RS_CHECK(!metric || known_metric(metric->valuestring), err,
             "%s: plots[%d].metric: unknown metric '%s' (a family such as load, or family.output such as "
             "load.maxvio; see routesim metrics)",
             source, i, metric->valuestring);
    RS_CHECK(!format || rs_plot_parse_formats(format->valuestring), err,
             "%s: plots[%d].format: unknown format '%s' (known: png, svg, pdf; several: png,pdf)", source, i,
             format->valuestring);
    RS_CHECK(!size || strcmp(size->valuestring, "single") == 0 || strcmp(size->valuestring, "double") == 0, err,
             "%s: plots[%d].size: unknown size '%s' (known: single = 3.5 in wide, double = 7 in)", source, i,
             size->valuestring);
    return 0;
}

int rs_plot_config_check(const cJSON *plots, const char *source, rs_error *err)
{
    if (!plots || cJSON_IsBool(plots))
        return 0;
    RS_CHECK(cJSON_IsArray(plots), err,
             "%s: plots: expected true, false or a list of {\"kind\", \"metric\", \"format\", \"size\"} objects",
             source);
    int i = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, plots)
    {
        RS_TRY(check_entry(entry, i, source, err));
        i++;
    }
    return 0;
}

int rs_plot_results(const char *results_dir, const cJSON *plots, const char *format, int quiet, rs_error *err)
{
    if (!plots || cJSON_IsFalse(plots) || cJSON_IsNull(plots) || (cJSON_IsArray(plots) && !cJSON_GetArraySize(plots)))
        return 0; /* no figures asked for */
    RS_TRY(rs_plot_config_check(plots, "config", err));
    unsigned formats = format ? rs_plot_parse_formats(format) : RS_PLOT_PNG;
    RS_CHECK(formats, err, "unknown plot format '%s' (known: png, svg, pdf)", format);
    int num = cJSON_IsArray(plots) ? cJSON_GetArraySize(plots) : 0;
    rs_plot_request *reqs = calloc((size_t)(num ? num : 1), sizeof *reqs);
    RS_CHECK(reqs, err, "out of memory");
    int num_reqs = 0, explicit_ = 0;
    if (cJSON_IsTrue(plots)) {
        reqs[num_reqs++] = (rs_plot_request){.formats = formats};
    } else {
        const cJSON *entry;
        cJSON_ArrayForEach(entry, plots)
        {
            const cJSON *kind = cJSON_GetObjectItemCaseSensitive(entry, "kind");
            const cJSON *metric = cJSON_GetObjectItemCaseSensitive(entry, "metric");
            const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(entry, "format");
            const cJSON *size = cJSON_GetObjectItemCaseSensitive(entry, "size");
            rs_plot_request *r = &reqs[num_reqs++];
            r->kinds = kind ? 1u << rs_plot_kind_find(kind->valuestring) : 0;
            r->metric = metric ? metric->valuestring : NULL;
            r->formats = fmt ? rs_plot_parse_formats(fmt->valuestring) : formats;
            r->double_size = size && strcmp(size->valuestring, "double") == 0;
            explicit_ |= kind || metric;
        }
    }
    rs_plot_table t;
    if (rs_plot_table_read(&t, results_dir, err) != 0) {
        free(reqs);
        return -1;
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < num_reqs; i++) {
        if (reqs[i].metric) {
            char where[32];
            snprintf(where, sizeof where, "plots[%d].metric", i);
            rc = rs_plot_require_metric(&t, reqs[i].metric, where, err);
        }
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/plots", results_dir);
    const char *style_path = getenv("ROUTESIM_PLOT_STYLE");
    char *style = NULL;
    if (rc == 0 && style_path && style_path[0] && !(style = rs_plot_read_style(style_path, err)))
        rc = -1;
    rs_plot_target target = {.dir = dir, .csv_path = t.results.csv_path, .style = style, .style_path = style_path};
    if (rc == 0)
        rc = rs_plot_make_requests(&t, reqs, num_reqs, explicit_, &target, 1, quiet, err);
    free(style);
    free(reqs);
    rs_plot_table_free(&t);
    return rc;
}
