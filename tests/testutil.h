/* testutil.h: shared CUnit harness for the unit suites.
 *
 * Each suite file defines `static CU_TestInfo tests[]` and calls
 * NX_TEST_MAIN("suite name", tests). The program prints CUnit's summary and
 * exits non-zero if any assertion failed or any test could not run. */
#ifndef NX_TESTUTIL_H
#define NX_TESTUTIL_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "model.h"
#include "plan.h"
#include "validate.h"

/* Run one suite with optional fixture functions; prints CUnit's summary.
 * Returns 0 only if tests ran and none failed (suite set-up included). */
static inline int nx_test_run(const char *name, CU_InitializeFunc init, CU_CleanupFunc clean,
                              CU_TestInfo *tests)
{
    CU_SuiteInfo suites[] = {{name, init, clean, NULL, NULL, tests}, CU_SUITE_INFO_NULL};
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (CU_register_suites(suites) != CUE_SUCCESS)
        return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
                      CU_get_number_of_suites_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    return (failed || run == 0) ? 1 : 0;
}

#define NX_TEST_MAIN(name, tests)                                                                  \
    int main(void)                                                                                 \
    {                                                                                              \
        return nx_test_run(name, NULL, NULL, tests);                                               \
    }

#define NX_PLAN_HEAD "<netext-plan xmlns='urn:netext-deploy:plan:1'>"
#define NX_PLAN_TAIL "</netext-plan>"

/* Parse and validate an in-memory plan; diag receives every problem. */
static inline struct nx_model *nx_test_model(const char *xml, struct nx_diag *diag)
{
    struct nx_model *m = nx_model_new();
    nx_diag_init(diag);
    if (nx_plan_read_memory(m, xml, strlen(xml), "test.xml", diag) < 0) {
        nx_model_free(m);
        return NULL;
    }
    if (m->n_syntax_errors == 0)
        nx_validate(m, diag);
    return m;
}

/* Path of a file under tests/ in the source tree ($top_srcdir or "."). */
static inline const char *nx_test_srcdir(void)
{
    const char *s = getenv("top_srcdir");
    return s && *s ? s : ".";
}

#endif
