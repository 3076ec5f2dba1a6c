/* The text of a number in labels, keys and results files: the shortest
 * decimal that reads back as the same double, laid out as Python's repr
 * (less ".0"). Expected strings are what Python 3's repr prints for the same
 * double (repr(1/3) == '0.3333333333333333'), checked by hand. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/number_text.h"

static void assert_text(double v, const char *want)
{
    char buf[RS_NUMBER_TEXT_MAX];
    int len = rs_number_text(v, buf, sizeof buf);
    ck_assert_str_eq(buf, want);
    ck_assert_int_eq(len, (int)strlen(want));
}

START_TEST(hand_picked_values)
{
    assert_text(10, "10"); /* %.1g would say 1e+01 */
    assert_text(11, "11");
    assert_text(100000, "100000");
    assert_text(0.001, "0.001");
    assert_text(1e-8, "1e-08");
    assert_text(0.1, "0.1");
    assert_text(2.5, "2.5");
    assert_text(-125, "-125");
    assert_text(123456.789, "123456.789");
    assert_text(1.0 / 3, "0.3333333333333333");
    assert_text(0.1 + 0.2, "0.30000000000000004");
    assert_text(0.23942499999999994, "0.23942499999999994"); /* already shortest */
    assert_text(0.081000000000000072, "0.08100000000000007"); /* %.17g's text, one digit shorter */
    assert_text(1e20, "1e+20");
    assert_text(1e22, "1e+22");
    assert_text(1e300, "1e+300");
    assert_text(-1.5e-7, "-1.5e-07");
    assert_text(0x1p-20, "9.5367431640625e-07");
    assert_text(0x1p63, "9.223372036854776e+18");
    assert_text(DBL_MAX, "1.7976931348623157e+308");
    assert_text(DBL_MIN, "2.2250738585072014e-308");
    assert_text(-DBL_MIN, "-2.2250738585072014e-308");
    assert_text(4.9406564584124654e-324, "5e-324"); /* the smallest subnormal */
}
END_TEST

START_TEST(layout_switches_where_python_repr_does)
{
    assert_text(0.0001, "0.0001");
    assert_text(0.000123, "0.000123");
    assert_text(0.00001, "1e-05");
    assert_text(1e15, "1000000000000000");
    assert_text(1e16, "1e+16");
    assert_text(9007199254740992.0, "9007199254740992"); /* 2^53 */
    assert_text(9007199254740991.0, "9007199254740991");
}
END_TEST

START_TEST(zero_nan_and_infinities)
{
    assert_text(0.0, "0");
    assert_text(-0.0, "-0");
    assert_text(NAN, "nan");
    assert_text(INFINITY, "inf");
    assert_text(-INFINITY, "-inf");
}
END_TEST

/* 2^-1017: the nearest 16-digit decimal (7.120236347223044e-307) lies below
 * it, where the gap to the next double down is half the one up, and does not
 * read back; 7.120236347223045e-307 above it does (Python prints that).
 * 2^-645: the nearest 16-digit decimal does not read back, the nearest
 * 15-digit one does (6.84940421565126e-195, as Python prints it). */
START_TEST(power_of_two_takes_the_shorter_text_above)
{
    assert_text(ldexp(1, -1017), "7.120236347223045e-307");
    char buf[RS_NUMBER_TEXT_MAX];
    snprintf(buf, sizeof buf, "%.15e", ldexp(1, -1017));
    ck_assert_str_eq(buf, "7.120236347223044e-307");
    ck_assert(strtod(buf, NULL) != ldexp(1, -1017));
    assert_text(ldexp(1, -645), "6.84940421565126e-195");
    snprintf(buf, sizeof buf, "%.15e", ldexp(1, -645));
    ck_assert_str_eq(buf, "6.849404215651259e-195");
    ck_assert(strtod(buf, NULL) != ldexp(1, -645));
}
END_TEST

