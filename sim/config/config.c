#include "sim/config/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/json_keys.h"
#include "sim/config/import_recipe.h"
#include "sim/config/param_sweep.h"
#include "core/read_file.h"
#include "plots/plot.h"
#include "routers/plugins.h"
#include "workloads/generator/generator.h"

static char *read_file(const char *path, rs_error *err)
{
    char *text = rs_read_file(path);
    if (!text && errno == EISDIR)
        rs_fail(err, "%s: is a directory, expected a config file", path);
    else if (!text)
        rs_fail(err, "%s: cannot open config: %s", path, strerror(errno));
    return text;
}

static int check_keys(const cJSON *obj, const char *const *known, const char *source, const char *path,
                      rs_error *err)
{
    for (const cJSON *v = obj->child; v; v = v->next) {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++)
            ok = strcmp(v->string, known[i]) == 0;
        if (!ok) {
            char list[512] = "";
            size_t len = 0;
            for (int i = 0; known[i] && len < sizeof list; i++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", known[i]);
            return rs_fail(err, "%s: %s%sunknown key '%s' (known: %s)", source, path, path[0] ? ": " : "", v->string,
                           list);
        }
    }
    return 0;
}

/* "sweep": "grid" (default) or "zip" of a router or metric entry. */
static int get_sweep(const cJSON *entry, const char *source, const char *path, rs_sweep *out, rs_error *err)
{
    *out = RS_SWEEP_GRID;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, "sweep");
    if (!v)
        return 0;
    if (cJSON_IsString(v) && strcmp(v->valuestring, "grid") == 0)
        return 0;
    if (cJSON_IsString(v) && strcmp(v->valuestring, "zip") == 0) {
        *out = RS_SWEEP_ZIP;
        return 0;
    }
    return rs_fail(err, "%s: %s.sweep: expected \"grid\" (every combination) or \"zip\" (lists paired)", source,
                   path);
}

static int get_int(const cJSON *root, const char *key, long long min, long long max, long long *out,
                   const char *source, rs_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < (double)min ||
        v->valuedouble > (double)max)
        return rs_fail(err, "%s: %s: expected an integer in [%lld, %lld]", source, key, min, max);
    *out = (long long)v->valuedouble;
    return 0;
}

static int get_string(const cJSON *root, const char *key, char **out, const char *source, rs_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v)
        return 0;
    if (!cJSON_IsString(v) || !v->valuestring[0])
        return rs_fail(err, "%s: %s: expected a non-empty string", source, key);
    free(*out);
    *out = strdup(v->valuestring);
    RS_CHECK(*out, err, "out of memory");
    return 0;
}

/* "a.h5" and "./a.h5" name one file: paths are compared as files when both
 * exist (so links and "x/../a.h5" are caught too), else as text without
 * "./" parts. */
static const char *without_dot_parts(const char *path, char *buf, size_t size)
{
    size_t n = 0;
    for (const char *c = path; *c && n + 1 < size;) {
        if ((c == path || c[-1] == '/') && c[0] == '.' && (c[1] == '/' || c[1] == '\0')) {
            c += c[1] ? 2 : 1;
            continue;
        }
        buf[n++] = *c++;
    }
    buf[n] = '\0';
    return buf;
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char x[4096], y[4096];
    return strcmp(without_dot_parts(a, x, sizeof x), without_dot_parts(b, y, sizeof y)) == 0;
}

/* "max_output_gb": the size limit of a generated or imported trace, a
 * number of GiB or "none" (no limit, free space not checked either). */
static int parse_output_limit(rs_trace_entry *te, const cJSON *t, const char *src, const char *path, rs_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, "max_output_gb");
    te->limit.lift = "the trace's \"max_output_gb\" in the config raises it";
    if (!v)
        return 0;
    RS_CHECK(te->generate || te->import, err,
             "%s: %s.max_output_gb: only a generated or imported trace is written, and so has a size limit", src,
             path);
    if (cJSON_IsString(v) && strcmp(v->valuestring, "none") == 0) {
        te->limit.max_gib = -1;
        return 0;
    }
    RS_CHECK(cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble > 0, err,
             "%s: %s.max_output_gb: expected a size in GiB > 0, or \"none\"", src, path);
    te->limit.max_gib = v->valuedouble;
    return 0;
}

