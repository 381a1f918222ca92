/* vsphere.h: the types shared by the vSphere provider's files (no functions).
 *
 * The provider is a stack of layers; each file includes only the headers of
 * the layers below it and never calls upward (docs/internals/vsphere.md):
 *
 *   vsphere_provider.c   the ops table, open and close
 *   vsphere_vm.c         create (confirmed in settle), vNICs, payload, power, remove
 *   vsphere_image.c      staging the appliance image, set-image
 *   vsphere_observed.c   owned appliances and network usage, in the core's terms
 *   vsphere_spec.c       ConfigSpec XML: CreateVM config, vNIC and CD/DVD devices,
 *                        extraConfig (marker, payload)
 *   vsphere_placement.c  host, networks, datastores, folder and pool
 *   vsphere_tasks.c      running tasks and waiting for them (one filter)
 *   vsphere_inventory.c  the inventory in one RetrievePropertiesEx, lookups
 *   vsphere_session.c    URI, ServiceContent, login and re-login, calls with
 *                        retries and backoff, paged retrieval
 *
 * vsphere_session.h <- vsphere_inventory.h, vsphere_tasks.h <-
 * vsphere_placement.h <- vsphere_spec.h <- vsphere_image.h, vsphere_vm.h,
 * vsphere_observed.h <- vsphere_provider.c. */
#ifndef NX_VSPHERE_H
#define NX_VSPHERE_H

#include "hashmap.h"
#include "provider.h"
#include "soap.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* A standard portgroup as a host sees it. */
struct vs_pg {
    char *name;
    char *vswitch;
    unsigned vlan; /* 0: none; 4095: trunk */
};

struct vs_vmnic {
    char *key; /* device key */
    char *device_type; /* xsi:type, e.g. VirtualVmxnet3 */
    uint8_t mac[6];
    char *network; /* standard backing: Network moref value */
    char *device_name; /* standard backing: portgroup name */
    char *switch_uuid; /* DVS backing */
    char *portgroup_key; /* DVS backing */
};

/* A VM's CD/DVD drive (the first one) and where another one could go. */
struct vs_vmcd {
    char *key; /* device key; NULL: the VM has no CD/DVD drive */
    char *controller; /* controllerKey */
    int unit; /* unitNumber */
    char *file; /* ISO backing: fileName ("[DS] path"); NULL: another backing */
    char *ide[2]; /* keys of the VM's (first two) IDE controllers */
    unsigned ide_used; /* bit 2 * i + u: unit u of ide[i] is taken */
};

/* One managed object of the inventory; fields by type. */
struct vs_obj {
    char *type, *id, *name, *parent;
    char *vm_folder; /* Datacenter */
    char *root_pool; /* ComputeResource, ClusterComputeResource */
    char *ds_type; /* Datastore: summary.type */
    char *netsys; /* HostSystem: configManager.networkSystem */
    struct vs_pg *pgs; /* HostSystem: config.network.portgroup */
    size_t n_pgs;
    char **refs; /* HostSystem: network; DVPG: host */
    size_t n_refs;
    char **dss; /* HostSystem: datastore */
    size_t n_dss;
    char *dvs; /* DVPG: config.distributedVirtualSwitch */
    char *pg_key; /* DVPG: key */
    int vlan; /* DVPG: VLAN id (-1: none, trunk or private) */
    char *uuid; /* DVS */
    char *marker; /* VM: extraConfig netext-deploy.marker */
    bool powered_on; /* VM */
    char *vm_host; /* VM: runtime.host */
    struct vs_vmnic *nics; /* VM */
    size_t n_nics;
    struct vs_vmcd cd; /* VM */
};

struct vs_inventory {
    struct vs_obj **objs;
    size_t n, alloc;
    struct nx_map by_id;
};

/* The production networks check_placement saw for a plan host (from the
 * specs' production vNICs), to describe observed vNICs in the terms the core
 * compares (see nx_vnic_matches). */
struct vs_hostinfo {
    char *plan_host;
    char **prod_nets;
    unsigned *prod_vlans;
    size_t n_prod;
};

