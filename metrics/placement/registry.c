/* The placement policy table, from registry.def. */
#include <string.h>

#include "metrics/placement/placement.h"

#define RS_PLACEMENT_POLICY(id) extern const rs_placement_policy *const rs_placement_policy_##id;
#include "metrics/placement/registry.def"
#undef RS_PLACEMENT_POLICY

static const rs_placement_policy *const *const builtin[] = {
#define RS_PLACEMENT_POLICY(id) &rs_placement_policy_##id,
#include "metrics/placement/registry.def"
#undef RS_PLACEMENT_POLICY
};

enum { NUM_BUILTIN = sizeof builtin / sizeof builtin[0] };

int rs_placement_policy_count(void) { return NUM_BUILTIN; }

const rs_placement_policy *rs_placement_policy_at(int index)
{
    return index >= 0 && index < NUM_BUILTIN ? *builtin[index] : NULL;
}

const rs_placement_policy *rs_placement_policy_find(const char *name)
{
    for (int i = 0; i < NUM_BUILTIN; i++)
        if (strcmp((*builtin[i])->name, name) == 0)
            return *builtin[i];
    return NULL;
}