/* A trace entry {"path", "generate" or "import", "max_output_gb"}. */
static int parse_trace_object(rs_trace_entry *te, const cJSON *t, const char *src, const char *path, rs_error *err)
{
    RS_CHECK(cJSON_IsObject(t), err, "%s: %s: expected a path or an object", src, path);
    static const char *const known[] = {"path", "generate", "import", "max_output_gb", NULL};
    RS_TRY(check_keys(t, known, src, path, err));
    RS_CHECK(!(cJSON_GetObjectItemCaseSensitive(t, "generate") && cJSON_GetObjectItemCaseSensitive(t, "import")),
             err, "%s: %s: a trace is either generated or imported, not both", src, path);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(t, "path");
    RS_CHECK(cJSON_IsString(p) && p->valuestring[0], err, "%s: %s.path: expected a non-empty string", src, path);
    te->path = strdup(p->valuestring);
    RS_CHECK(te->path, err, "out of memory");
    const cJSON *imp = cJSON_GetObjectItemCaseSensitive(t, "import");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(t, "generate");
    if (imp) {
        RS_TRY(rs_import_recipe_parse(&te->imp, imp, src, path, err));
        te->import = 1;
    } else if (g) {
        char owner[128];
        snprintf(owner, sizeof owner, "%s: %s.generate", src, path);
        RS_TRY(rs_generator_params_init(&te->gen, owner, err));
        te->generate = 1;
        RS_CHECK(cJSON_IsObject(g), err, "%s: %s.generate: expected an object of generator settings", src, path);
        for (const cJSON *v = g->child; v; v = v->next) {
            char where[96];
            snprintf(where, sizeof where, "%s.generate", path);
            RS_CHECK(!cJSON_IsArray(v), err, "%s: %s.%s: generator settings take one value", src, where, v->string);
            RS_TRY(rs_params_set_json(&te->gen, v->string, v, src, where, err));
        }
        /* Settings that depend on each other (k <= experts...) fail now, not mid-run. */
        if (rs_generator_check(&te->gen, err) != 0)
            return rs_fail_context(err, "%s: %s.generate", src, path);
    }
    return parse_output_limit(te, t, src, path, err);
}

static int parse_traces(rs_config *cfg, const cJSON *traces, rs_error *err)
{
    const char *src = cfg->source;
    RS_CHECK(cJSON_IsArray(traces) && cJSON_GetArraySize(traces) > 0, err,
             "%s: traces: expected a non-empty list of trace paths or {\"path\": ..., \"generate\": {...}}", src);
    int n = cJSON_GetArraySize(traces);
    cfg->traces = calloc((size_t)n, sizeof *cfg->traces);
    RS_CHECK(cfg->traces, err, "out of memory");
    int i = 0;
    for (const cJSON *t = traces->child; t; t = t->next, i++) {
        rs_trace_entry *te = &cfg->traces[i];
        cfg->num_traces = i + 1;
        char path[64];
        snprintf(path, sizeof path, "traces[%d]", i);
        if (cJSON_IsString(t)) {
            te->path = strdup(t->valuestring);
            RS_CHECK(te->path, err, "out of memory");
        } else {
            RS_TRY(parse_trace_object(te, t, src, path, err));
        }
        for (int j = 0; j < i; j++)
            RS_CHECK(!same_file(cfg->traces[j].path, te->path), err,
                     "%s: %s: '%s' is the trace of traces[%d] again (list each trace once: its runs would repeat)",
                     src, path, te->path, j);
    }
    return 0;
}

/* Runs after sweeps and seeds, and metric results after sweeps, in one
 * config: each is a spec of about 2 KiB held until the end. */
enum { MAX_EXPANDED = 100000 };

static uint64_t label_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The slot of slots[] (open addressing over run indices, -1 = empty) that
 * holds label, or the empty one where it would go. */
static size_t label_slot(const rs_router_spec *specs, const int *slots, size_t mask, const char *label)
{
    size_t at = label_hash(label) & mask;
    while (slots[at] >= 0 && strncmp(specs[slots[at]].label, label, sizeof specs[0].label) != 0)
        at = (at + 1) & mask;
    return at;
}

/* A label an earlier run has already taken becomes "LABEL#2", "LABEL#3"...,
 * the first of those no run has taken, so every run keeps its own label.
 * Labels are hashed so that this stays linear in the number of runs. */
static int unique_labels(rs_router_spec *specs, int n, rs_error *err)
{
    size_t num_slots = 64;
    while (num_slots < (size_t)n * 2)
        num_slots *= 2;
    int *slots = malloc(num_slots * sizeof *slots);
    int *next = malloc((size_t)(n ? n : 1) * sizeof *next); /* next suffix to try for run i's label */
    if (!slots || !next) {
        free(slots);
        free(next);
        return rs_fail(err, "out of memory");
    }
    memset(slots, 0xff, num_slots * sizeof *slots);
    const size_t mask = num_slots - 1;
    for (int i = 0; i < n; i++) {
        size_t at = label_slot(specs, slots, mask, specs[i].label);
        if (slots[at] >= 0) {
            int first = slots[at];
            char base[sizeof specs[i].label];
            memcpy(base, specs[i].label, sizeof base);
            do {
                snprintf(specs[i].label, sizeof specs[i].label, "%.240s#%d", base, next[first]++);
                at = label_slot(specs, slots, mask, specs[i].label);
            } while (slots[at] >= 0);
        }
        slots[at] = i;
        next[i] = 2;
    }
    free(slots);
    free(next);
    return 0;
}

