/* The CLI's shared helpers: JSON output that stays valid JSON and option
 * values parsed strictly. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- spw_cli_parse ------------------------------------------------------ */

static int usage_calls;
static void quiet_usage(FILE *f)
{
    (void)f;
    usage_calls++;
}

typedef struct parsed {
    bool flag;
    const char *str;
    long lng;
    int num, calls;
    const char *last;
} parsed;

static int take(int id, const char *value, void *ctx)
{
    parsed *p = ctx;
    p->calls += id;
    p->last = value;
    return value && !strcmp(value, "stop") ? 1 : -1;
}

static int run_parse(parsed *p, int *operands, int argc, char **argv)
{
    const spw_cli_opt opts[] = {
        SPW_CLI_OPT_FLAG("flag", &p->flag),
        SPW_CLI_OPT_STR("str", &p->str),
        SPW_CLI_OPT_LONG("lng", &p->lng, -5, 5),
        {.name = "num", .kind = SPW_CLI_INT, .dst = &p->num, .min = 1, .max = 9, .short_name = 'n'},
        SPW_CLI_OPT_FN("fn", take, 10, true),
        SPW_CLI_OPT_FN("bare", take, 100, false),
        SPW_CLI_OPT_END,
    };
    memset(p, 0, sizeof(*p));
    return spw_cli_parse("test", argc, argv, opts, p, quiet_usage, operands);
}

static void parse_table(void **state)
{
    (void)state;
    parsed p;
    int first = -1;
    char *ok[] = {"cmd", "--flag", "a", "--str",  "s", "--lng=-5", "-n",
                  "9",   "--fn",   "v", "--bare", "b", NULL};
    usage_calls = 0;
    assert_int_equal(run_parse(&p, &first, 12, ok), -1);
    assert_true(p.flag);
    assert_string_equal(p.str, "s");
    assert_int_equal(p.lng, -5);
    assert_int_equal(p.num, 9);
    assert_int_equal(p.calls, 110);
    assert_null(p.last); /* --bare takes no value */
    /* getopt_long moves the operands after the options. */
    assert_int_equal(first, 10);
    assert_string_equal(ok[10], "a");
    assert_string_equal(ok[11], "b");
    assert_int_equal(usage_calls, 0);
}

static void parse_errors(void **state)
{
    (void)state;
    parsed p;
    int first;
    char *help[] = {"cmd", "--help", NULL};
    char *range[] = {"cmd", "--num", "10", NULL};
    char *word[] = {"cmd", "--lng", "3x", NULL};
    char *unknown[] = {"cmd", "--nope", NULL};
    char *missing[] = {"cmd", "--str", NULL};
    char *stop[] = {"cmd", "--fn", "stop", NULL};
    char *extra[] = {"cmd", "--flag", "x", NULL};
    usage_calls = 0;
    assert_int_equal(run_parse(&p, &first, 2, help), 0);
    assert_int_equal(run_parse(&p, &first, 3, range), 2);
    assert_int_equal(run_parse(&p, &first, 3, word), 2);
    assert_int_equal(run_parse(&p, &first, 2, unknown), 2);
    assert_int_equal(run_parse(&p, &first, 2, missing), 2);
    assert_int_equal(usage_calls, 5);
    /* A callback's own exit code other than 2 comes back without the usage. */
    assert_int_equal(run_parse(&p, &first, 3, stop), 1);
    assert_int_equal(usage_calls, 5);
    /* Operands where none are taken. */
    assert_int_equal(run_parse(&p, NULL, 3, extra), 2);
    assert_int_equal(usage_calls, 6);
}

/* ---- order statistics --------------------------------------------------- */

static void stats_reference(void **state)
{
    (void)state;
    /* 1..100 shuffled: median 50.5, nearest-rank p99 99, p50 50. */
    double v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (double)((i * 37) % 100 + 1);
    spw_cli_stats st;
    spw_cli_stats_of(v, 100, &st);
    assert_int_equal(st.n, 100);
    assert_true(st.min == 1 && st.max == 100);
    assert_true(st.median == 50.5);
    assert_true(st.mean == 50.5);
    assert_true(st.p99 == 99);
    assert_true(spw_cli_percentile(v, 100, 50) == 50);
    assert_true(spw_cli_percentile(v, 100, 100) == 100);
    /* 99.9 / 100 * 1000 is 999.0000000000001 in binary: still rank 999. */
    double w[1000];
    for (int i = 0; i < 1000; i++)
        w[i] = 1000 - i;
    spw_cli_stats_of(w, 1000, &st);
    assert_true(spw_cli_percentile(w, 1000, 99.9) == 999);
    double one = 7;
    spw_cli_stats_of(&one, 1, &st);
    assert_true(st.median == 7 && st.p99 == 7);
    spw_cli_stats_of(NULL, 0, &st);
    assert_true(isnan(st.median) && isnan(st.p99));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_num_finite),  cmocka_unit_test(json_num_non_finite_is_null),
        cmocka_unit_test(json_str_escapes), cmocka_unit_test(parse_int_strict),
        cmocka_unit_test(parse_table),      cmocka_unit_test(parse_errors),
        cmocka_unit_test(stats_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
