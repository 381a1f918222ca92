/* fuzz-soap.c: the SOAP answer parser of the vSphere provider. */
#include "config.h"

#include "fuzz.h"

#include "soap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[] = {200, 500};
    for (int i = 0; i < 2; i++) {
        struct nx_soap_resp r = {0};
        struct nx_soap_fault f = {0};
        int rc = nx_soap_parse((const char *)data, size, statuses[i], "fuzz", &r, &f);
        if (rc == 0)
            nx_soap_resp_release(&r);
        nx_soap_fault_release(&f);
    }
    return 0;
}
