/* Fuzz target: experiment configs (rs_config_parse): JSON with router and
 * metric entries, parameter sweeps (grid and zip), seeds, references,
 * bootstrap, trace generation and import recipes, plots.
 *
 * What must hold: a config refused gets one line; a config accepted has
 * routers, each with a label and a spec string that parses back.
 * Configs naming plugins are skipped: loading them runs their code. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "sim/config/config.h"
#include "tests/fuzz/harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int names_plugins(const char *text)
{
    cJSON *root = cJSON_Parse(text);
    int found = 0;
    for (const cJSON *v = cJSON_IsObject(root) ? root->child : NULL; v && !found; v = v->next)
        found = v->string && strcmp(v->string, "plugins") == 0;
    cJSON_Delete(root);
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = rs_fuzz_string(data, size);
    if (names_plugins(text)) {
        free(text);
        return 0;
    }
    rs_config cfg;
    rs_error err = {{0}};
    int rc = rs_config_parse(&cfg, text, "fuzz.json", &err);
    rs_fuzz_note(rc ? "refused" : "accepted", rc ? err.msg : "");
    if (rc != 0) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            rs_fuzz_fail("config refused without a one-line message: '%s'", err.msg);
    } else {
        if (cfg.num_routers < 1 || cfg.num_traces < 1 || !cfg.output)
            rs_fuzz_fail("config accepted with %d routers, %d traces", cfg.num_routers, cfg.num_traces);
        for (int r = 0; r < cfg.num_routers; r++) {
            const rs_router_spec *spec = &cfg.routers[r];
            if (!spec->label[0])
                rs_fuzz_fail("routers: run %d has an empty label", r);
            char printed[4096];
            rs_router_spec_string(spec, printed, sizeof printed);
            rs_router_spec again;
            if (rs_router_spec_parse(&again, printed, &err) != 0)
                rs_fuzz_fail("routers: run %d prints as '%s', which does not parse: %s", r, printed, err.msg);
            rs_router_spec_free(&again);
        }
    }
    rs_config_free(&cfg);
    free(text);
    return 0;
}
