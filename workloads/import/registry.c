/* The importer table, from registry.def. */
#include <stdio.h>
#include <string.h>

#include "workloads/import/importer.h"

#define RS_IMPORTER(id) extern const rs_importer_type *const rs_importer_##id;
#include "workloads/import/registry.def"
#undef RS_IMPORTER

static const rs_importer_type *const *const table[] = {
#define RS_IMPORTER(id) &rs_importer_##id,
#include "workloads/import/registry.def"
#undef RS_IMPORTER
};

enum { NUM_IMPORTERS = sizeof table / sizeof table[0] };

int rs_importer_count(void) { return NUM_IMPORTERS; }

const rs_importer_type *rs_importer_at(int index)
{
    return index >= 0 && index < NUM_IMPORTERS ? *table[index] : NULL;
}

const rs_importer_type *rs_importer_find(const char *name)
{
    for (int i = 0; i < NUM_IMPORTERS; i++)
        if (strcmp((*table[i])->name, name) == 0)
            return *table[i];
    return NULL;
}

void rs_importer_names(unsigned flags, const char *quote, const char *last, char *buf, size_t size)
{
    int count = 0, listed = 0;
    for (int i = 0; i < NUM_IMPORTERS; i++)
        count += ((*table[i])->flags & flags) == flags;
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < NUM_IMPORTERS && used < size; i++) {
        if (((*table[i])->flags & flags) != flags)
            continue;
        const char *sep = listed == 0 ? "" : listed == count - 1 ? last : ", ";
        used += (size_t)snprintf(buf + used, size - used, "%s%s%s%s", sep, quote, (*table[i])->name, quote);
        listed++;
    }
}

int rs_importer_options_init(const rs_importer_type *type, rs_params *options, const char *owner, rs_error *err)
{
    return rs_params_init(options, type->options, type->num_options, owner, err);
}
