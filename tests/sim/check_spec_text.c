/* Router specs print as text that parses back ("name:k=v,k=v" in results,
 * the run store and decisions files), so text values that would split
 * differently are refused where they enter. */
#include <check.h>
#include <string.h>

#include "sim/config/config.h"
#include "sim/config/spec.h"

START_TEST(every_router_prints_a_spec_that_parses_back)
{
    for (int i = 0; i < rs_router_count(); i++) {
        const rs_router_type *type = rs_router_at(i);
        rs_router_spec spec, again;
        rs_error err = {{0}};
        ck_assert_msg(rs_router_spec_parse(&spec, type->name, &err) == 0, "%s: %s", type->name, err.msg);
        char printed[4096], reprinted[4096];
        rs_router_spec_string(&spec, printed, sizeof printed);
        ck_assert_msg(rs_router_spec_parse(&again, printed, &err) == 0, "%s: %s", printed, err.msg);
        rs_router_spec_string(&again, reprinted, sizeof reprinted);
        ck_assert_str_eq(printed, reprinted);
        rs_router_spec_free(&again);
        rs_router_spec_free(&spec);
    }
}
END_TEST

START_TEST(config_text_values_with_separators_are_refused)
{
    rs_config cfg;
    rs_error err = {{0}};
    const char *comma = "{\"traces\": [\"q.h5\"], \"routers\": [{\"name\": \"win_rate\", \"params\": "
                        "{\"strong\": \"gpt-4,0613\"}}]}";
    ck_assert_int_eq(rs_config_parse(&cfg, comma, "c.json", &err), -1);
    ck_assert_str_eq(err.msg, "c.json: routers[0].params.strong: 'gpt-4,0613': a text value cannot hold ',' or ';' "
                              "(they separate parameters)");
    rs_config_free(&cfg);
    const char *semicolon = "{\"traces\": [\"q.h5\"], \"routers\": [\"oracle\"], \"metrics\": [{\"name\": \"outcome\", "
                            "\"params\": {\"weak\": [\"a\", \"b;c\"]}}]}";
    ck_assert_int_eq(rs_config_parse(&cfg, semicolon, "c.json", &err), -1);
    ck_assert_str_eq(err.msg, "c.json: metrics[0].params.weak: 'b;c': a text value cannot hold ',' or ';' "
                              "(they separate parameters)");
    rs_config_free(&cfg);
    const char *plain = "{\"traces\": [\"q.h5\"], \"routers\": [{\"name\": \"win_rate\", \"params\": "
                        "{\"strong\": \"gpt-4-0613\"}}]}";
    ck_assert_msg(rs_config_parse(&cfg, plain, "c.json", &err) == 0, "%s", err.msg);
    rs_config_free(&cfg);
}
END_TEST

START_TEST(spec_text_values_with_semicolons_are_refused)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_router_spec_parse(&spec, "win_rate:strong=a;b", &err), -1);
    ck_assert_str_eq(err.msg, "router spec 'win_rate:strong=a;b': strong: a text value cannot hold ';' (it separates "
                              "parameters in results)");
    ck_assert_int_eq(rs_router_spec_parse(&spec, "win_rate:strong=a|b", &err), 0);
    rs_router_spec_free(&spec);
}
END_TEST

Suite *spec_text_suite(void)
{
    Suite *s = suite_create("spec_text");
    TCase *tc = tcase_create("spec_text");
    tcase_add_test(tc, every_router_prints_a_spec_that_parses_back);
    tcase_add_test(tc, config_text_values_with_separators_are_refused);
    tcase_add_test(tc, spec_text_values_with_semicolons_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