/* Every power of two, both signs, reads back from its text. */
START_TEST(every_power_of_two_reads_back)
{
    for (int e = -1074; e <= 1023; e++)
        for (int sign = -1; sign <= 1; sign += 2) {
            double v = sign * ldexp(1, e);
            char text[RS_NUMBER_TEXT_MAX];
            rs_number_text(v, text, sizeof text);
            ck_assert_msg(strtod(text, NULL) == v, "2^%d: %s", e, text);
        }
}
END_TEST

START_TEST(truncates_like_snprintf)
{
    char buf[4];
    ck_assert_int_eq(rs_number_text(0.125, buf, sizeof buf), 5);
    ck_assert_str_eq(buf, "0.1");
    ck_assert_int_eq(rs_number_text(1e-8, NULL, 0), 5);
}
END_TEST

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Significant digits of a text ("-1.25e+02" -> 3, "0.0025" -> 2, "100" -> 1). */
static int significant_digits(const char *text)
{
    int count = 0, trailing_zeros = 0, started = 0;
    for (const char *c = text; *c && *c != 'e'; c++) {
        if (*c < '0' || *c > '9')
            continue;
        if (*c != '0')
            started = 1;
        if (!started)
            continue;
        count++;
        trailing_zeros = *c == '0' ? trailing_zeros + 1 : 0;
    }
    return count - trailing_zeros;
}

/* Any double (random bit patterns: every exponent, subnormals) reads back
 * bit for bit, and no text with one significant digit fewer does. */
START_TEST(random_doubles_read_back_from_the_shortest_text)
{
    uint64_t state = 15;
    int checked = 0;
    while (checked < 20000) {
        uint64_t bits = splitmix(&state);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v) || v == 0)
            continue;
        checked++;
        char text[RS_NUMBER_TEXT_MAX];
        rs_number_text(v, text, sizeof text);
        double back = strtod(text, NULL);
        ck_assert_msg(memcmp(&back, &v, sizeof v) == 0, "%s does not read back as %a", text, v);
        int digits = significant_digits(text);
        ck_assert_int_le(digits, 17);
        if (digits > 1) {
            /* both neighbours at one digit fewer: the nearest and the next one up or down */
            char shorter[RS_NUMBER_TEXT_MAX];
            snprintf(shorter, sizeof shorter, "%.*e", digits - 2, v);
            ck_assert_msg(strtod(shorter, NULL) != v, "%s reads back as %s does", shorter, text);
        }
        double magnitude = fabs(v);
        ck_assert_int_eq(strchr(text, 'e') != NULL, magnitude < 1e-4 || magnitude >= 1e16);
    }
}
END_TEST

/* Integers up to 2^53 are exact doubles: their text is the integer's own. */
START_TEST(integers_print_in_full)
{
    uint64_t state = 53;
    for (int i = 0; i < 20000; i++) {
        long long n = (long long)(splitmix(&state) >> (11 + i % 53));
        if (i % 2)
            n = -n;
        char want[32], text[RS_NUMBER_TEXT_MAX];
        snprintf(want, sizeof want, "%lld", n);
        rs_number_text((double)n, text, sizeof text);
        ck_assert_str_eq(text, n == 0 ? "0" : want);
    }
}
END_TEST

Suite *number_text_suite(void)
{
    Suite *s = suite_create("number_text");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hand_picked_values);
    tcase_add_test(tc, layout_switches_where_python_repr_does);
    tcase_add_test(tc, zero_nan_and_infinities);
    tcase_add_test(tc, power_of_two_takes_the_shorter_text_above);
    tcase_add_test(tc, every_power_of_two_reads_back);
    tcase_add_test(tc, truncates_like_snprintf);
    tcase_add_test(tc, random_doubles_read_back_from_the_shortest_text);
    tcase_add_test(tc, integers_print_in_full);
    suite_add_tcase(s, tc);
    return s;
}