static int parse_routers(rs_config *cfg, const cJSON *routers, rs_error *err)
{
    const char *src = cfg->source;
    RS_CHECK(cJSON_IsArray(routers) && cJSON_GetArraySize(routers) > 0, err,
             "%s: routers: expected a non-empty list of router specs or {\"name\": ..., \"params\": {...}}", src);
    int i = 0;
    for (const cJSON *r = routers->child; r; r = r->next, i++) {
        char path[64];
        snprintf(path, sizeof path, "routers[%d]", i);
        rs_router_spec base;
        rs_sweep sweep = RS_SWEEP_GRID;
        const cJSON *params = NULL;
        const char *label = NULL;
        if (cJSON_IsString(r)) {
            if (rs_router_spec_parse(&base, r->valuestring, err) != 0)
                return rs_fail_context(err, "%s: %s", src, path);
        } else {
            RS_CHECK(cJSON_IsObject(r), err, "%s: %s: expected a router spec string or an object", src, path);
            static const char *const known[] = {"name", "params", "label", "sweep", NULL};
            RS_TRY(check_keys(r, known, src, path, err));
            RS_TRY(get_sweep(r, src, path, &sweep, err));
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "name");
            RS_CHECK(cJSON_IsString(name), err, "%s: %s.name: expected a router name", src, path);
            char owner[128];
            snprintf(owner, sizeof owner, "%s: %s.name: ", src, path);
            RS_TRY(rs_router_spec_init(&base, name->valuestring, owner, err));
            params = cJSON_GetObjectItemCaseSensitive(r, "params");
            const cJSON *l = cJSON_GetObjectItemCaseSensitive(r, "label");
            if (l) {
                if (!cJSON_IsString(l) || !l->valuestring[0]) {
                    rs_router_spec_free(&base);
                    return rs_fail(err, "%s: %s.label: expected a non-empty string", src, path);
                }
                label = l->valuestring;
            }
        }
        char where[96];
        snprintf(where, sizeof where, "%s.params", path);
        rs_params *sets = NULL;
        int count = 0;
        int rc = rs_params_expand(&base.params, params, sweep, src, where, &sets, &count, err);
        const rs_router_type *type = base.type, *preset = base.preset;
        rs_router_spec_free(&base);
        RS_TRY(rc);
        if (cfg->num_routers + count > MAX_EXPANDED) {
            rs_param_sets_free(sets, count);
            return rs_fail(err, "%s: %s: more than %d runs in the config (routers after expanding lists)", src, path,
                           MAX_EXPANDED);
        }
        rs_router_spec *grown = realloc(cfg->routers, (size_t)(cfg->num_routers + count) * sizeof *grown);
        if (!grown) {
            rs_param_sets_free(sets, count);
            return rs_fail(err, "out of memory");
        }
        cfg->routers = grown;
        for (int c = 0; c < count; c++) {
            rs_router_spec *spec = &cfg->routers[cfg->num_routers++];
            memset(spec, 0, sizeof *spec);
            spec->type = type;
            spec->preset = preset;
            spec->params = sets[c];
            spec->entry = i;
            spec->repeat = -1;
            snprintf(spec->params.owner, sizeof spec->params.owner, "router %s", preset ? preset->name : type->name);
            rs_router_spec_default_label(spec);
            if (label) {
                char swept[1024] = "";
                /* Swept parameters keep labels of one config entry apart. */
                if (count > 1) {
                    unsigned long long mask = 0;
                    for (const cJSON *v = params->child; v; v = v->next)
                        if (cJSON_IsArray(v))
                            for (int j = 0; j < spec->params.n; j++)
                                if (strcmp(spec->params.defs[j].name, v->string) == 0)
                                    mask |= 1ULL << j;
                    rs_params_format(&spec->params, mask, 0, ",", swept, sizeof swept);
                }
                snprintf(spec->label, sizeof spec->label, "%s%s%.200s", label, swept[0] ? ":" : "", swept);
            }
        }
        free(sets); /* the parameter sets now belong to the specs */
    }
    return unique_labels(cfg->routers, cfg->num_routers, err);
}

/* "reference": a run's label, a router spec string, or {"router": spec or
 * {"name", "params"}, "trace": paired trace path}. */
