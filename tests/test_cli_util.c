/* The CLI's shared helpers: JSON output that stays valid JSON and option
 * values parsed strictly. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tools/cli/cli.h"

static char *capture_num(double v, int decimals)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    spw_cli_json_num(f, v, decimals);
    fclose(f);
    return buf;
}

static void json_num_finite(void **state)
{
    (void)state;
    char *s = capture_num(0.25, 4);
    assert_string_equal(s, "0.2500");
    free(s);
    s = capture_num(-3.0, 1);
    assert_string_equal(s, "-3.0");
    free(s);
}

static void json_num_non_finite_is_null(void **state)
{
    (void)state;
    const double bad[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *s = capture_num(bad[i], 3);
        assert_string_equal(s, "null");
        free(s);
    }
}

static void json_str_escapes(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    spw_cli_json_str(f, "a\"b\\c\nd");
    fclose(f);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\u000ad\"");
    free(buf);
}

static void parse_int_strict(void **state)
{
    (void)state;
    long v = 0;
    assert_true(spw_cli_parse_int("42", 0, 100, &v));
    assert_int_equal(v, 42);
    assert_false(spw_cli_parse_int("101", 0, 100, &v));
    assert_false(spw_cli_parse_int("-1", 0, 100, &v));
    assert_false(spw_cli_parse_int("4x", 0, 100, &v));
    assert_false(spw_cli_parse_int("", 0, 100, &v));
    assert_false(spw_cli_parse_int("99999999999999999999", 0, 100, &v));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_num_finite),
        cmocka_unit_test(json_num_non_finite_is_null),
        cmocka_unit_test(json_str_escapes),
        cmocka_unit_test(parse_int_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