struct vs_task {
    char *id;
    int state; /* 0 queued/running, 1 success, -1 error */
    char *result; /* moref value of info.result, if any */
    char *error; /* "Type: message" */
    char *fault; /* state -1: the fault type ("" if the server gave none) */
    char *done_fault; /* a fault that means "already done" (deferred tasks) */
    char *what; /* for messages and deferred waits */
    bool deferred; /* nobody waits for it now (power-on); checked later */
    char *subject; /* deferred: the VM it acts on, for vs_tasks_settle() */
    bool watched; /* deferred at some point and not yet reported by settle */
};

/* A CreateVM_Task sent but not waited for: create returns the task id as the
 * appliance id, set_power(on) only notes the wish, and settle waits for all
 * of them at once, then powers the new VMs on (see vs_settle). */
struct vs_pending {
    char *task; /* the appliance id the core knows until settle */
    char *what; /* "creating NAME" */
    char *name;
    char *vm; /* moref, once the task succeeded */
    bool power_on;
    char *error; /* settle: why it failed */
};

/* A datastore the image was staged on in this run (or failed to be). */
struct vs_staged {
    char *ds; /* Datastore moref value */
    char *image; /* nx_image.name */
    char *error; /* NULL: it is there */
    int code; /* nx_error code of error */
};

/* Concurrency (the provider sets .concurrent: the core calls it from -j N
 * worker threads at once):
 *   - nx_soap keeps one keep-alive connection per concurrent caller, all in
 *     one session (shared cookie jar): one Login per run;
 *   - `lock` guards everything in memory below (inventory, hosts, tasks,
 *     filter state); it is never held across a SOAP call;
 *   - `load_lock` makes the first inventory read happen once (others wait);
 *   - `container_lock` serialises creating the folder/pool (once per run);
 *   - `session_lock` serialises re-login: a thread that saw NotAuthenticated
 *     logs in again only if nobody did since its call began (n_logins);
 *   - tasks: one waiter at a time runs WaitForUpdatesEx on the one filter and
 *     records every task it reports; the others sleep on `task_cond`. */
struct vs_conn {
    struct nx_conn *base; /* the core's connection; this is its priv */
    pthread_mutex_t lock, load_lock, container_lock, session_lock;
    pthread_cond_t task_cond;
    struct nx_soap *soap;
    char *url;
    char *user;
    char *password; /* secret, for re-login */
    /* ServiceContent */
    char *root_folder, *property_collector, *view_manager, *session_manager, *task_manager;
    char *api_version;
    bool logged_in;
    unsigned long n_logins; /* successful logins, to notice a renewed session */
    unsigned long session_gen; /* bumped when a session is given up (vs_relogin):
                                * what lived in it (the task filter) is gone */
    /* inventory, loaded once per run and updated by our own changes */
    bool have_inventory;
    struct vs_inventory inv;
    struct vs_hostinfo *hosts;
    size_t n_hosts, alloc_hosts;
    /* tasks: every task the filter reported or we started, by id */
    char *task_filter;
    char *version;
    unsigned long filter_session; /* the session_gen the filter was made in */
    bool waiting; /* a thread is in WaitForUpdatesEx for everyone */
    struct vs_task **tasks;
    size_t n_tasks, alloc_tasks;
    struct nx_map task_map;
    /* creates not confirmed yet, by task id */
    struct vs_pending **pending;
    size_t n_pending, alloc_pending;
    struct nx_map pending_map;
    /* the appliance image (stage_image): one check, at most one upload, per
     * datastore and run; stage_lock serialises checks and uploads */
    pthread_mutex_t stage_lock;
    char *file_manager; /* ServiceContent.fileManager (MakeDirectory) */
    struct nx_http *files; /* datastore file access (/folder), in the session */
    struct vs_staged *staged; /* c->lock */
    size_t n_staged, alloc_staged;
    unsigned long n_image_checks, n_uploads; /* c->lock */
    unsigned long long upload_bytes;
    double upload_seconds;
};

#define VS_MARKER_KEY "netext-deploy.marker"
#define VS_PAYLOAD_KEY "guestinfo.netext.payload"
#define VS_ENCODING_KEY "guestinfo.netext.payload.encoding"
/* the appliance image's directory on its datastore */
#define VS_IMAGE_DIR "netext-deploy"

#endif
