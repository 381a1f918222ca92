/* hyperv_jobs.h: the Hyper-V connection and the calls made on it (layer 1,
 * above hyperv.h): enumerate a class, get an instance, invoke a method and
 * wait for its Msvm_ConcreteJob, add a resource setting and find it again
 * when only the job knows it. Every call updates the request counter. */
#ifndef NX_HYPERV_JOBS_H
#define NX_HYPERV_JOBS_H

#include <stdbool.h>
#include <stddef.h>

#include "hyperv.h"
#include "provider.h"
#include "wsman.h"

struct nx_http;

/* A virtual switch (Msvm_VirtualEthernetSwitch), cached per connection by
 * hyperv_inventory.c. */
struct hv_switch {
    char *name; /* ElementName */
    char *guid; /* Name */
    struct nx_wsman_epr *epr;
};

struct hv_conn {
    struct nx_conn *base; /* the core's connection; this is its priv */
    struct hv_endpoint ep;
    struct nx_http *http;
    struct nx_wsman *ws;
    struct nx_wsman_epr *vsms; /* the management service */
    char *host; /* its SystemName: the host's name in WMI paths */
    char *vm_root; /* DefaultExternalDataRoot */
    struct hv_switch *sw;
    size_t n_sw, alloc_sw;
    bool have_switches;
};

/* ---- EPRs and paths (no request) ---- */
/* The resource URI of a class of HV_NS. Caller frees. */
char *hv_class_uri(const char *cls);
/* Msvm_ComputerSystem of VM guid. */
struct nx_wsman_epr *hv_vm_epr(const char *guid);
/* An instance of cls keyed by InstanceID. */
struct nx_wsman_epr *hv_iid_epr(const char *cls, const char *iid);
/* The Msvm_VirtualSystemSettingData of VM guid (InstanceID Microsoft:<guid>). */
struct nx_wsman_epr *hv_vssd_epr(const char *guid);
/* The WMI object path of the cls instance iid on this host. */
char *hv_setting_path(const struct hv_conn *c, const char *cls, const char *iid);

/* ---- calls ---- */
/* Enumerate a class (wql NULL: all instances); appended to l. */
int hv_enum(struct hv_conn *c, const char *cls, const char *wql, struct nx_wsman_list *l);
/* The instances of cls whose InstanceID is LIKE 'prefix%'. */
int hv_enum_prefix(struct hv_conn *c, const char *cls, const char *prefix, struct nx_wsman_list *l);
int hv_get(struct hv_conn *c, const struct nx_wsman_epr *e, struct nx_wsman_instance **out);
/* Invoke without looking at the ReturnValue (*out: the method output). */
int hv_invoke(struct hv_conn *c, const struct nx_wsman_epr *target, const char *method,
              const struct nx_wsman_param *p, size_t n, struct nx_wsman_instance **out);
/* Check a method output's ReturnValue; wait for its job when it is 4096
 * (poll Msvm_ConcreteJob until 7, completed, or 8/9/10 with ErrorDescription). */
int hv_wait_result(struct hv_conn *c, const char *what, const struct nx_wsman_instance *o);
/* Invoke and wait; *out (may be NULL) receives the method output. */
int hv_call(struct hv_conn *c, const struct nx_wsman_epr *target, const char *method,
            const struct nx_wsman_param *p, size_t n, struct nx_wsman_instance **out);
/* AddResourceSettings of one setting to the VM settings vssd; *iid receives
 * the InstanceID of the result, NULL when only the job knows it (then
 * hv_find_setting). */
int hv_add_resource(struct hv_conn *c, const struct nx_wsman_epr *vssd, const char *cls,
                    const struct nx_cim_prop *props, size_t n, char **iid);
/* The InstanceID of the resource setting of cls under VM guid whose prop
 * equals want (path: prop is a WMI path whose InstanceID does). For hosts
 * that give the result of AddResourceSettings only through its job. */
int hv_find_setting(struct hv_conn *c, const char *guid, const char *cls, const char *prop,
                    bool path, const char *want, char **iid);

#endif
