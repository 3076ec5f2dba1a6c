#include "sim/experiment/route.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/output_path.h"
#include "sim/config/metric_list.h"
#include "sim/config/spec.h"
#include "sim/engine/engine.h"
#include "workloads/trace/output_check.h"
#include "workloads/trace/trace.h"

const char *rs_route_default_metrics(int has_quality, int has_logits)
{
    return has_quality ? "outcome" : has_logits ? "load,entropy" : "load";
}

/* Adds the string parameters of spec that name existing files (the
 * decisions a replay router reads) to inputs. */
static void add_file_params(const rs_router_spec *spec, const char **inputs, int *n, int most)
{
    for (int i = 0; i < spec->params.n && *n < most; i++) {
        const char *value = spec->params.defs[i].kind == RS_PARAM_STRING ? spec->params.v[i].s : NULL;
        struct stat st;
        if (value && value[0] && stat(value, &st) == 0 && S_ISREG(st.st_mode))
            inputs[(*n)++] = value;
    }
}

/* Before anything is read: no output is an input or the other output, and
 * each replaces only a file of its own kind unless forced. */
static int check_outputs(const rs_route_request *req, const rs_router_spec *spec, const rs_router_spec *ref_spec,
                         rs_error *err)
{
    const char *inputs[2 + 2 * RS_PARAMS_MAX] = {req->trace, req->reference_trace};
    int num_inputs = 2;
    add_file_params(spec, inputs, &num_inputs, 2 + 2 * RS_PARAMS_MAX);
    if (ref_spec)
        add_file_params(ref_spec, inputs, &num_inputs, 2 + 2 * RS_PARAMS_MAX);
    if (req->decisions && req->results_csv && rs_same_file(req->decisions, req->results_csv))
        return rs_fail(err, "%s: the decisions file and the results table (%s) would be the same file",
                       req->decisions, req->results_csv);
    if (req->decisions) {
        rs_output_check c = {.path = req->decisions,
                             .kind = RS_FILE_DECISIONS,
                             .what = "decisions file",
                             .inputs = inputs,
                             .num_inputs = num_inputs,
                             .force = req->force};
        RS_TRY(rs_output_check_path(&c, err));
    }
    if (req->results_csv) {
        rs_output_check c = {.path = req->results_csv,
                             .kind = RS_FILE_TEXT,
                             .signature = RS_RESULTS_CSV_HEADER,
                             .what = "results table",
                             .inputs = inputs,
                             .num_inputs = num_inputs,
                             .force = req->force};
        RS_TRY(rs_output_check_path(&c, err));
        RS_TRY(rs_make_parent_dirs(req->results_csv, err));
    }
    return 0;
}

int rs_route_run(const rs_route_request *req, rs_results *results, rs_route_report *report, rs_error *err)
{
    memset(report, 0, sizeof *report);
    RS_CHECK(req->trace && req->router, err, "route: a trace and a router spec are required");
    RS_CHECK(!req->reference_trace || req->reference, err,
             "--reference-trace needs --reference SPEC (the router to run on it)");
    rs_router_spec spec, ref_spec;
    RS_TRY(rs_router_spec_parse(&spec, req->router, err));
    if (req->reference && rs_router_spec_parse(&ref_spec, req->reference, err) != 0) {
        rs_router_spec_free(&spec);
        return -1;
    }
    if (check_outputs(req, &spec, req->reference ? &ref_spec : NULL, err) != 0) {
        rs_router_spec_free(&spec);
        if (req->reference)
            rs_router_spec_free(&ref_spec);
        return -1;
    }
    rs_trace *trace = NULL, *ref_trace = NULL;
    rs_metric_spec *mspecs = NULL;
    int nmetrics = 0;
    rs_decisions_writer *writer = NULL;
    int rc = rs_trace_open(&trace, req->trace, err);
    if (rc == 0 && req->reference_trace)
        rc = rs_trace_open(&ref_trace, req->reference_trace, err);
    if (rc == 0)
        rc = rs_metric_list_parse(req->metrics ? req->metrics
                                               : rs_route_default_metrics(rs_trace_get_info(trace)->has_quality,
                                                                          rs_trace_get_info(trace)->has_logits),
                                  &mspecs, &nmetrics, err);
    rs_engine_options opt = {.threads = req->threads,
                             .chunk_tokens = req->chunk_tokens,
                             .memory_budget = req->memory_budget,
                             .batch_tokens = req->batch_tokens > 0 ? req->batch_tokens : 4096,
                             .skip_nonfinite = req->skip_nonfinite,
                             .breakdown = req->breakdown,
                             .device = req->device,
                             .progress = req->progress,
                             .progress_label = req->trace,
                             .reference = req->reference ? &ref_spec : NULL,
                             .reference_trace = ref_trace};
    rs_engine *engine = NULL;
    if (rc == 0)
        rc = rs_engine_create(&engine, trace, &spec, 1, mspecs, nmetrics, &opt, results, err);
    if (rc == 0 && req->decisions) {
        char text[2400];
        rs_router_spec_string(&spec, text, sizeof text);
        rc = rs_decisions_writer_create(&writer, req->decisions, rs_trace_get_info(trace)->num_layers,
                                        rs_engine_router_kmax(engine, 0), text, req->trace, err);
    }
    rs_engine_stats stats = {0};
    if (rc == 0)
        rc = rs_engine_run(engine, writer, &stats, err);
    rs_engine_destroy(engine);
    if (writer) {
        if (rc == 0)
            rc = rs_decisions_writer_finish(writer, err);
        else
            rs_decisions_writer_abort(writer);
    }
    if (rc == 0 && req->results_csv)
        rc = rs_results_write_csv(results, req->results_csv, err);
    report->skipped_tokens = stats.skipped_tokens;
    report->num_metrics = nmetrics;
    rs_metric_list_free(mspecs, nmetrics);
    rs_trace_close(trace);
    rs_trace_close(ref_trace);
    rs_router_spec_free(&spec);
    if (req->reference)
        rs_router_spec_free(&ref_spec);
    return rc;
}
