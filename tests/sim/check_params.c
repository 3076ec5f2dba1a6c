/* Parameters, router specs and list expansion. Expected values are written
 * out by hand from the parameter tables. */
#include <check.h>
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "sim/config/config.h"
#include "sim/config/spec.h"

static const rs_param_def defs[] = {
    {"k", RS_PARAM_INT, "2", 1, 64, NULL, ""},
    {"alpha", RS_PARAM_FLOAT, "0.5", 0, 1, NULL, ""},
    {"renorm", RS_PARAM_BOOL, "1", 0, 1, NULL, ""},
    {"policy", RS_PARAM_ENUM, "lru", 0, 0, "lru|lfu|belady", ""},
    {"path", RS_PARAM_STRING, NULL, 0, 0, NULL, ""},
};
enum { NDEFS = sizeof defs / sizeof defs[0] };

START_TEST(defaults_and_typed_access)
{
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, defs, NDEFS, "test", &err), 0);
    ck_assert_int_eq(rs_param_int(&p, "k"), 2);
    ck_assert_double_eq(rs_param_float(&p, "alpha"), 0.5);
    ck_assert_int_eq(rs_param_bool(&p, "renorm"), 1);
    ck_assert_str_eq(rs_param_str(&p, "policy"), "lru");
    ck_assert_ptr_null(rs_param_str(&p, "path"));
    ck_assert_int_eq(rs_param_is_set(&p, "path"), 0);
    rs_params_free(&p);
}
END_TEST

START_TEST(set_validates_kind_and_range)
{
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, defs, NDEFS, "router x", &err), 0);
    ck_assert_int_eq(rs_params_set(&p, "k", "8", &err), 0);
    ck_assert_int_eq(rs_param_int(&p, "k"), 8);
    ck_assert_int_eq(rs_params_set(&p, "k", "2.0", &err), 0); /* JSON-style integral float */
    ck_assert_int_eq(rs_params_set(&p, "k", "65", &err), -1);
    ck_assert_str_eq(err.msg, "router x: parameter k=65 out of range [1, 64]");
    ck_assert_int_eq(rs_params_set(&p, "k", "two", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "expected an integer"));
    ck_assert_int_eq(rs_params_set(&p, "k", "2.5", &err), -1);
    ck_assert_int_eq(rs_params_set(&p, "alpha", "1.5", &err), -1);
    ck_assert_int_eq(rs_params_set(&p, "alpha", "nan", &err), -1);
    ck_assert_int_eq(rs_params_set(&p, "renorm", "false", &err), 0);
    ck_assert_int_eq(rs_param_bool(&p, "renorm"), 0);
    ck_assert_int_eq(rs_params_set(&p, "renorm", "maybe", &err), -1);
    ck_assert_int_eq(rs_params_set(&p, "policy", "belady", &err), 0);
    ck_assert_str_eq(rs_param_str(&p, "policy"), "belady");
    ck_assert_int_eq(rs_params_set(&p, "policy", "mru", &err), -1);
    ck_assert_str_eq(err.msg, "router x: parameter policy: 'mru' is not one of lru|lfu|belady");
    ck_assert_int_eq(rs_params_set(&p, "nope", "1", &err), -1);
    ck_assert_str_eq(err.msg, "router x: unknown parameter 'nope' (known: k, alpha, renorm, policy, path)");
    rs_params_free(&p);
}
END_TEST

START_TEST(format_is_sorted_and_canonical)
{
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, defs, NDEFS, "t", &err), 0);
    ck_assert_int_eq(rs_params_parse_list(&p, "k=4,alpha=0.25", &err), 0);
    char buf[256];
    rs_params_format(&p, ~0ULL, 0, ";", buf, sizeof buf);
    ck_assert_str_eq(buf, "alpha=0.25;k=4;policy=lru;renorm=1"); /* unset path omitted */
    rs_params_format(&p, ~0ULL, 1, ",", buf, sizeof buf);
    ck_assert_str_eq(buf, "alpha=0.25,k=4");
    rs_params_format(&p, 1ULL << 3, 0, ";", buf, sizeof buf);
    ck_assert_str_eq(buf, "policy=lru");
    ck_assert_int_eq(rs_params_parse_list(&p, "k", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "expected key=value"));
    rs_params_free(&p);
}
END_TEST

