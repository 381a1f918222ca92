/* fuzz-plan.c: the plan reader, validator, desired state, payloads and diff. */
#include "config.h"

#include "fuzz.h"

#include "desired.h"
#include "diff.h"
#include "payload.h"
#include "plan.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nx_model *m = nx_model_new();
    struct nx_diag d;
    nx_diag_init(&d);
    if (nx_plan_read_memory(m, (const char *)data, size, "fuzz.xml", &d) == 0 &&
        m->n_syntax_errors == 0 && nx_validate(m, &d) == 0 && m->kind == NX_KIND_PROVIDER) {
        struct nx_desired *des = nx_desired_compute(m, NULL);
        nx_payload_render_all(des, m);
        struct nx_obs_list obs = {0};
        struct nx_actions a;
        struct nx_scope sc = {NX_ROLE_PROVIDER, NULL, m};
        nx_diff(des, &obs, &sc, &a);
        nx_actions_release(&a);
        nx_desired_free(des);
    }
    nx_diag_release(&d);
    nx_model_free(m);
    return 0;
}
