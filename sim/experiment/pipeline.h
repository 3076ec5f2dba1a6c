/* A config run end to end, as `routesim run` does it: load the config,
 * apply the caller's overrides, run the experiment (sim/experiment/
 * experiment.h), add the curves of swept query routers, write
 * OUTPUT/results.csv and results.json (each atomically, never one without
 * the other), then make the figures the config asks for. The CLI only
 * parses options into rs_pipeline_options; tests call it directly. */
#ifndef ROUTESIM_PIPELINE_H
#define ROUTESIM_PIPELINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "routesim/error.h"

typedef struct rs_pipeline_options {
    const char *config;      /* the config file */
    const char *output;      /* NULL: the config's "output" */
    int threads;             /* 0: the config's, else all cores */
    int64_t chunk_tokens;    /* 0: the config's, else from the memory budget */
    double memory_mb;        /* 0: the config's (default 64) */
    int skip_nonfinite;      /* 1: skip tokens with NaN/inf logits (or when the config says so) */
    int bootstrap;           /* resamples; -1: the config's */
    unsigned breakdown;      /* bits 1 << rs_breakdown_dim added to the config's "breakdown" */
    int runs_per_pass;       /* -1: the config's; 0: every run in one pass */
    double checkpoint_seconds; /* < 0: the config's; 0: no checkpoints by time */
    long long checkpoint_chunks; /* < 0: the config's; 0: none by count */
    long long tokens;        /* > 0: generated traces get this many tokens and a path of their own */
    int force;               /* recompute runs stored in OUTPUT/runs; results files may replace others */
    int plots;               /* make the figures the config's "plots" asks for */
    const char *plot_format; /* NULL: png */
    int progress;            /* -1: when stderr is a terminal, 0: never */
    int device;              /* -1: the config's; RS_DEVICE_CPU, RS_DEVICE_GPU (engine.h) */
    int quiet;               /* quieter figure making */
    int silent;              /* nothing on stderr on success (a library call: rs_run_config) */
    FILE *table;             /* the results table goes here; NULL: nowhere */
} rs_pipeline_options;

/* Every override unset, figures on, progress automatic, no table. */
void rs_pipeline_options_init(rs_pipeline_options *opt, const char *config);

typedef struct rs_pipeline_report {
    char results_csv[4096];  /* the files written */
    char results_json[4096];
    int runs;                /* runs in the results (curve and summary runs included) */
    size_t rows;
    int threads;             /* threads the engine used */
} rs_pipeline_report;

/* Runs opt->config. On failure err names the file and field at fault and
 * no results file is left from this run. */
int rs_pipeline_run(const rs_pipeline_options *opt, rs_pipeline_report *report, rs_error *err);

#endif
