#include "sim/config/breakdown.h"

#include <stdio.h>
#include <string.h>

static const char *const dim_names[RS_BY_COUNT] = {"domain", "phase"};

const char *rs_breakdown_dim_name(rs_breakdown_dim dim)
{
    return dim >= 0 && dim < RS_BY_COUNT ? dim_names[dim] : "?";
}

int rs_breakdown_parse(const char *list, unsigned *dims, const char *where, rs_error *err)
{
    *dims = 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int d = 0; d < RS_BY_COUNT && found < 0; d++)
            if (len == strlen(dim_names[d]) && strncmp(p, dim_names[d], len) == 0)
                found = d;
        if (found < 0)
            return rs_fail(err, "%s: unknown breakdown '%.*s' (known: domain, phase)", where, (int)len, p);
        *dims |= 1u << found;
        p += len;
        if (*p == ',')
            p++;
    }
    RS_CHECK(*dims, err, "%s: expected a breakdown, e.g. domain or domain,phase", where);
    return 0;
}

void rs_breakdown_format(unsigned dims, char *buf, size_t size)
{
    size_t used = 0;
    if (size)
        buf[0] = '\0';
    for (int d = 0; d < RS_BY_COUNT; d++)
        if (dims & (1u << d)) {
            int w = snprintf(buf + used, used < size ? size - used : 0, "%s%s", used ? "," : "", dim_names[d]);
            used += w > 0 ? (size_t)w : 0;
        }
}
