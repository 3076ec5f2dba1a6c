#include "sim/experiment/run_meta.h"

#include <stdio.h>
#include <time.h>

#include "version.h"

double rs_epoch_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

cJSON *rs_run_meta_new(const char *name, double wall_start_epoch)
{
    cJSON *meta = cJSON_CreateObject();
    if (!meta)
        return NULL;
    cJSON_AddStringToObject(meta, "name", name);
    cJSON *rs = cJSON_AddObjectToObject(meta, "routesim");
    if (rs) {
        cJSON_AddStringToObject(rs, "version", ROUTESIM_VERSION);
        cJSON_AddStringToObject(rs, "revision", ROUTESIM_REVISION);
    }
    time_t t = (time_t)wall_start_epoch;
    struct tm tm;
    char when[64];
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(meta, "started", when);
    cJSON_AddArrayToObject(meta, "traces");
    return meta;
}

void rs_run_meta_add_trace(cJSON *meta, const rs_trace_info *info, const char *logits_dtype,
                           const rs_engine_stats *stats)
{
    cJSON *traces = cJSON_GetObjectItemCaseSensitive(meta, "traces");
    cJSON *o = cJSON_CreateObject();
    if (!traces || !o || !cJSON_AddItemToArray(traces, o)) {
        cJSON_Delete(o);
        return;
    }
    cJSON_AddStringToObject(o, "path", info->path);
    cJSON_AddStringToObject(o, "unit", info->unit);
    cJSON_AddStringToObject(o, "model", info->model);
    cJSON_AddNumberToObject(o, "tokens", (double)info->num_tokens);
    cJSON_AddNumberToObject(o, "sequences", (double)info->num_sequences);
    cJSON_AddNumberToObject(o, "layers", info->num_layers);
    cJSON_AddNumberToObject(o, "experts", info->num_experts);
    cJSON_AddStringToObject(o, "logits_dtype", logits_dtype);
    cJSON_AddNumberToObject(o, "recorded_k", info->recorded_k);
    cJSON_AddNumberToObject(o, "skipped_tokens", (double)stats->skipped_tokens);
    cJSON_AddNumberToObject(o, "chunk_tokens", (double)stats->chunk_tokens);
    cJSON_AddNumberToObject(o, "largest_chunk_tokens", (double)stats->largest_chunk);
    cJSON_AddNumberToObject(o, "banded_chunks", (double)stats->banded_chunks);
    cJSON_AddNumberToObject(o, "memory_banded_chunks", (double)stats->memory_banded_chunks);
    cJSON_AddNumberToObject(o, "seconds", stats->seconds);
    cJSON_AddNumberToObject(o, "read_seconds", stats->read_seconds);
    cJSON_AddNumberToObject(o, "compute_seconds", stats->compute_seconds);
    cJSON_AddNumberToObject(o, "checkpoints", (double)stats->checkpoints);
    cJSON_AddNumberToObject(o, "checkpoint_seconds", stats->checkpoint_seconds);
    if (stats->resumed_at > 0)
        cJSON_AddNumberToObject(o, "resumed_at_token", (double)stats->resumed_at);
}

/* Peak resident memory of this process image in MiB: VmHWM, which (unlike
 * getrusage's maxrss) does not count what a parent held before exec. */
static double peak_rss_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    double kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lf kB", &kib) == 1)
            break;
    fclose(f);
    return kib < 0 ? -1 : kib / 1024.0;
}

void rs_run_meta_finish(cJSON *meta, double wall_seconds, int threads)
{
    cJSON_AddNumberToObject(meta, "wall_seconds", wall_seconds);
    cJSON_AddNumberToObject(meta, "threads", threads);
    double rss = peak_rss_mib();
    if (rss >= 0)
        cJSON_AddNumberToObject(meta, "peak_rss_mib", rss);
}
