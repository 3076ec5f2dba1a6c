/* Importers: converters from logs and tables written by other tools into
 * traces. Each format is one file with one `static const rs_importer_type`
 * and one line in workloads/import/registry.def; `routesim import`, config
 * "import" recipes and the experiment runner all find it through the table
 * (rs_importer_find), parse its typed options from the descriptor, and call
 * its run (docs/import.md). */
#ifndef ROUTESIM_IMPORTER_H
#define ROUTESIM_IMPORTER_H

#include "core/output_space.h"
#include "routesim/error.h"
#include "routesim/params.h"

/* How an option is given, beyond its type and range (rs_param_def). */
enum {
    RS_IMPORT_REQUIRED = 1 << 0,   /* must be given */
    RS_IMPORT_REPEATABLE = 1 << 1, /* a comma list that may be given again: the lists are joined, in order */
    RS_IMPORT_PRICES = 1 << 2,     /* MODEL=PRICE,...; a config may give {"model": price, ...} */
};

typedef struct rs_import_option_form {
    const char *value; /* the value in usage lines ("E", "A=P,B=P"); NULL for a flag (a BOOL option) */
    unsigned flags;
} rs_import_option_form;

/* RS_IMPORTER_CONFIG: config "import" recipes may name the format.
 * RS_IMPORTER_DIRECTORY: INPUT is a directory the importer walks, not a file.
 * RS_IMPORTER_MANY_INPUTS: several INPUT files may be given (job->inputs).
 * Both: one directory, or one or more files (DIR|INPUT...). */
enum { RS_IMPORTER_CONFIG = 1 << 0, RS_IMPORTER_DIRECTORY = 1 << 1, RS_IMPORTER_MANY_INPUTS = 1 << 2 };

/* One import: what to read, what to write, the importer's options. */
typedef struct rs_import_job {
    const char *input;         /* a path, "-" = standard input; gzip is recognised */
    const char *const *inputs; /* RS_IMPORTER_MANY_INPUTS: every input, in order; NULL = input alone */
    int num_inputs;
    const char *output;        /* the trace, written under a temporary name and renamed */
    const rs_params *options;  /* the importer's options, checked */
    int quiet;                 /* 1: no report on stderr */
    rs_output_limit limit;     /* the trace's size is checked against it before writing; {0} = the default */
    int force;                 /* the output may replace a file that is not a trace */
} rs_import_job;

typedef struct rs_importer_type {
    const char *name;
    const char *summary;            /* one line for `routesim import --help` */
    const char *input;              /* what INPUT is, for messages: "the CSV" */
    const char *help;               /* `routesim import NAME --help` before the options: what it reads and writes */
    const char *example;            /* a command line, or NULL */
    const rs_param_def *options;    /* typed options; the command line spells `top_k` as --top-k */
    const rs_import_option_form *forms; /* [num_options], parallel to options */
    int num_options;
    unsigned flags;                 /* RS_IMPORTER_CONFIG, RS_IMPORTER_DIRECTORY, RS_IMPORTER_MANY_INPUTS */
    /* NULL, or checks option values beyond type and range (a usage error
     * naming the option); runs before any input is read. */
    int (*check)(const rs_params *options, rs_error *err);
    /* Reads job->input, writes job->output; reports to stderr unless quiet.
     * On failure no output file is left. */
    int (*run)(const rs_import_job *job, rs_error *err);
} rs_importer_type;

int rs_importer_count(void);
const rs_importer_type *rs_importer_at(int index); /* NULL when out of range */
const rs_importer_type *rs_importer_find(const char *name);

/* The names of the formats, "jsonl, routellm, routerbench", or with quote
 * and last set (e.g. "\"", " or ") "\"a\", \"b\" or \"c\"", limited to those
 * with all of the flags given. */
void rs_importer_names(unsigned flags, const char *quote, const char *last, char *buf, size_t size);

/* The job's inputs: job->inputs[0 .. num_inputs) when given, else job->input alone. */
int rs_import_input_count(const rs_import_job *job);
const char *rs_import_input(const rs_import_job *job, int index);

/* Runs an import as every caller should: each input must be a file (or
 * "-"; a directory for RS_IMPORTER_DIRECTORY; with RS_IMPORTER_MANY_INPUTS
 * too, one directory or files), the output must not be an
 * input nor a directory, and replaces only a trace unless job->force; then
 * type->run. */
int rs_import_run(const rs_importer_type *type, const rs_import_job *job, rs_error *err);

/* The options of type filled with their defaults; owner names them in messages. */
int rs_importer_options_init(const rs_importer_type *type, rs_params *options, const char *owner, rs_error *err);

#endif
