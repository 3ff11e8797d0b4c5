/*
 * Unit tests of the workflows module's pure parts: the ISO 8601 durations a
 * state's `sla` may hold.
 */
#include "modules/workflows/internal.h"
#include "suites.h"

START_TEST(sla_durations)
{
    static const char *const good[] = {"PT48H", "P1D", "P1Y2M3W4DT5H6M7S", "PT1S", "P100Y",
                                       "P1180M", "P5200W", "P36600D", "PT878400H",
                                       "PT999999999S", "P000000001Y"};
    /* The long ones passed before and then failed PostgreSQL's now() +
     * sla::interval (timestamp or interval out of range): a 500 for every
     * item entering the state (found writing tests/fuzz duration). */
    static const char *const bad[] = {
        "", "P", "PT", "P1DT", "48 hours", "PT48h", "P1H", "PT1D", "P1M1Y", "PT1S1M",
        "P1234567890D", "PT-1S", "P1.5D", "pT1H", "P1YT", "PTT1H", "P101Y", "P1201M",
        "P5300W", "P36700D", "PT879000H", "P300000Y", "P999999999W", "P999999999Y",
        "P999999999D", "P999999999M", "P100Y1D"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        ck_assert_msg(wf_parse_duration(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(!wf_parse_duration(bad[i]), "%s", bad[i]);
}
END_TEST

Suite *workflows_suite(void)
{
    Suite *s = suite_create("workflows");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sla_durations);
    suite_add_tcase(s, tc);
    return s;
}
