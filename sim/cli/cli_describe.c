/* Describing parameters and inputs for the registry listings. */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "routesim/router.h"
#include "sim/cli/cli.h"
#include "sim/cli/cli_describe.h"

/* A range bound as people write it: integers in full, others shortest. */
static void bound_text(double v, char *buf, size_t size)
{
    if (v == (double)(long long)v && fabs(v) < 1e17)
        snprintf(buf, size, "%lld", (long long)v);
    else
        snprintf(buf, size, "%g", v);
}

static void range_text(const rs_param_def *d, char *buf, size_t size)
{
    char lo[32], hi[32];
    buf[0] = '\0';
    if (d->kind == RS_PARAM_INT || d->kind == RS_PARAM_FLOAT) {
        bound_text(d->min, lo, sizeof lo);
        bound_text(d->max, hi, sizeof hi);
        snprintf(buf, size, "[%s, %s]", lo, hi);
    } else if (d->kind == RS_PARAM_ENUM) {
        snprintf(buf, size, "%s", d->choices);
    } else if (d->kind == RS_PARAM_BOOL) {
        snprintf(buf, size, "0 or 1");
    }
}

void rs_describe_print_params(const rs_param_def *defs, int n)
{
    for (int i = 0; i < n; i++) {
        const rs_param_def *d = &defs[i];
        char range[160], dflt[80];
        range_text(d, range, sizeof range);
        snprintf(dflt, sizeof dflt, "%s=%s", d->name, d->default_value ? d->default_value : "");
        printf("    %-22s %-6s %-24s %s\n", dflt, rs_param_kind_name(d->kind), range, d->help ? d->help : "");
    }
}

/* Table cells: a '|' inside a formula would end the cell. */
void rs_describe_md_cell(const char *text)
{
    for (const char *c = text ? text : ""; *c; c++) {
        if (*c == '|')
            fputc('\\', stdout);
        fputc(*c, stdout);
    }
}

void rs_describe_markdown_params(const rs_param_def *defs, int n)
{
    if (n == 0) {
        printf("- Parameters: none\n");
        return;
    }
    printf("\n| parameter | type | default | range | meaning |\n|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const rs_param_def *d = &defs[i];
        char range[256];
        range_text(d, range, sizeof range);
        printf("| `%s` | %s | %s | ", d->name, rs_param_kind_name(d->kind), d->default_value ? d->default_value : "unset");
        rs_describe_md_cell(range);
        printf(" | ");
        rs_describe_md_cell(d->help);
        printf(" |\n");
    }
}

const char *rs_describe_needs_text(unsigned needs, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%s%s%s%s%s", (needs & (RS_NEEDS_LOGITS | RS_NEEDS_PROBS)) ? " logits" : "",
             (needs & RS_WANTS_PROBS) ? " logits (optional)" : "", (needs & RS_NEEDS_TOKEN_IDS) ? " token ids" : (needs & RS_WANTS_TOKEN_IDS) ? " token ids (optional)" : "",
             (needs & RS_NEEDS_BIAS) ? " bias" : "", (needs & RS_NEEDS_TOPK) ? " recorded top-k" : "",
             (needs & RS_NEEDS_OUTCOME) ? " outcomes" : "", (needs & RS_WANTS_OUTCOME) ? " outcomes (optional)" : "");
    if (!buf[0])
        snprintf(buf, size, " nothing beyond sequence offsets");
    return buf + 1;
}

int rs_describe_emit_json(cJSON *root)
{
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) {
        fprintf(stderr, "routesim: error: out of memory\n");
        return RS_EXIT_FAIL;
    }
    puts(text);
    free(text);
    return RS_EXIT_OK;
}