static int parse_reference(rs_config *cfg, const cJSON *ref, rs_error *err)
{
    const char *src = cfg->source;
    const cJSON *router = ref, *trace = NULL;
    if (cJSON_IsObject(ref)) {
        static const char *const known[] = {"router", "trace", NULL};
        RS_TRY(check_keys(ref, known, src, "reference", err));
        router = cJSON_GetObjectItemCaseSensitive(ref, "router");
        trace = cJSON_GetObjectItemCaseSensitive(ref, "trace");
        RS_CHECK(router, err, "%s: reference.router: missing (the router whose decisions runs are compared with)",
                 src);
        RS_CHECK(!trace || (cJSON_IsString(trace) && trace->valuestring[0]), err,
                 "%s: reference.trace: expected the path of a paired trace", src);
    }
    const char *where = router == ref ? "reference" : "reference.router";
    if (trace) {
        RS_CHECK(cfg->num_traces == 1, err, "%s: reference.trace: a paired trace pairs with one trace, traces has %d",
                 src, cfg->num_traces);
        cfg->reference_trace = strdup(trace->valuestring);
        RS_CHECK(cfg->reference_trace, err, "out of memory");
    }
    if (cJSON_IsString(router)) {
        for (int r = 0; r < cfg->num_routers && !trace; r++)
            if (strcmp(cfg->routers[r].label, router->valuestring) == 0) {
                cfg->reference = &cfg->routers[r];
                return 0;
            }
        cfg->reference_owned = calloc(1, sizeof *cfg->reference_owned);
        RS_CHECK(cfg->reference_owned, err, "out of memory");
        if (rs_router_spec_parse(cfg->reference_owned, router->valuestring, err) != 0) {
            free(cfg->reference_owned);
            cfg->reference_owned = NULL;
            return rs_fail_context(err, "%s: %s", src, where);
        }
        cfg->reference = cfg->reference_owned;
        return 0;
    }
    RS_CHECK(cJSON_IsObject(router), err, "%s: %s: expected a router spec string, a run label or {\"name\": ..., "
             "\"params\": {...}}", src, where);
    static const char *const known[] = {"name", "params", NULL};
    RS_TRY(check_keys(router, known, src, where, err));
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(router, "name");
    RS_CHECK(cJSON_IsString(name), err, "%s: %s.name: expected a router name", src, where);
    char owner[128], params_path[64];
    snprintf(owner, sizeof owner, "%s: %s.name: ", src, where);
    snprintf(params_path, sizeof params_path, "%s.params", where);
    rs_router_spec base;
    RS_TRY(rs_router_spec_init(&base, name->valuestring, owner, err));
    rs_params *sets = NULL;
    int count = 0;
    int rc = rs_params_expand(&base.params, cJSON_GetObjectItemCaseSensitive(router, "params"), RS_SWEEP_GRID, src,
                              params_path,
                              &sets, &count, err);
    if (rc == 0 && count != 1) {
        rs_param_sets_free(sets, count);
        rc = rs_fail(err, "%s: %s: the reference is one router (no parameter lists)", src, params_path);
    }
    if (rc != 0) {
        rs_router_spec_free(&base);
        return -1;
    }
    cfg->reference_owned = calloc(1, sizeof *cfg->reference_owned);
    if (!cfg->reference_owned) {
        rs_param_sets_free(sets, count);
        rs_router_spec_free(&base);
        return rs_fail(err, "out of memory");
    }
    rs_router_spec *spec = cfg->reference_owned;
    spec->repeat = -1;
    spec->type = base.type;
    spec->preset = base.preset;
    spec->params = sets[0];
    free(sets);
    rs_router_spec_free(&base);
    rs_router_spec_default_label(spec);
    cfg->reference = spec;
    return 0;
}

/* "breakdown": ["domain", "phase"] (or one name): every metric also per
 * group of tokens of each dimension. */
static int parse_breakdown(rs_config *cfg, const cJSON *list, rs_error *err)
{
    const char *src = cfg->source;
    if (cJSON_IsString(list))
        return rs_breakdown_parse(list->valuestring, &cfg->breakdown, src, err) == 0
                   ? 0
                   : rs_fail(err, "%s: breakdown: expected \"domain\", \"phase\" or a list of them, got '%s'", src,
                             list->valuestring);
    RS_CHECK(cJSON_IsArray(list) && list->child, err,
             "%s: breakdown: expected a list of dimensions, e.g. [\"domain\", \"phase\"]", src);
    int i = 0;
    for (const cJSON *d = list->child; d; d = d->next, i++) {
        unsigned dims = 0;
        RS_CHECK(cJSON_IsString(d) && rs_breakdown_parse(d->valuestring, &dims, src, err) == 0 &&
                     !strchr(d->valuestring, ','),
                 err, "%s: breakdown[%d]: expected \"domain\" or \"phase\"", src, i);
        RS_CHECK(!(cfg->breakdown & dims), err, "%s: breakdown[%d]: '%s' given twice", src, i, d->valuestring);
        cfg->breakdown |= dims;
    }
    return 0;
}

/* "bootstrap": true (1000 resamples), a number of resamples, or
 * {"resamples", "level", "blocks", "seed"}. */
