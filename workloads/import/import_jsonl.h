/* Importing JSON-lines routing logs (one object per token and layer, as
 * vLLM / Hugging Face forward hooks write them) into a trace of the recorded
 * top-k and, when logged, the full router logits (docs/import.md).
 *
 * The whole log is held in memory, packed, so rows may arrive in any order;
 * the trace is written only after every row has been read and checked, and
 * a failed import leaves no output file. */
#ifndef ROUTESIM_IMPORT_JSONL_H
#define ROUTESIM_IMPORT_JSONL_H

#include <stdint.h>

#include "core/output_space.h"
#include "routesim/error.h"

#define RS_JSONL_KEY_MAX 256

/* Most keys joined by '+' in a composite sequence key. */
#define RS_JSONL_SEQ_PARTS 8

/* JSON key (a dotted path for nested objects) of each field. An empty
 * weights, token_id, logits or domain key means the field is not read; an
 * empty experts key is allowed when logits are read. seq may join keys with
 * '+' (dataset+problem_id): the sequence id is then the tuple of values. */
typedef struct rs_jsonl_key_map {
    char seq[RS_JSONL_KEY_MAX];
    char token[RS_JSONL_KEY_MAX];
    char layer[RS_JSONL_KEY_MAX];
    char experts[RS_JSONL_KEY_MAX];
    char weights[RS_JSONL_KEY_MAX];
    char token_id[RS_JSONL_KEY_MAX];
    char logits[RS_JSONL_KEY_MAX];
    char domain[RS_JSONL_KEY_MAX];
} rs_jsonl_key_map;

/* seq=seq, token=token, layer=layer, experts=experts; nothing else read. */
void rs_jsonl_key_map_defaults(rs_jsonl_key_map *map);
/* Applies "field=KEY,field=KEY,..." on top of map. Fields: seq, token,
 * layer, experts, weights, token_id, logits, domain. */
int rs_jsonl_key_map_parse(rs_jsonl_key_map *map, const char *text, rs_error *err);
/* Checks a complete map: required keys present, every key a key or dotted
 * path, weights only with experts; messages start with prefix. */
int rs_jsonl_key_map_check(const rs_jsonl_key_map *map, const char *prefix, rs_error *err);

typedef struct rs_import_jsonl_options {
    const char *input;  /* path, or "-" for stdin; gzip input is detected and decompressed */
    const char *output; /* the trace to write */
    int num_experts;    /* E: every expert id must lie in [0, E) */
    rs_jsonl_key_map map;
    int strict;         /* fail instead of padding missing (token, layer) pairs */
    int pad_gaps;       /* store tokens with no row at all as -1 rows instead of failing */
    const char *model;  /* root attribute `model`, NULL = omitted */
    int top_k;          /* root attribute `top_k`, 0 = omitted */
    const char *scoring; /* root attribute `scoring`, NULL = omitted */
    int norm_topk;      /* root attribute `norm_topk`, -1 = omitted */
    int gzip_level;     /* 0 = uncompressed datasets */
    rs_output_limit limit; /* the trace's size is checked against it first; {0} = the default limit */
} rs_import_jsonl_options;

/* Options with the default key map, norm_topk -1 and everything else zero. */
void rs_import_jsonl_options_init(rs_import_jsonl_options *opt);

#define RS_IMPORT_MISSING_SAMPLES 5
#define RS_IMPORT_MAX_LAYERS 65536 /* distinct layer values; more means a wrong --map */

typedef struct rs_import_missing_pair {
    char seq[64]; /* the logged sequence id: a number, or a string in quotes */
    int64_t token;
    int32_t layer; /* the logged layer value */
} rs_import_missing_pair;

typedef struct rs_import_jsonl_report {
    int64_t rows; /* JSON objects read */
    int64_t sequences;
    int64_t tokens;
    int num_layers;
    int32_t *layer_index; /* [num_layers] logged layer values, ascending */
    int k;                /* the longest experts list */
    int has_weights, has_token_ids, has_logits;
    int num_domains; /* distinct domain labels, 0 when not mapped */
    int64_t missing_pairs; /* stored as -1 rows */
    int64_t gap_tokens;    /* tokens with no row at all (stored as -1 rows with pad_gaps) */
    int num_missing_samples;
    rs_import_missing_pair missing_samples[RS_IMPORT_MISSING_SAMPLES]; /* the first ones, in trace order */
} rs_import_jsonl_report;

/* Reads opt->input and writes opt->output. On success fills report (free it
 * with rs_import_jsonl_report_free); on failure err names the file, the line
 * and the key at fault, and report holds nothing to free. */
int rs_import_jsonl(const rs_import_jsonl_options *opt, rs_import_jsonl_report *report, rs_error *err);
void rs_import_jsonl_report_free(rs_import_jsonl_report *report);

#endif
