/* Fuzz target: the files placements are planned from and read back: a
 * loads file (SGLang's logical_count JSON or a CSV of layers x experts,
 * metrics/placement/loads_file.c) and a placement file (policy file,
 * metrics/placement/file.c). The input's first line is the layout the
 * placement file is read against, "E S G N" (clamped to small numbers);
 * the rest is the file, tried as both.
 *
 * What must hold: a refusal carries a message; loads that are read are
 * finite and >= 0 and plan (eplb) into a valid placement; a placement that
 * is read is valid (every expert on a slot, ranks consistent) and written
 * out then read back gives the same slots and ranks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/loads_file.h"
#include "metrics/placement/placement.h"
#include "metrics/placement/placement_json.h"
#include "tests/fuzz/harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void refused(const char *what, const rs_error *err)
{
    if (!err->msg[0])
        rs_fuzz_fail("%s failed without a message", what);
    rs_fuzz_note("refused", err->msg);
}

/* "E S G N" of the first line, made a valid layout of at most 16 experts. */
static rs_placement_layout layout_of(const char *text)
{
    int E = 4, S = 4, G = 2, N = 1;
    sscanf(text, "%d %d %d %d", &E, &S, &G, &N);
    E = E < 1 ? 1 : E > 16 ? 16 : E;
    S = S < E ? E : S > E + 8 ? E + 8 : S;
    G = G < 1 ? 1 : G > S ? S : G;
    while (S % G != 0)
        G--;
    N = N < 1 ? 1 : N > G ? G : N;
    while (G % N != 0)
        N--;
    return (rs_placement_layout){.E = E, .S = S, .G = G, .N = N, .groups = 1};
}

static void try_loads(const char *path)
{
    rs_error err = {{0}};
    double *loads = NULL;
    int L = 0, E = 0;
    if (rs_placement_loads_read(path, &loads, &L, &E, &err) != 0) {
        refused("reading loads", &err);
        return;
    }
    if (L < 1 || E < 1)
        rs_fuzz_fail("loads read with %d layers x %d experts", L, E);
    for (size_t i = 0; i < (size_t)L * (size_t)E; i++)
        if (!(isfinite(loads[i]) && loads[i] >= 0))
            rs_fuzz_fail("load %zu read as %g", i, loads[i]);
    if ((size_t)L * (size_t)E <= 4096) { /* plan small tables: the planner is not what is fuzzed */
        const rs_placement_stats stats = {.L = L, .E = E, .loads = loads};
        const rs_placement_options options = {.layout = {.E = E, .S = E + 1, .G = 1, .N = 1, .groups = 1}};
        rs_placement *p = rs_placement_plan(rs_placement_policy_find("eplb"), &stats, &options, &err);
        if (!p)
            rs_fuzz_fail("eplb refused loads that were read: %s", err.msg);
        rs_placement_free(p);
    }
    free(loads);
}

static void try_placement(const char *path, const rs_placement_layout *lay, int L)
{
    rs_error err = {{0}};
    const rs_placement_stats stats = {.L = L, .E = lay->E};
    const rs_placement_options options = {.layout = *lay, .path = path};
    rs_placement *p = rs_placement_plan(rs_placement_policy_find("file"), &stats, &options, &err);
    if (!p) {
        refused("reading a placement", &err);
        return;
    }
    const char *out = rs_fuzz_path("back.json");
    const rs_placement_json_options jo = {.policy = "file"};
    if (rs_placement_json_write(p, &jo, out, &err) != 0)
        rs_fuzz_fail("writing a placement that was read: %s", err.msg);
    const rs_placement_options again = {.layout = *lay, .path = out};
    rs_placement *q = rs_placement_plan(rs_placement_policy_find("file"), &stats, &again, &err);
    if (!q)
        rs_fuzz_fail("a placement written by routesim does not read back: %s", err.msg);
    const size_t cells = (size_t)L * (size_t)lay->S;
    if (memcmp(p->phy2log, q->phy2log, cells * sizeof *p->phy2log) != 0 ||
        memcmp(p->rank, q->rank, cells * sizeof *p->rank) != 0)
        rs_fuzz_fail("a placement read back differs from the one written");
    rs_placement_free(p);
    rs_placement_free(q);
    remove(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    char *text = rs_fuzz_string(data, size);
    char *body = strchr(text, '\n');
    body = body ? body + 1 : text + strlen(text);
    const rs_placement_layout lay = layout_of(text);
    const char *path = rs_fuzz_path("input");
    rs_fuzz_write_file(path, body, strlen(body));
    try_loads(path);
    for (int L = 1; L <= 3; L++)
        try_placement(path, &lay, L);
    remove(path);
    free(text);
    return 0;
}