static int parse_bootstrap(rs_config *cfg, const cJSON *b, rs_error *err)
{
    const char *src = cfg->source;
    cfg->bootstrap = 1000;
    if (cJSON_IsBool(b)) {
        cfg->bootstrap = cJSON_IsTrue(b) ? 1000 : 0;
        return 0;
    }
    if (cJSON_IsNumber(b)) {
        RS_CHECK(b->valuedouble == floor(b->valuedouble) && b->valuedouble >= 0 && b->valuedouble <= 1000000, err,
                 "%s: bootstrap: expected an integer number of resamples in [0, 1000000]", src);
        cfg->bootstrap = (int)b->valuedouble;
        return 0;
    }
    RS_CHECK(cJSON_IsObject(b), err,
             "%s: bootstrap: expected true, a number of resamples or {\"resamples\", \"level\", \"blocks\", \"seed\"}",
             src);
    static const char *const known[] = {"resamples", "level", "blocks", "seed", NULL};
    RS_TRY(check_keys(b, known, src, "bootstrap", err));
    long long v = cfg->bootstrap;
    RS_TRY(get_int(b, "resamples", 0, 1000000, &v, src, err));
    cfg->bootstrap = (int)v;
    v = 0;
    RS_TRY(get_int(b, "blocks", 2, 1000000, &v, src, err));
    cfg->bootstrap_blocks = (int)v;
    v = 0;
    RS_TRY(get_int(b, "seed", 0, 9007199254740991LL, &v, src, err));
    cfg->bootstrap_seed = (uint64_t)v;
    const cJSON *level = cJSON_GetObjectItemCaseSensitive(b, "level");
    if (level) {
        RS_CHECK(cJSON_IsNumber(level) && level->valuedouble > 0 && level->valuedouble < 1, err,
                 "%s: bootstrap.level: expected a confidence level in (0, 1), e.g. 0.95", src);
        cfg->bootstrap_level = level->valuedouble;
    }
    return 0;
}

/* 1 when the config gave the parameter (not its default); -1 when the
 * router has no such parameter. */
static int user_gave(const rs_params *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->defs[i].name, name) == 0)
            return p->v[i].explicit_;
    return -1;
}

/* "group": the token group of every router that takes one and was not
 * given one. */
static int apply_group(rs_config *cfg, const cJSON *group, rs_error *err)
{
    RS_CHECK(cJSON_IsString(group) && (strcmp(group->valuestring, "sequence") == 0 ||
                                       strcmp(group->valuestring, "batch") == 0 ||
                                       strcmp(group->valuestring, "step") == 0),
             err, "%s: group: expected \"sequence\", \"batch\" or \"step\"", cfg->source);
    for (int r = 0; r < cfg->num_routers; r++) {
        rs_params *p = &cfg->routers[r].params;
        if (user_gave(p, "group") == 0)
            RS_TRY(rs_params_set(p, "group", group->valuestring, err));
    }
    return 0;
}

/* "seeds": N (seeds 0..N-1) or a list: every stochastic router whose seed
 * the config leaves open runs once per seed; the runs of one router are
 * summarised after routing (mean and interval, sim/experiment/repeats.c). */
static int expand_seeds(rs_config *cfg, const cJSON *seeds, rs_error *err)
{
    const char *src = cfg->source;
    long long values[1000];
    int n = 0;
    if (cJSON_IsNumber(seeds)) {
        RS_CHECK(seeds->valuedouble == floor(seeds->valuedouble) && seeds->valuedouble >= 1 &&
                     seeds->valuedouble <= 1000,
                 err, "%s: seeds: expected a number of repeats in [1, 1000] or a list of seeds", src);
        for (n = 0; n < (int)seeds->valuedouble; n++)
            values[n] = n;
    } else {
        RS_CHECK(cJSON_IsArray(seeds) && cJSON_GetArraySize(seeds) >= 1 && cJSON_GetArraySize(seeds) <= 1000, err,
                 "%s: seeds: expected a number of repeats in [1, 1000] or a list of seeds", src);
        for (const cJSON *v = seeds->child; v; v = v->next, n++) {
            RS_CHECK(cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= 0 &&
                         v->valuedouble <= 9007199254740991.0,
                     err, "%s: seeds[%d]: expected an integer seed >= 0", src, n);
            values[n] = (long long)v->valuedouble;
            for (int j = 0; j < n; j++)
                RS_CHECK(values[j] != values[n], err, "%s: seeds[%d]: seed %lld is listed twice", src, n, values[n]);
        }
    }
    int total = 0;
    for (int r = 0; r < cfg->num_routers; r++) {
        const rs_router_spec *s = &cfg->routers[r];
        int repeats = (s->type->flags & RS_ROUTER_STOCHASTIC) && user_gave(&s->params, "seed") == 0;
        total += repeats ? n : 1;
        RS_CHECK(total <= MAX_EXPANDED, err, "%s: seeds: more than %d runs in the config (%d seeds of each stochastic "
                 "router)", src, MAX_EXPANDED, n);
    }
    rs_router_spec *out = calloc((size_t)total, sizeof *out);
    RS_CHECK(out, err, "out of memory");
    int k = 0, rc = 0;
    for (int r = 0; r < cfg->num_routers; r++) {
        rs_router_spec *s = &cfg->routers[r];
        int repeats = (s->type->flags & RS_ROUTER_STOCHASTIC) && user_gave(&s->params, "seed") == 0;
        if (!repeats) {
            out[k++] = *s;
            memset(s, 0, sizeof *s); /* moved */
            continue;
        }
        int first = k;
        for (int i = 0; i < n && rc == 0; i++) {
            rs_router_spec *d = &out[k];
            *d = *s;
            if ((rc = rs_params_copy(&d->params, &s->params, err)) != 0)
                break;
            k++;
            char text[32];
            snprintf(text, sizeof text, "%lld", values[i]);
            if ((rc = rs_params_set(&d->params, "seed", text, err)) != 0)
                break;
            d->repeat = first;
            snprintf(d->repeat_label, sizeof d->repeat_label, "%s", s->label);
            snprintf(d->label, sizeof d->label, "%.230s@seed=%lld", s->label, values[i]);
        }
        rs_router_spec_free(s);
    }
    for (int r = 0; r < cfg->num_routers; r++)
        rs_router_spec_free(&cfg->routers[r]);
    free(cfg->routers);
    cfg->routers = out;
    cfg->num_routers = k;
    return rc;
}

