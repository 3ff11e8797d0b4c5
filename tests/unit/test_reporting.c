/*
 * Unit tests of the reporting module's CSV cell encoding: RFC 4180 quoting
 * and the neutralisation of cells a spreadsheet would run as formulas.
 */
#include <stdlib.h>

#include "suites.h"
#include "tenantflow/reporting.h"

static const struct {
    const char *in, *out;
} cases[] = {
    {"plain", "plain"},
    {"", ""},
    {"a,b", "\"a,b\""},
    {"say \"hi\"", "\"say \"\"hi\"\"\""},
    {"line\nbreak", "\"line\nbreak\""},
    {"=SUM(A1)", "'=SUM(A1)"},
    {"+1", "'+1"},
    {"-review", "'-review"},
    {"@cmd", "'@cmd"},
    {"\tx", "'\tx"},
    {"\rx", "\"'\rx\""},
    {"=a,\"b\"", "\"'=a,\"\"b\"\"\""},
    {"a=b", "a=b"},
};

START_TEST(csv_cells)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        reporting_buf b = {0};
        reporting_csv_cell(&b, cases[i].in);
        ck_assert_str_eq(b.data ? b.data : "", cases[i].out);
        free(b.data);
    }
    reporting_buf b = {0};
    reporting_csv_cell(&b, NULL);
    ck_assert_str_eq(b.data ? b.data : "", "");
    free(b.data);
}
END_TEST

Suite *reporting_suite(void)
{
    Suite *s = suite_create("reporting");
    TCase *tc = tcase_create("csv");
    tcase_add_test(tc, csv_cells);
    suite_add_tcase(s, tc);
    return s;
}
