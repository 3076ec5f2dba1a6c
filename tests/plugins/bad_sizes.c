/* A plugin with the right ABI version but an rs_decisions of another size,
 * as if built against a header edited without a version bump: loading it
 * must fail with a message naming the structure. */
#include "routesim/plugin.h"

typedef struct grown_decisions {
    rs_decisions decisions;
    int added_later;
} grown_decisions;

/* RS_PLUGIN_ABI records sizeof(grown_decisions) under the name rs_decisions. */
#define rs_decisions grown_decisions
RS_PLUGIN_ABI;

int routesim_register(rs_error *err) { return rs_fail(err, "must not be called"); }