/* "outputs": ["router_entropy", ...] keeps only those outputs of a family. */
static int parse_outputs(const rs_metric_type *type, const cJSON *list, const char *src, const char *path,
                         unsigned long long *out, rs_error *err)
{
    *out = 0;
    if (!list)
        return 0;
    RS_CHECK(cJSON_IsArray(list) && list->child, err,
             "%s: %s.outputs: expected a non-empty list of output names of metric %s", src, path, type->name);
    int i = 0;
    for (const cJSON *o = list->child; o; o = o->next, i++) {
        RS_CHECK(cJSON_IsString(o), err, "%s: %s.outputs[%d]: expected an output name (a string)", src, path, i);
        int index = rs_metric_output_index(type, o->valuestring);
        if (index < 0 || index >= 64) {
            char known[2048];
            rs_metric_output_names(type, known, sizeof known);
            return rs_fail(err, "%s: %s.outputs[%d]: metric %s has no output '%s' (outputs: %s)", src, path, i,
                           type->name, o->valuestring, known);
        }
        *out |= 1ULL << index;
    }
    return 0;
}

/* 1 when one of the new parameter sets of family type measures what a
 * metric already listed measures: same parameters, an output in common. */
static int repeated_metric(const rs_config *cfg, const rs_metric_type *type, const rs_params *sets, int count,
                           unsigned long long outputs)
{
    for (int i = 0; i < cfg->num_metrics; i++) {
        const rs_metric_spec *old = &cfg->metrics[i];
        rs_metric_spec fresh = {.type = type, .outputs = outputs};
        if (old->type != type || !(rs_metric_spec_outputs(old) & rs_metric_spec_outputs(&fresh)))
            continue;
        char a[1024], b[1024];
        rs_params_format(&old->params, ~0ULL, 0, ",", a, sizeof a);
        for (int c = 0; c < count; c++)
            if (rs_params_format(&sets[c], ~0ULL, 0, ",", b, sizeof b) >= 0 && strcmp(a, b) == 0)
                return 1;
    }
    return 0;
}

static int parse_metrics(rs_config *cfg, const cJSON *metrics, rs_error *err)
{
    const char *src = cfg->source;
    /* an empty list routes without measuring (to time routers, or write decisions) */
    RS_CHECK(cJSON_IsArray(metrics), err,
             "%s: metrics: expected a list of metric names or {\"name\": ..., \"params\": {...}}", src);
    int i = 0;
    for (const cJSON *m = metrics->child; m; m = m->next, i++) {
        char path[64], owner[160];
        snprintf(path, sizeof path, "metrics[%d]", i);
        const cJSON *name = m, *params = NULL;
        rs_sweep sweep = RS_SWEEP_GRID;
        if (cJSON_IsObject(m)) {
            static const char *const known[] = {"name", "params", "sweep", "outputs", NULL};
            RS_TRY(check_keys(m, known, src, path, err));
            RS_TRY(get_sweep(m, src, path, &sweep, err));
            name = cJSON_GetObjectItemCaseSensitive(m, "name");
            params = cJSON_GetObjectItemCaseSensitive(m, "params");
            snprintf(owner, sizeof owner, "%s: %s.name: ", src, path);
        } else {
            snprintf(owner, sizeof owner, "%s: %s: ", src, path);
        }
        RS_CHECK(cJSON_IsString(name), err, "%s: %s: expected a metric name", src, path);
        rs_metric_spec base;
        RS_TRY(rs_metric_spec_init(&base, name->valuestring, owner, err));
        char where[96];
        snprintf(where, sizeof where, "%s.params", path);
        rs_params *sets = NULL;
        int count = 0;
        int rc = rs_params_expand(&base.params, params, sweep, src, where, &sets, &count, err);
        const rs_metric_type *type = base.type;
        rs_metric_spec_free(&base);
        RS_TRY(rc);
        unsigned long long outputs = 0;
        if (cJSON_IsObject(m) && parse_outputs(type, cJSON_GetObjectItemCaseSensitive(m, "outputs"), src, path,
                                               &outputs, err) != 0) {
            rs_param_sets_free(sets, count);
            return -1;
        }
        if (cfg->num_metrics + count > MAX_EXPANDED) {
            rs_param_sets_free(sets, count);
            return rs_fail(err, "%s: %s: more than %d metric entries in the config (after expanding lists)", src, path,
                           MAX_EXPANDED);
        }
        rs_metric_spec *grown = realloc(cfg->metrics, (size_t)(cfg->num_metrics + count) * sizeof *grown);
        if (!grown) {
            rs_param_sets_free(sets, count);
            return rs_fail(err, "out of memory");
        }
        cfg->metrics = grown;
        if (repeated_metric(cfg, type, sets, count, outputs)) {
            rs_param_sets_free(sets, count);
            return rs_fail(err, "%s: %s: metric %s with these parameters is already in the list (its rows would "
                           "repeat)", src, path, type->name);
        }
        for (int c = 0; c < count; c++) {
            rs_metric_spec *spec = &cfg->metrics[cfg->num_metrics++];
            spec->type = type;
            spec->params = sets[c];
            spec->outputs = outputs;
            snprintf(spec->params.owner, sizeof spec->params.owner, "metric %s", type->name);
        }
        free(sets);
    }
    return 0;
}

