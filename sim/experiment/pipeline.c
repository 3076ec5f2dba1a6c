#include "sim/experiment/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/output_path.h"
#include "core/progress.h"
#include "plots/plot.h"
#include "sim/config/config.h"
#include "sim/experiment/curves.h"
#include "sim/experiment/experiment.h"
#include "sim/experiment/ranks.h"
#include "sim/experiment/run_meta.h"
#include "workloads/trace/output_check.h"

void rs_pipeline_options_init(rs_pipeline_options *opt, const char *config)
{
    memset(opt, 0, sizeof *opt);
    opt->config = config;
    opt->bootstrap = -1;
    opt->runs_per_pass = -1;
    opt->checkpoint_seconds = -1;
    opt->checkpoint_chunks = -1;
    opt->plots = 1;
    opt->progress = -1;
    opt->device = -1;
}

/* tokens > 0: generated traces get that many tokens and a path of their own
 * (results/x/mixtral.h5 -> results/x/mixtral-Ntok.h5), so a scaled-down
 * run never reuses or overwrites the full-size trace. */
static int scale_traces(rs_config *cfg, long long tokens, rs_error *err)
{
    for (int i = 0; i < cfg->num_traces; i++) {
        rs_trace_entry *te = &cfg->traces[i];
        if (!te->generate)
            continue;
        char text[32];
        snprintf(text, sizeof text, "%lld", tokens);
        RS_TRY(rs_params_set(&te->gen, "tokens", text, err));
        size_t len = strlen(te->path);
        const char *dot = len > 3 && strcmp(te->path + len - 3, ".h5") == 0 ? te->path + len - 3 : te->path + len;
        char *path = malloc(len + 40);
        RS_CHECK(path, err, "out of memory");
        snprintf(path, len + 40, "%.*s-%lldtok%s", (int)(dot - te->path), te->path, tokens, dot);
        free(te->path);
        te->path = path;
    }
    return 0;
}

/* The config after sweeps, seeds and defaults: every router as the spec
 * string that recreates it, every metric with all its parameters. */
static void add_expanded(cJSON *meta, const rs_config *cfg)
{
    cJSON *x = cJSON_AddObjectToObject(meta, "expanded");
    cJSON *routers = x ? cJSON_AddArrayToObject(x, "routers") : NULL;
    cJSON *metrics = x ? cJSON_AddArrayToObject(x, "metrics") : NULL;
    char text[2400];
    for (int r = 0; routers && r < cfg->num_routers; r++) {
        cJSON *o = cJSON_CreateObject();
        rs_router_spec_string(&cfg->routers[r], text, sizeof text);
        cJSON_AddStringToObject(o, "label", cfg->routers[r].label);
        cJSON_AddStringToObject(o, "spec", text);
        cJSON_AddNumberToObject(o, "entry", cfg->routers[r].entry);
        cJSON_AddItemToArray(routers, o);
    }
    for (int m = 0; metrics && m < cfg->num_metrics; m++) {
        cJSON *o = cJSON_CreateObject();
        rs_params_format(&cfg->metrics[m].params, ~0ULL, 0, ";", text, sizeof text);
        cJSON_AddStringToObject(o, "name", cfg->metrics[m].type->name);
        cJSON_AddStringToObject(o, "params", text);
        rs_metric_outputs_format(&cfg->metrics[m], text, sizeof text);
        if (text[0])
            cJSON_AddStringToObject(o, "outputs", text);
        cJSON_AddItemToArray(metrics, o);
    }
    if (cfg->reference) {
        rs_router_spec_string(cfg->reference, text, sizeof text);
        cJSON_AddStringToObject(x, "reference", text);
    }
}

/* The config with the caller's overrides applied. */
static int load_config(rs_config *cfg, const rs_pipeline_options *opt, rs_error *err)
{
    RS_TRY(rs_config_load(cfg, opt->config, err));
    if (opt->output) {
        free(cfg->output);
        cfg->output = strdup(opt->output);
    }
    RS_CHECK(cfg->output, err, "out of memory");
    if (opt->tokens > 0)
        RS_TRY(scale_traces(cfg, opt->tokens, err));
    return 0;
}

static rs_experiment_options experiment_options(const rs_config *cfg, const rs_pipeline_options *opt)
{
    return (rs_experiment_options){
        .engine =
            {
                .threads = opt->threads > 0 ? opt->threads : cfg->threads,
                .chunk_tokens = opt->chunk_tokens > 0 ? opt->chunk_tokens : cfg->chunk_tokens,
                .memory_budget = (size_t)((opt->memory_mb > 0 ? opt->memory_mb : cfg->memory_mb) * (1 << 20)),
                .batch_tokens = cfg->batch_tokens,
                .skip_nonfinite = opt->skip_nonfinite || cfg->skip_nonfinite,
                .progress = opt->progress,
                .bootstrap = opt->bootstrap >= 0 ? opt->bootstrap : cfg->bootstrap,
                .bootstrap_blocks = cfg->bootstrap_blocks,
                .bootstrap_level = cfg->bootstrap_level,
                .bootstrap_seed = cfg->bootstrap_seed,
                .breakdown = cfg->breakdown | opt->breakdown,
                .device = opt->device >= 0 ? opt->device : cfg->device,
                .checkpoint =
                    {
                        .seconds = opt->checkpoint_seconds >= 0 ? opt->checkpoint_seconds : cfg->checkpoint_seconds,
                        .chunks = opt->checkpoint_chunks >= 0 ? opt->checkpoint_chunks : cfg->checkpoint_chunks,
                    },
            },
        .force = opt->force,
        .runs_per_pass = opt->runs_per_pass >= 0 ? opt->runs_per_pass : cfg->runs_per_pass,
        .progress = opt->progress,
    };
}

