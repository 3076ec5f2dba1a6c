/* Error messages: one line whatever the user's text holds. Expected
 * strings are written out by hand. */
#include <check.h>
#include <string.h>

#include "routesim/error.h"

START_TEST(control_characters_are_escaped)
{
    rs_error err = {{0}};
    ck_assert_int_eq(rs_fail(&err, "c.json: unknown key '%s'", "a\nb\tc\rd\x01"), -1);
    ck_assert_str_eq(err.msg, "c.json: unknown key 'a\\nb\\tc\\rd\\x01'");
    ck_assert_int_eq(rs_fail(&err, "plain '%s'", "text"), -1);
    ck_assert_str_eq(err.msg, "plain 'text'");
}
END_TEST

START_TEST(context_is_escaped_too)
{
    rs_error err = {{0}};
    rs_fail(&err, "bad value");
    ck_assert_int_eq(rs_fail_context(&err, "routers[%d] '%s'", 2, "x\ny"), -1);
    ck_assert_str_eq(err.msg, "routers[2] 'x\\ny': bad value");
}
END_TEST

START_TEST(escaping_stays_within_the_buffer)
{
    char text[RS_ERROR_MSG_MAX];
    memset(text, '\n', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    rs_error err = {{0}};
    rs_fail(&err, "%s", text);
    size_t len = strlen(err.msg);
    ck_assert_uint_lt(len, RS_ERROR_MSG_MAX);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    ck_assert_uint_eq(len % 2, 0); /* whole escapes only: "\n" is never cut in half */
}
END_TEST

Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, control_characters_are_escaped);
    tcase_add_test(tc, context_is_escaped_too);
    tcase_add_test(tc, escaping_stays_within_the_buffer);
    suite_add_tcase(s, tc);
    return s;
}