int rs_config_parse(rs_config *cfg, const char *text, const char *source, rs_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->batch_tokens = 4096;
    cfg->checkpoint_seconds = RS_DEFAULT_CHECKPOINT_SECONDS;
    cfg->source = strdup(source);
    RS_CHECK(cfg->source, err, "out of memory");
    const char *end = NULL;
    cfg->json = cJSON_ParseWithOpts(text, &end, 1);
    if (!cfg->json) {
        int line = 1, col = 1;
        for (const char *p = text; end && p < end && *p; p++) {
            if (*p == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return rs_fail(err, "%s: malformed JSON at line %d, column %d", source, line, col);
    }
    const cJSON *root = cfg->json;
    RS_CHECK(cJSON_IsObject(root), err, "%s: the config must be a JSON object", source);
    char twice[512];
    RS_CHECK(!rs_json_duplicate_key(root, twice, sizeof twice), err,
             "%s: %s: key given twice in one object (which value was meant?)", source, twice);
    static const char *const known[] = {"name",    "description", "traces",        "routers",   "metrics",
                                        "batch_tokens", "output", "threads", "chunk_tokens", "memory_mb",
                                        "skip_nonfinite", "plugins", "reference", "bootstrap", "seeds", "group", "runs_per_pass", "plots",
                                        "checkpoint_seconds", "checkpoint_chunks", "breakdown", "device", NULL};
    RS_TRY(check_keys(root, known, source, "", err));
    /* Plugins first: their routers and metrics must exist before those are read. */
    const cJSON *plugins = cJSON_GetObjectItemCaseSensitive(root, "plugins");
    if (plugins) {
        RS_CHECK(cJSON_IsArray(plugins), err, "%s: plugins: expected a list of shared object paths", source);
        int i = 0;
        for (const cJSON *p = plugins->child; p; p = p->next, i++) {
            RS_CHECK(cJSON_IsString(p) && p->valuestring[0], err, "%s: plugins[%d]: expected a path", source, i);
            if (rs_plugin_load(p->valuestring, err) != 0)
                return rs_fail_context(err, "%s: plugins[%d]", source, i);
        }
    }

    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    RS_CHECK(!name || (cJSON_IsString(name) && name->valuestring[0]), err, "%s: name: expected a non-empty string",
             source);
    RS_CHECK(cJSON_GetObjectItemCaseSensitive(root, "traces"), err, "%s: traces: missing (which traces to route)",
             source);
    RS_CHECK(cJSON_GetObjectItemCaseSensitive(root, "routers"), err, "%s: routers: missing (which routers to run)",
             source);
    RS_TRY(get_string(root, "name", &cfg->name, source, err));
    if (!cfg->name) {
        cfg->name = strdup("experiment");
        RS_CHECK(cfg->name, err, "out of memory");
    }
    RS_TRY(parse_traces(cfg, cJSON_GetObjectItemCaseSensitive(root, "traces"), err));
    RS_TRY(parse_routers(cfg, cJSON_GetObjectItemCaseSensitive(root, "routers"), err));
    RS_TRY(rs_plot_config_check(cJSON_GetObjectItemCaseSensitive(root, "plots"), source, err));
    const cJSON *group = cJSON_GetObjectItemCaseSensitive(root, "group");
    if (group)
        RS_TRY(apply_group(cfg, group, err));
    const cJSON *seeds = cJSON_GetObjectItemCaseSensitive(root, "seeds");
    if (seeds)
        RS_TRY(expand_seeds(cfg, seeds, err));
    const cJSON *bootstrap = cJSON_GetObjectItemCaseSensitive(root, "bootstrap");
    if (bootstrap)
        RS_TRY(parse_bootstrap(cfg, bootstrap, err));
    const cJSON *reference = cJSON_GetObjectItemCaseSensitive(root, "reference");
    if (reference)
        RS_TRY(parse_reference(cfg, reference, err));
    const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    if (metrics) {
        RS_TRY(parse_metrics(cfg, metrics, err));
    } else {
        cJSON *defaults = cJSON_CreateStringArray((const char *const[]){"load", "entropy"}, 2);
        RS_CHECK(defaults, err, "out of memory");
        int rc = parse_metrics(cfg, defaults, err);
        cJSON_Delete(defaults);
        RS_TRY(rc);
    }
    long long v = cfg->batch_tokens;
    RS_TRY(get_int(root, "batch_tokens", 1, 1 << 30, &v, source, err));
    cfg->batch_tokens = (int)v;
    v = 0;
    RS_TRY(get_int(root, "threads", 0, 4096, &v, source, err));
    cfg->threads = (int)v;
    v = 0;
    RS_TRY(get_int(root, "runs_per_pass", 0, 1000000, &v, source, err));
    cfg->runs_per_pass = (int)v;
    v = 0;
    RS_TRY(get_int(root, "chunk_tokens", 0, 1 << 20, &v, source, err));
    cfg->chunk_tokens = v;
    const cJSON *mem = cJSON_GetObjectItemCaseSensitive(root, "memory_mb");
    if (mem) {
        RS_CHECK(cJSON_IsNumber(mem) && mem->valuedouble >= 1 && mem->valuedouble <= 1e7, err,
                 "%s: memory_mb: expected a number in [1, 1e7]", source);
        cfg->memory_mb = mem->valuedouble;
    }
    const cJSON *every = cJSON_GetObjectItemCaseSensitive(root, "checkpoint_seconds");
    if (every) {
        RS_CHECK(cJSON_IsNumber(every) && every->valuedouble >= 0 && every->valuedouble <= 1e9, err,
                 "%s: checkpoint_seconds: expected a number of seconds in [0, 1e9] (0 = no checkpoints by time)",
                 source);
        cfg->checkpoint_seconds = every->valuedouble;
    }
    v = 0;
    RS_TRY(get_int(root, "checkpoint_chunks", 0, 1000000000, &v, source, err));
    cfg->checkpoint_chunks = v;
    const cJSON *skip = cJSON_GetObjectItemCaseSensitive(root, "skip_nonfinite");
    if (skip) {
        RS_CHECK(cJSON_IsBool(skip), err, "%s: skip_nonfinite: expected true or false", source);
        cfg->skip_nonfinite = cJSON_IsTrue(skip);
    }
    const cJSON *device = cJSON_GetObjectItemCaseSensitive(root, "device");
    if (device) {
        RS_CHECK(cJSON_IsString(device) && (strcmp(device->valuestring, "cpu") == 0 ||
                                            strcmp(device->valuestring, "gpu") == 0),
                 err, "%s: device: expected \"cpu\" or \"gpu\"", source);
        cfg->device = strcmp(device->valuestring, "gpu") == 0;
    }
    const cJSON *breakdown = cJSON_GetObjectItemCaseSensitive(root, "breakdown");
    if (breakdown)
        RS_TRY(parse_breakdown(cfg, breakdown, err));
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(root, "description");
    RS_CHECK(!desc || cJSON_IsString(desc), err, "%s: description: expected a string", source);
    RS_TRY(get_string(root, "output", &cfg->output, source, err));
    if (!cfg->output) {
        size_t len = strlen(cfg->name) + 16;
        cfg->output = malloc(len);
        RS_CHECK(cfg->output, err, "out of memory");
        snprintf(cfg->output, len, "results/%s", cfg->name);
    }
    return 0;
}

int rs_config_load(rs_config *cfg, const char *path, rs_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    char *text = read_file(path, err);
    if (!text)
        return -1;
    int rc = rs_config_parse(cfg, text, path, err);
    free(text);
    return rc;
}

void rs_config_free(rs_config *cfg)
{
    for (int i = 0; i < cfg->num_traces; i++) {
        free(cfg->traces[i].path);
        if (cfg->traces[i].generate)
            rs_params_free(&cfg->traces[i].gen);
        rs_import_recipe_free(&cfg->traces[i].imp);
    }
    for (int i = 0; i < cfg->num_routers; i++)
        rs_router_spec_free(&cfg->routers[i]);
    if (cfg->reference_owned)
        rs_router_spec_free(cfg->reference_owned);
    free(cfg->reference_owned);
    free(cfg->reference_trace);
    for (int i = 0; i < cfg->num_metrics; i++)
        rs_metric_spec_free(&cfg->metrics[i]);
    free(cfg->traces);
    free(cfg->routers);
    free(cfg->metrics);
    free(cfg->name);
    free(cfg->output);
    free(cfg->source);
    cJSON_Delete(cfg->json);
    memset(cfg, 0, sizeof *cfg);
}