/* Before anything runs: results.csv and results.json are none of the run's
 * inputs (the config, its traces and their sources) and replace only
 * results files unless forced. */
static int check_outputs(const rs_config *cfg, const rs_pipeline_options *opt, const rs_pipeline_report *report,
                         rs_error *err)
{
    int n = 2 + 2 * cfg->num_traces;
    const char **inputs = malloc((size_t)n * sizeof *inputs);
    RS_CHECK(inputs, err, "out of memory");
    inputs[0] = opt->config;
    inputs[1] = cfg->reference_trace;
    for (int i = 0; i < cfg->num_traces; i++) {
        inputs[2 + 2 * i] = cfg->traces[i].path;
        inputs[3 + 2 * i] = cfg->traces[i].import ? cfg->traces[i].imp.input : NULL;
    }
    rs_output_check checks[] = {
        {.path = report->results_csv, .kind = RS_FILE_TEXT, .signature = RS_RESULTS_CSV_HEADER,
         .what = "results table"},
        {.path = report->results_json, .kind = RS_FILE_TEXT, .signature = RS_RUN_META_SIGNATURE,
         .what = "results file"},
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof checks / sizeof checks[0]; i++) {
        checks[i].inputs = inputs;
        checks[i].num_inputs = n;
        checks[i].force = opt->force;
        rc = rs_output_check_path(&checks[i], err);
    }
    free(inputs);
    return rc;
}

/* results.csv, then results.json; a failed JSON removes the CSV, so a
 * results directory never holds half a result set. meta is consumed. */
static int write_results(const rs_results *results, cJSON *meta, rs_pipeline_report *report, rs_error *err)
{
    int rc = rs_results_write_csv(results, report->results_csv, err);
    if (rc != 0) {
        cJSON_Delete(meta);
        return rc;
    }
    rc = rs_results_write_json(results, meta, report->results_json, err);
    if (rc != 0)
        remove(report->results_csv);
    return rc;
}

int rs_pipeline_run(const rs_pipeline_options *opt, rs_pipeline_report *report, rs_error *err)
{
    memset(report, 0, sizeof *report);
    rs_config cfg;
    if (load_config(&cfg, opt, err) != 0) {
        rs_ranks_agree(-1, err); /* the ranks of an MPI job stop together */
        rs_config_free(&cfg);
        return -1;
    }
    rs_experiment_options xo = experiment_options(&cfg, opt);
    const int root = rs_ranks_rank() == 0; /* of an MPI job: the one that writes results */
    if (!root)
        xo.engine.progress = xo.progress = 0;
    snprintf(report->results_csv, sizeof report->results_csv, "%s/results.csv", cfg.output);
    snprintf(report->results_json, sizeof report->results_json, "%s/results.json", cfg.output);
    int rc = check_outputs(&cfg, opt, report, err);
    if (rc == 0)
        rc = rs_make_dirs(cfg.output, err);
    rc = rs_ranks_agree(rc, err);
    double wall_start = rs_now();
    cJSON *meta = rc == 0 ? rs_run_meta_new(cfg.name, rs_epoch_now()) : NULL;
    if (rc == 0 && meta) {
        cJSON_AddItemToObject(meta, "config", cJSON_Duplicate(cfg.json, 1));
        add_expanded(meta, &cfg);
    }
    rs_results results;
    rs_results_init(&results);
    if (rc == 0)
        rc = rs_experiment_run(&cfg, &xo, &results, meta, &report->threads, err);
    if (rc == 0 && !root) { /* its runs went to rank 0 */
        cJSON_Delete(meta);
        rs_results_free(&results);
        rs_config_free(&cfg);
        return 0;
    }
    if (rc == 0) /* curve.* rows of swept query routers, once every run is in */
        rc = rs_curves_add(&results, &cfg, err);
    if (rc == 0) {
        rs_run_meta_finish(meta, rs_now() - wall_start, report->threads);
        rc = write_results(&results, meta, report, err);
        meta = NULL;
    }
    if (rc == 0) {
        report->runs = results.num_runs;
        report->rows = results.num_rows;
        if (opt->table)
            rs_results_print_table(&results, opt->table);
        if (!opt->silent)
            fprintf(stderr, "routesim: wrote %s and %s\n", report->results_csv, report->results_json);
    }
    /* the figures the config asks for, from the files just written */
    if (rc == 0 && opt->plots)
        rc = rs_plot_results(cfg.output, cJSON_GetObjectItemCaseSensitive(cfg.json, "plots"), opt->plot_format,
                             opt->quiet, err);
    cJSON_Delete(meta);
    rs_results_free(&results);
    rs_config_free(&cfg);
    return rc;
}
