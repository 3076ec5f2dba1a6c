/* The embedding API (include/routesim/embed.h): thin wrappers that turn
 * plain arguments into the stages' own requests. */
#include "routesim/embed.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "plots/plot.h"
#include "routers/plugins.h"
#include "routesim/plugin.h"
#include "sim/config/breakdown.h"
#include "sim/engine/engine.h"
#include "sim/embed/registry_json.h"
#include "sim/experiment/pipeline.h"
#include "sim/experiment/route.h"
#include "version.h"
#include "workloads/trace/trace.h"

const char *rs_version(void) { return ROUTESIM_VERSION; }

const size_t *rs_struct_sizes(int *count)
{
    static const size_t sizes[] = {RS_PLUGIN_STRUCTS(RS_PLUGIN_SIZEOF_) sizeof(rs_route_options), sizeof(rs_block),
                                   sizeof(rs_callback_router)};
    *count = (int)(sizeof sizes / sizeof sizes[0]);
    return sizes;
}

void rs_free(void *p) { free(p); }

void rs_route_options_init(rs_route_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->struct_size = sizeof *opt;
}

int rs_route(const rs_route_options *opt, rs_error *err)
{
    RS_CHECK(opt && opt->struct_size == sizeof *opt, err,
             "rs_route: options of %zu bytes, this routesim expects %zu (rebuild the binding)",
             opt ? opt->struct_size : 0, sizeof *opt);
    RS_CHECK(opt->batch_tokens >= 0 && opt->batch_tokens <= (1 << 30), err,
             "batch_tokens %lld out of range [1, 1073741824]", opt->batch_tokens);
    RS_CHECK(opt->threads >= 0 && opt->threads <= 4096, err, "threads %lld out of range [1, 4096]", opt->threads);
    RS_CHECK(opt->chunk_tokens >= 0 && opt->chunk_tokens <= (1 << 20), err,
             "chunk_tokens %lld out of range [1, 1048576]", opt->chunk_tokens);
    RS_CHECK(opt->memory_mb >= 0 && opt->memory_mb <= 1e7, err, "memory_mb %g out of range [1, 1e7]", opt->memory_mb);
    unsigned breakdown = 0;
    if (opt->by && rs_breakdown_parse(opt->by, &breakdown, "rs_route: by", err) != 0)
        return -1;
    RS_CHECK(!opt->device || strcmp(opt->device, "cpu") == 0 || strcmp(opt->device, "gpu") == 0, err,
             "rs_route: device: expected cpu or gpu, got '%s'", opt->device);
    rs_route_request req = {.trace = opt->trace,
                            .router = opt->router,
                            .metrics = opt->metrics,
                            .reference = opt->reference,
                            .reference_trace = opt->reference_trace,
                            .decisions = opt->decisions,
                            .results_csv = opt->results_csv,
                            .force = opt->force,
                            .batch_tokens = (int)opt->batch_tokens,
                            .threads = (int)opt->threads,
                            .chunk_tokens = opt->chunk_tokens,
                            .memory_budget = (size_t)(opt->memory_mb * 1048576.0),
                            .skip_nonfinite = opt->skip_nonfinite,
                            .breakdown = breakdown,
                            .device = opt->device && strcmp(opt->device, "gpu") == 0 ? RS_DEVICE_GPU : RS_DEVICE_CPU,
                            .progress = opt->progress ? 1 : 0};
    rs_results results;
    rs_results_init(&results);
    rs_route_report report;
    int rc = rs_route_run(&req, &results, &report, err);
    rs_results_free(&results);
    return rc;
}

int rs_run_config(const char *config_path, const char *output, long long tokens, int threads, int plots, int force,
                  char **results_csv, rs_error *err)
{
    RS_CHECK(config_path, err, "rs_run_config: no config");
    RS_CHECK(tokens >= 0, err, "rs_run_config: tokens %lld must be >= 0 (0: the config's)", tokens);
    RS_CHECK(threads >= 0 && threads <= 4096, err, "rs_run_config: threads %d out of range [1, 4096] (0: all cores)",
             threads);
    rs_pipeline_options opt;
    rs_pipeline_options_init(&opt, config_path);
    opt.output = output;
    opt.tokens = tokens;
    opt.threads = threads;
    opt.plots = plots;
    opt.force = force != 0;
    opt.progress = 0;
    opt.quiet = 1;
    opt.silent = 1;
    opt.table = NULL;
    rs_pipeline_report report;
    RS_TRY(rs_pipeline_run(&opt, &report, err));
    if (results_csv) {
        *results_csv = strdup(report.results_csv);
        RS_CHECK(*results_csv, err, "out of memory");
    }
    return 0;
}

/* "a,b,c" as a list of strings in one allocation (list[i] point into it). */
static int split_list(const char *text, char ***list, int *count, rs_error *err)
{
    *list = NULL;
    *count = 0;
    if (!text || !text[0])
        return 0;
    size_t len = strlen(text), n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    char **items = malloc(n * sizeof *items + len + 1);
    RS_CHECK(items, err, "out of memory");
    char *copy = (char *)(items + n);
    memcpy(copy, text, len + 1);
    int k = 0;
    char *save = NULL;
    for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save))
        items[k++] = s;
    *list = items;
    *count = k;
    return 0;
}

