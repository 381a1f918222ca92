/* fuzz-bundle.c: the tenant bundle reader and tenant-side checks. */
#include "config.h"

#include "fuzz.h"

#include "plan.h"
#include "tenant_side.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char cfg[] = "<netext-tenant xmlns='urn:netext-deploy:plan:1'>"
                              "<source-host name='s' uri='test:///default'/></netext-tenant>";
    struct nx_model *m = nx_model_new();
    struct nx_diag d;
    nx_diag_init(&d);
    nx_plan_read_memory(m, cfg, sizeof(cfg) - 1, "cfg.xml", &d);
    nx_bundle_parse(m, (const char *)data, size, "fuzz.bundle", &d);
    if (nx_validate(m, &d) == 0) {
        struct nx_diag notes;
        nx_diag_init(&notes);
        nx_tside_resolve(m, NULL, NULL, &d, &notes);
        nx_diag_release(&notes);
    }
    nx_diag_release(&d);
    nx_model_free(m);
    return 0;
}
