/* bench-plan.c: parse + validate + desired state (with the payloads' digests,
 * rendered without tunnel credentials) + diff for a generated
 * subscription set of N tenants (default 10,000). Prints one line of figures;
 * bench/run.sh compares them with the targets.
 *
 * The set: N tenants spread over N/200 hosts (at least 1), each tenant with
 * its own hardware plan of 3 VLANs, every other tenant with a static address,
 * every tenth with a public IP rule. Diff runs twice: against nothing (all
 * creates) and against an exact copy of the desired state (no actions). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "diff.h"
#include "error.h"
#include "payload.h"
#include "plan.h"
#include "strbuf.h"
#include "util.h"
#include "validate.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void generate(FILE *f, unsigned n)
{
    unsigned hosts = n / 200 ? n / 200 : 1;
    fprintf(f, "<?xml version='1.0'?>\n<netext-plan xmlns='urn:netext-deploy:plan:1'>\n"
               "<gateway address='gw.example.com'/>\n");
    for (unsigned h = 0; h < hosts; h++)
        fprintf(f,
                "<host name='esx%u' uri='test:///default' production-network='prod' "
                "vlan-switch='vlans'/>\n",
                h);
    for (unsigned i = 0; i < n; i++) {
        unsigned h = i % hosts, slot = i / hosts;
        fprintf(f, "<hardware-plan name='plan-%u' host='esx%u'>", i, h);
        for (unsigned k = 0; k < 3; k++)
            fprintf(f, "<network name='net%u' vlan='%u'/>", k, 2 + slot * 3 + k);
        fprintf(f, "</hardware-plan>\n<tenant name='tenant-%u'><subscribe plan='plan-%u'/>", i, i);
        if (i % 2 == 0) {
            unsigned ip = 0x0a000002u + i;
            fprintf(f,
                    "<appliance host='esx%u'><static ip='10.%u.%u.%u/8' gateway='10.0.0.1'/>"
                    "</appliance>",
                    h, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
        }
        if (i % 10 == 0)
            fprintf(f, "<public-ip-rule public='198.51.%u.%u:%u' replica='10.9.0.5:443'/>",
                    i / 250 % 256, i % 250 + 1, 443 + i / 64000);
        fprintf(f, "</tenant>\n");
    }
    fprintf(f, "</netext-plan>\n");
}

static struct nx_appliance_obs *obs_from(const struct nx_appliance_spec *s, size_t i)
{
    struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
    o->id = nx_asprintf("vm-%zu", i);
    o->name = nx_strdup(s->name);
    nx_marker_from_spec(&o->marker, s);
    o->powered_on = true;
    for (size_t j = 0; j < s->n_vnics; j++) {
        struct nx_vnic_obs *v = nx_obs_add_vnic(o);
        memcpy(v->mac, s->vnics[j].mac, 6);
        v->vlan = s->vnics[j].vlan;
        v->network = nx_strdup(s->vnics[j].network);
    }
    return o;
}

int main(int argc, char **argv)
{
    unsigned long n = 10000;
    if (argc > 1 && !nx_parse_uint(argv[1], 1, 1000000, &n)) {
        fprintf(stderr, "usage: bench-plan [TENANTS]\n");
        return 64;
    }
    char path[] = "/tmp/nx-bench-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    generate(f, (unsigned)n);
    long size = ftell(f);
    fclose(f);

    /* baseline RSS before any work, to report what the pipeline adds */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long rss0 = ru.ru_maxrss;

    double t0 = now_ms(), c0 = cpu_ms();
    struct nx_model *m = nx_model_new();
    struct nx_diag diag;
    nx_diag_init(&diag);
    if (nx_plan_read_file(m, path, &diag) < 0 || diag.n) {
        fprintf(stderr, "bench: plan did not read: %s %s\n", nx_error_msg(),
                diag.n ? diag.msgs[0] : "");
        return 70;
    }
    double t1 = now_ms();
    if (nx_validate(m, &diag)) {
        fprintf(stderr, "bench: plan invalid: %s\n", diag.msgs[0]);
        return 70;
    }
    double t2 = now_ms();
    struct nx_desired *d = nx_desired_compute(m, NULL);
    nx_payload_render_all(d, m);
    double t3 = now_ms();
    struct nx_obs_list none = {0}, all = {0};
    struct nx_scope scope = {NX_ROLE_PROVIDER, NULL, m};
    struct nx_actions a1, a2;
    nx_diff(d, &none, &scope, &a1);
    double t4 = now_ms(), c4 = cpu_ms();
    for (size_t i = 0; i < d->n; i++)
        nx_obs_list_add(&all, obs_from(d->items[i], i));
    double t5 = now_ms();
    nx_diff(d, &all, &scope, &a2);
    double t6 = now_ms();
    getrusage(RUSAGE_SELF, &ru);
    printf("tenants=%lu appliances=%zu plan_bytes=%ld parse_ms=%.1f validate_ms=%.1f "
           "desired_ms=%.1f diff_create_ms=%.1f diff_noop_ms=%.1f total_ms=%.1f cpu_ms=%.1f "
           "actions_create=%zu actions_noop=%zu peak_rss_kib=%ld baseline_rss_kib=%ld\n",
           n, d->n, size, t1 - t0, t2 - t1, t3 - t2, t4 - t3, t6 - t5, t4 - t0 + (t6 - t5), c4 - c0,
           a1.n, a2.n, ru.ru_maxrss, rss0);
    int bad = a1.n != 2 * d->n || a2.n != 0 || d->n != n;
    nx_actions_release(&a1);
    nx_actions_release(&a2);
    nx_obs_list_release(&all);
    nx_desired_free(d);
    nx_diag_release(&diag);
    nx_model_free(m);
    unlink(path);
    if (bad)
        fprintf(stderr, "bench: unexpected action counts\n");
    return bad ? 70 : 0;
}