int rs_plot(const char *results_dir, const char *formats, const char *kinds, const char *metrics,
            const char *output_dir, int quiet, rs_error *err)
{
    RS_CHECK(results_dir, err, "rs_plot: no results directory");
    char **kind_list = NULL, **metric_list = NULL;
    int nk = 0, nm = 0;
    int rc = split_list(kinds, &kind_list, &nk, err);
    if (rc == 0)
        rc = split_list(metrics, &metric_list, &nm, err);
    rs_plot_options opt = {.results_dir = results_dir,
                           .output_dir = output_dir,
                           .formats = formats,
                           .kinds = (const char *const *)kind_list,
                           .num_kinds = nk,
                           .metrics = (const char *const *)metric_list,
                           .num_metrics = nm,
                           .quiet = quiet};
    if (rc == 0)
        rc = rs_plot_make(&opt, err);
    free(kind_list);
    free(metric_list);
    return rc;
}

static char *print_json(cJSON *doc, rs_error *err)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (!text)
        rs_fail(err, "out of memory");
    return text; /* cJSON allocates with malloc: rs_free frees it */
}

char *rs_trace_info_json(const char *path, rs_error *err)
{
    if (!path) {
        rs_fail(err, "rs_trace_info_json: no trace");
        return NULL;
    }
    rs_trace *tr = NULL;
    if (rs_trace_open(&tr, path, err) != 0)
        return NULL;
    const rs_trace_info *i = rs_trace_get_info(tr);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "path", i->path);
    cJSON_AddStringToObject(o, "format", "routesim-trace");
    cJSON_AddNumberToObject(o, "format_version", 1);
    cJSON_AddStringToObject(o, "unit", i->unit);
    cJSON_AddStringToObject(o, "model", i->model);
    cJSON_AddStringToObject(o, "source", rs_trace_source(tr));
    cJSON *notes = cJSON_AddArrayToObject(o, "import_notes");
    for (const char *note = rs_trace_import_notes(tr); notes && *note;) { /* one string per line */
        const char *end = strchr(note, '\n');
        size_t len = end ? (size_t)(end - note) : strlen(note);
        char *line = strndup(note, len);
        if (line)
            cJSON_AddItemToArray(notes, cJSON_CreateString(line));
        free(line);
        note += len + (end != NULL);
    }
    cJSON_AddNumberToObject(o, "num_tokens", (double)i->num_tokens);
    cJSON_AddNumberToObject(o, "num_layers", i->num_layers);
    cJSON_AddNumberToObject(o, "num_experts", i->num_experts);
    cJSON_AddNumberToObject(o, "num_sequences", (double)i->num_sequences);
    if (i->top_k)
        cJSON_AddNumberToObject(o, "top_k", i->top_k);
    else
        cJSON_AddNullToObject(o, "top_k");
    if (i->scoring[0])
        cJSON_AddStringToObject(o, "scoring", i->scoring);
    else
        cJSON_AddNullToObject(o, "scoring");
    if (i->norm_topk >= 0)
        cJSON_AddBoolToObject(o, "norm_topk", i->norm_topk);
    else
        cJSON_AddNullToObject(o, "norm_topk");
    if (i->n_group > 0) {
        cJSON_AddNumberToObject(o, "n_group", i->n_group);
        cJSON_AddNumberToObject(o, "topk_group", i->topk_group);
    } else {
        cJSON_AddNullToObject(o, "n_group");
        cJSON_AddNullToObject(o, "topk_group");
    }
    if (i->routed_scaling_factor > 0)
        cJSON_AddNumberToObject(o, "routed_scaling_factor", i->routed_scaling_factor);
    else
        cJSON_AddNullToObject(o, "routed_scaling_factor");
    if (i->has_logits)
        cJSON_AddStringToObject(o, "logits_dtype", rs_logits_dtype_name(rs_trace_logits_dtype(tr)));
    else
        cJSON_AddNullToObject(o, "logits_dtype");
    cJSON_AddNumberToObject(o, "recorded_k", i->recorded_k);
    cJSON_AddBoolToObject(o, "has_logits", i->has_logits);
    cJSON_AddBoolToObject(o, "has_topk_weights", i->has_topk_weights);
    cJSON_AddBoolToObject(o, "has_token_ids", i->has_token_ids);
    cJSON_AddBoolToObject(o, "has_phase", i->has_phase);
    cJSON_AddBoolToObject(o, "has_bias", i->has_bias);
    cJSON_AddBoolToObject(o, "has_domain", i->has_domain);
    cJSON_AddBoolToObject(o, "has_quality", i->has_quality);
    cJSON_AddBoolToObject(o, "has_cost", i->has_cost);
    cJSON_AddNumberToObject(o, "num_unscored", (double)i->num_unscored);
    cJSON *domains = cJSON_AddArrayToObject(o, "domains");
    for (int d = 0; d < rs_trace_domain_name_count(tr); d++)
        cJSON_AddItemToArray(domains, cJSON_CreateString(rs_trace_domain_name(tr, d)));
    if (i->expert_names) {
        cJSON *names = cJSON_AddArrayToObject(o, "expert_names");
        for (int e = 0; e < i->num_experts; e++)
            cJSON_AddItemToArray(names, cJSON_CreateString(i->expert_names[e]));
    }
    rs_trace_close(tr);
    return print_json(o, err);
}

char *rs_routers_json(rs_error *err) { return print_json(rs_routers_json_doc(NULL), err); }

char *rs_metrics_json(rs_error *err) { return print_json(rs_metrics_json_doc(NULL), err); }

int rs_load_plugin(const char *path, rs_error *err)
{
    RS_CHECK(path, err, "rs_load_plugin: no path");
    return rs_plugin_load(path, err);
}