START_TEST(router_spec_parse)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_router_spec_parse(&spec, "topk:k=3,renorm=0", &err), 0);
    ck_assert_str_eq(spec.type->name, "topk");
    ck_assert_int_eq(rs_param_int(&spec.params, "k"), 3);
    ck_assert_int_eq(rs_param_bool(&spec.params, "renorm"), 0);
    ck_assert_str_eq(spec.label, "topk:k=3,renorm=0");
    char buf[256];
    rs_router_spec_string(&spec, buf, sizeof buf);
    ck_assert_str_eq(buf, "topk:k=3,renorm=0,scale=1");
    rs_router_spec_free(&spec);

    ck_assert_int_eq(rs_router_spec_parse(&spec, "topk", &err), 0);
    ck_assert_str_eq(spec.label, "topk");
    rs_router_spec_free(&spec);

    ck_assert_int_eq(rs_router_spec_parse(&spec, "nosuch:k=1", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown router 'nosuch' (known: topk"));
    ck_assert_int_eq(rs_router_spec_parse(&spec, "topk:k=0", &err), -1);
    ck_assert_str_eq(err.msg, "router topk: parameter k=0 out of range [1, 1024]");
    ck_assert_int_eq(rs_router_spec_parse(&spec, "topk:z=1", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown parameter 'z'"));
    /* A parameter given twice would run with the last value: refused. */
    ck_assert_int_eq(rs_router_spec_parse(&spec, "topk:k=2,renorm=0,k=3", &err), -1);
    ck_assert_str_eq(err.msg, "router topk: parameter k given twice (k=2, then k=3)");
    ck_assert_int_eq(rs_router_spec_parse(&spec, "topk:k=2,k=2", &err), -1);
}
END_TEST

START_TEST(expand_lists_cartesian_last_fastest)
{
    rs_params base, *sets = NULL;
    rs_error err = {{0}};
    int count = 0;
    ck_assert_int_eq(rs_params_init(&base, defs, NDEFS, "t", &err), 0);
    cJSON *obj = cJSON_Parse("{\"policy\": [\"lru\", \"belady\"], \"alpha\": 0.125, \"k\": [1, 2, 4]}");
    ck_assert_int_eq(rs_params_expand(&base, obj, RS_SWEEP_GRID, "c.json", "metrics[0].params", &sets, &count, &err), 0);
    ck_assert_int_eq(count, 6);
    const char *want[] = {"alpha=0.125;k=1;policy=lru",    "alpha=0.125;k=2;policy=lru",
                          "alpha=0.125;k=4;policy=lru",    "alpha=0.125;k=1;policy=belady",
                          "alpha=0.125;k=2;policy=belady", "alpha=0.125;k=4;policy=belady"};
    for (int i = 0; i < count; i++) {
        char buf[256];
        rs_params_format(&sets[i], ~0ULL, 1, ";", buf, sizeof buf);
        ck_assert_str_eq(buf, want[i]);
        rs_params_free(&sets[i]);
    }
    free(sets);
    cJSON_Delete(obj);

    obj = cJSON_Parse("{\"k\": [1, 99]}");
    ck_assert_int_eq(rs_params_expand(&base, obj, RS_SWEEP_GRID, "c.json", "routers[2].params", &sets, &count, &err), -1);
    ck_assert_str_eq(err.msg, "c.json: routers[2].params: parameter k=99 out of range [1, 64]");
    cJSON_Delete(obj);
    obj = cJSON_Parse("{\"k\": []}");
    ck_assert_int_eq(rs_params_expand(&base, obj, RS_SWEEP_GRID, "c.json", "routers[0].params", &sets, &count, &err), -1);
    ck_assert_str_eq(err.msg, "c.json: routers[0].params.k: empty list");
    cJSON_Delete(obj);
    obj = cJSON_Parse("{\"k\": {\"a\": 1}}");
    ck_assert_int_eq(rs_params_expand(&base, obj, RS_SWEEP_GRID, "c.json", "routers[0].params", &sets, &count, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "routers[0].params.k: expected a number"));
    cJSON_Delete(obj);
    rs_params_free(&base);
}
END_TEST

Suite *params_suite(void)
{
    Suite *s = suite_create("params");
    TCase *tc = tcase_create("params");
    tcase_add_test(tc, defaults_and_typed_access);
    tcase_add_test(tc, set_validates_kind_and_range);
    tcase_add_test(tc, format_is_sorted_and_canonical);
    tcase_add_test(tc, router_spec_parse);
    tcase_add_test(tc, expand_lists_cartesian_last_fastest);
    suite_add_tcase(s, tc);
    return s;
}
