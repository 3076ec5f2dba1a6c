/* The figure kind table, from registry.def. */
#include <string.h>

#include "plots/plot_internal.h"

#define RS_PLOT_KIND(id) extern const rs_plot_kind *const rs_plot_kind_##id;
#include "plots/kinds/registry.def"
#undef RS_PLOT_KIND

static const rs_plot_kind *const *const kinds[RS_PLOT_NUM_KINDS] = {
#define RS_PLOT_KIND(id) [RS_PLOT_KIND_##id] = &rs_plot_kind_##id,
#include "plots/kinds/registry.def"
#undef RS_PLOT_KIND
};

/* Requests hold the kinds they ask for as bits of an unsigned. */
_Static_assert(RS_PLOT_NUM_KINDS <= 32, "at most 32 figure kinds");

const rs_plot_kind *rs_plot_kind_at(int kind) {
  return kind >= 0 && kind < RS_PLOT_NUM_KINDS ? *kinds[kind] : NULL;
}
int rs_plot_kind_count(void) { return RS_PLOT_NUM_KINDS; }
const char *rs_plot_kind_name(int kind) {
  return rs_plot_kind_at(kind) ? rs_plot_kind_at(kind)->name : NULL;
}
const char *rs_plot_kind_needs(int kind) {
  return rs_plot_kind_at(kind) ? rs_plot_kind_at(kind)->needs : NULL;
}

int rs_plot_kind_find(const char *name) {
  for (int k = 0; k < RS_PLOT_NUM_KINDS; k++)
    if (strcmp((*kinds[k])->name, name) == 0)
      return k;
  return -1;
}

void rs_plot_kind_list(char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (int k = 0; k < RS_PLOT_NUM_KINDS; k++)
    used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s",
                             k ? ", " : "", (*kinds[k])->name);
}
