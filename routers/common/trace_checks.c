#include "routers/common/trace_checks.h"

int rs_check_experts_at_most(const char *router, int most, const rs_trace_info *tr, rs_error *err)
{
    RS_CHECK(tr->num_experts <= most, err, "router %s: num_experts=%d of %s exceeds the %d it supports", router,
             tr->num_experts, tr->path, most);
    return 0;
}

int rs_check_param_experts(const char *router, const char *param, int value, const rs_trace_info *tr, rs_error *err)
{
    RS_CHECK(value <= tr->num_experts, err, "router %s: parameter %s=%d exceeds num_experts=%d of %s", router, param,
             value, tr->num_experts, tr->path);
    return 0;
}
