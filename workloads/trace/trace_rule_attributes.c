/* The root attributes that describe the model's own routing rule: top_k,
 * scoring, norm_topk and, for grouped routing (DeepSeek-V2/V3), n_group,
 * topk_group and routed_scaling_factor. The `native` router runs what they
 * say, so each is checked here, where the file is named. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/trace/h5util.h"
#include "workloads/trace/trace_internal.h"

static int read_int_in(hid_t root, const char *f, const char *name, long long lo, long long hi, int *out,
                       rs_error *err)
{
    long long value = 0;
    int rc = rs_h5_attr_int(root, name, &value, f, "root", err);
    if (rc <= 0)
        return rc;
    RS_CHECK(value >= lo && value <= hi, err, "%s: root attribute '%s' = %lld must be in [%lld, %lld]", f, name,
             value, lo, hi);
    *out = (int)value;
    return 1;
}

static int read_grouping(rs_trace *tr, rs_error *err)
{
    const char *f = tr->path;
    const int E = tr->info.num_experts;
    int rc_groups, rc_kept;
    tr->info.n_group = tr->info.topk_group = 0;
    if ((rc_groups = read_int_in(tr->file, f, "n_group", 1, E, &tr->info.n_group, err)) < 0 ||
        (rc_kept = read_int_in(tr->file, f, "topk_group", 1, E, &tr->info.topk_group, err)) < 0)
        return -1;
    RS_CHECK(rc_groups == rc_kept, err, "%s: root attribute '%s' missing (n_group and topk_group go together)", f,
             rc_groups ? "topk_group" : "n_group");
    if (rc_groups) {
        RS_CHECK(E % tr->info.n_group == 0, err,
                 "%s: root attribute 'n_group' = %d must divide num_experts = %d (groups of consecutive experts)", f,
                 tr->info.n_group, E);
        RS_CHECK(tr->info.topk_group <= tr->info.n_group, err,
                 "%s: root attribute 'topk_group' = %d exceeds n_group = %d", f, tr->info.topk_group,
                 tr->info.n_group);
    }
    double scale = 0;
    int rc = rs_h5_attr_double(tr->file, "routed_scaling_factor", &scale, f, "root", err);
    if (rc < 0)
        return -1;
    RS_CHECK(rc == 0 || (isfinite(scale) && scale > 0), err,
             "%s: root attribute 'routed_scaling_factor' = %g must be finite and > 0", f, scale);
    tr->info.routed_scaling_factor = rc ? scale : 0;
    return 0;
}

int rs_trace_read_rule_attributes(rs_trace *tr, rs_error *err)
{
    const char *f = tr->path;
    if (rs_h5_attr_string(tr->file, "scoring", &tr->scoring, f, "root", err) < 0)
        return -1;
    if (tr->scoring && strcmp(tr->scoring, "softmax") != 0 && strcmp(tr->scoring, "sigmoid") != 0 &&
        strcmp(tr->scoring, "sqrt_softplus") != 0)
        return rs_fail(err, "%s: root attribute 'scoring' is \"%s\", must be softmax, sigmoid or sqrt_softplus", f,
                       tr->scoring);
    tr->info.top_k = 0;
    if (read_int_in(tr->file, f, "top_k", 1, tr->info.num_experts, &tr->info.top_k, err) < 0)
        return -1;
    tr->info.norm_topk = -1;
    if (read_int_in(tr->file, f, "norm_topk", 0, 1, &tr->info.norm_topk, err) < 0)
        return -1;
    return read_grouping(tr, err);
}
