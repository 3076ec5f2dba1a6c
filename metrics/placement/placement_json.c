/* Writing placements as JSON (placement_json.h): one layer per line, so
 * that a diff of two plans shows the layers that changed. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/output_path.h"
#include "metrics/placement/placement_json.h"

static void write_row(FILE *f, const int32_t *v, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++)
        fprintf(f, i ? ", %d" : "%d", (int)v[i]);
    fputc(']', f);
}

/* "key": [ one row per layer ], after `dense` rows of the trivial map. */
static void write_layers(FILE *f, const char *key, const rs_placement *p, const int32_t *rows, int width, int last,
                         int dense)
{
    fprintf(f, "  \"%s\": [\n", key);
    for (int l = 0; l < dense; l++) {
        fputs("    [", f);
        for (int s = 0; s < width; s++)
            fprintf(f, s ? ", %d" : "%d", s % p->layout.E);
        fputs("],\n", f);
    }
    for (int l = 0; l < p->L; l++) {
        fputs("    ", f);
        write_row(f, rows + (size_t)l * width, width);
        fputs(l + 1 < p->L ? ",\n" : "\n", f);
    }
    fprintf(f, "  ]%s\n", last ? "" : ",");
}

static void write_log2phy(FILE *f, const rs_placement *p)
{
    const int E = p->layout.E, X = p->maxcnt;
    fputs("  \"logical_to_physical_map\": [\n", f);
    for (int l = 0; l < p->L; l++) {
        fputs("    [", f);
        for (int e = 0; e < E; e++) {
            if (e)
                fputs(", ", f);
            write_row(f, p->log2phy + ((size_t)l * E + e) * X, X);
        }
        fputs(l + 1 < p->L ? "],\n" : "]\n", f);
    }
    fputs("  ],\n", f);
}

/* A JSON string literal of any text (the policy spec may hold a path). */
static int write_string(FILE *f, const char *text)
{
    cJSON *s = cJSON_CreateString(text);
    char *printed = s ? cJSON_PrintUnformatted(s) : NULL;
    if (printed)
        fputs(printed, f);
    free(printed);
    cJSON_Delete(s);
    return printed ? 0 : -1;
}

int rs_placement_json_write(const rs_placement *p, const rs_placement_json_options *options, const char *path,
                            rs_error *err)
{
    const rs_placement_layout *lay = &p->layout;
    char tmp[4200];
    RS_TRY(rs_temp_path(path, tmp, sizeof tmp, err));
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rs_temp_discard(tmp);
        return rs_fail(err, "%s: cannot write the placement (is the directory writable?)", path);
    }
    fputs("{\n", f);
    write_layers(f, "physical_to_logical_map", p, p->phy2log, lay->S, options->sglang_only,
                 options->sglang_only ? options->dense_layers : 0);
    int bad = 0;
    if (!options->sglang_only) {
        write_log2phy(f, p);
        write_layers(f, "logical_count", p, p->logcnt, lay->E, 0, 0);
        fprintf(f, "  \"devices\": %d,\n  \"nodes\": %d,\n  \"groups\": %d", lay->G, lay->N, lay->groups);
        if (options->policy) {
            fputs(",\n  \"policy\": ", f);
            bad |= write_string(f, options->policy) != 0;
        }
        fputc('\n', f);
    }
    fputs("}\n", f);
    bad |= ferror(f);
    bad |= fclose(f) != 0;
    if (bad) {
        rs_temp_discard(tmp);
        return rs_fail(err, "%s: write failed (disk full?)", path);
    }
    return rs_commit_path(tmp, path, err);
}
