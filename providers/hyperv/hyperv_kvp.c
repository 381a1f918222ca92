/* hyperv_kvp.c: the payload through host-to-guest KVP items
 * (Msvm_VirtualSystemManagementService AddKvpItems / ModifyKvpItems /
 * RemoveKvpItems of Msvm_KvpExchangeDataItem; read from the VM's
 * Msvm_KvpExchangeComponentSettingData HostExchangeItems). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hyperv_kvp.h"
#include "util.h"

/* Names of KVP items of ours already in the VM's host-to-guest pool. */
static int kvp_existing(struct hv_conn *c, const char *guid, char ***names, size_t *n)
{
    struct nx_wsman_list l = {0};
    char *like = nx_asprintf("Microsoft:%s", guid);
    size_t alloc = 0;
    *names = NULL;
    *n = 0;
    int rc = hv_enum_prefix(c, "Msvm_KvpExchangeComponentSettingData", like, &l);
    free(like);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const struct nx_wsman_instance *s = l.items[i];
        for (size_t k = 0; k < s->n; k++) {
            struct nx_wsman_instance *item = NULL;
            if (strcmp(s->props[k].name, "HostExchangeItems") != 0 || !s->props[k].value)
                continue;
            if (nx_cim_instance_parse(s->props[k].value, &item) < 0) {
                rc = -1;
                nx_error_prefix("HostExchangeItems of %s: ", guid);
                break;
            }
            const char *nm = nx_wsman_prop(item, "Name");
            if (nm && nx_str_has_prefix(nm, HV_KVP_PREFIX)) {
                NX_GROW(*names, alloc, *n + 1);
                (*names)[(*n)++] = nx_strdup(nm);
            }
            nx_wsman_instance_free(item);
        }
    }
    nx_wsman_list_release(&l);
    return rc;
}

static int kvp_call(struct hv_conn *c, const char *guid, const char *method, char **names,
                    char **values, size_t n)
{
    if (!n)
        return 0;
    struct nx_wsman_epr *vm = hv_vm_epr(guid);
    struct nx_wsman_param *p = nx_calloc(n + 1, sizeof(*p));
    char **docs = nx_calloc(n, sizeof(*docs));
    p[0] = (struct nx_wsman_param){"TargetSystem", NX_WSMAN_REF, NULL, vm};
    for (size_t i = 0; i < n; i++) {
        struct nx_cim_prop props[] = {
            {.name = "Name", .value = names[i]},
            {.name = "Data", .value = values ? values[i] : ""},
            {.name = "Source", .type = "uint16", .value = "0"},
        };
        docs[i] = nx_cim_instance_xml("Msvm_KvpExchangeDataItem", props, 3);
        p[i + 1] = (struct nx_wsman_param){"DataItems", NX_WSMAN_EMBEDDED, docs[i], NULL};
    }
    int rc = hv_call(c, c->vsms, method, p, n + 1, NULL);
    for (size_t i = 0; i < n; i++)
        free(docs[i]);
    free(docs);
    free(p);
    nx_wsman_epr_free(vm);
    return rc;
}

static bool among(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

int hv_write_payload(struct hv_conn *c, const char *guid, const struct nx_appliance_spec *s,
                     bool fresh)
{
    struct hv_kvp_items k;
    char **have = NULL;
    size_t n_have = 0;
    int ret = -1;
    hv_kvp_items_build(s->payload ? s->payload : "", s->payload_len, s->digest, &k);
    if (!fresh && kvp_existing(c, guid, &have, &n_have) < 0)
        goto cleanup;
    char **mn = nx_calloc(k.n + 1, sizeof(char *)), **mv = nx_calloc(k.n + 1, sizeof(char *));
    char **an = nx_calloc(k.n + 1, sizeof(char *)), **av = nx_calloc(k.n + 1, sizeof(char *));
    char **rn = nx_calloc(n_have + 1, sizeof(char *));
    size_t nm = 0, na = 0, nr = 0;
    for (size_t i = 0; i < k.n; i++) {
        if (among(have, n_have, k.names[i])) {
            mn[nm] = k.names[i];
            mv[nm++] = k.values[i];
        } else {
            an[na] = k.names[i];
            av[na++] = k.values[i];
        }
    }
    for (size_t j = 0; j < n_have; j++)
        if (!among(k.names, k.n, have[j]))
            rn[nr++] = have[j];
    /* the count item comes first in k: modified first, so a guest reading
     * while we write sees a count that does not match the digest */
    if (kvp_call(c, guid, "ModifyKvpItems", mn, mv, nm) == 0 &&
        kvp_call(c, guid, "AddKvpItems", an, av, na) == 0 &&
        kvp_call(c, guid, "RemoveKvpItems", rn, NULL, nr) == 0)
        ret = 0;
    free(mn);
    free(mv);
    free(an);
    free(av);
    free(rn);
cleanup:
    for (size_t j = 0; j < n_have; j++)
        free(have[j]);
    free(have);
    hv_kvp_items_release(&k);
    if (ret < 0)
        nx_error_prefix("payload: "); /* the caller names the appliance */
    return ret;
}
