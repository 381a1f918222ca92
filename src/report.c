/* report.c: a run's outcome for the user: the text report, the status
 * table and the JSON report (--json; netext-deploy(8)). Reads a finished
 * struct nx_run; changes nothing. */
#include "config.h"

#include "report.h"
#include "strbuf.h"
#include "util.h"

#include <stdio.h>

static void describe_vnic(struct strbuf *sb, const struct nx_vnic_spec *v)
{
    char mac[18];
    nx_format_mac(v->mac, mac);
    if (v->kind == NX_VNIC_PRODUCTION)
        strbuf_addf(sb, "production '%s'", v->label);
    else
        strbuf_addf(sb, "VLAN %u '%s'", v->vlan, v->label);
    strbuf_addf(sb, " %s", mac);
}

static void describe(struct strbuf *sb, const struct nx_action *a)
{
    char mac[18];
    switch (a->kind) {
    case NX_ACT_CREATE:
        strbuf_addf(sb, "%zu vNICs: ", a->spec->n_vnics);
        for (size_t i = 0; i < a->spec->n_vnics; i++) {
            if (i)
                strbuf_addstr(sb, ", ");
            describe_vnic(sb, &a->spec->vnics[i]);
        }
        strbuf_addf(sb, "; folder '%s', pool '%s'",
                    a->spec->placement.folder ? a->spec->placement.folder : "-",
                    a->spec->placement.resource_pool ? a->spec->placement.resource_pool : "-");
        if (a->spec->placement.datastore)
            strbuf_addf(sb, ", datastore '%s'", a->spec->placement.datastore);
        if (a->spec->image)
            strbuf_addf(sb, "; image %s", a->spec->image->name);
        break;
    case NX_ACT_SET_IMAGE:
        strbuf_addf(sb, "%s (was %s)", a->spec->image->name,
                    a->obs->marker.image[0] ? a->obs->marker.image : "none");
        break;
    case NX_ACT_ADD_VNIC:
        describe_vnic(sb, a->vnic);
        break;
    case NX_ACT_REMOVE_VNIC:
        nx_format_mac(a->ovnic->mac, mac);
        strbuf_addf(sb, "%s VLAN %u %s", a->ovnic->network ? a->ovnic->network : "-",
                    a->ovnic->vlan, mac);
        break;
    case NX_ACT_SET_PAYLOAD:
        strbuf_addf(sb, "sha256 %.12s", a->spec->digest);
        break;
    default:
        strbuf_addstr(sb, a->reason ? a->reason : "");
        break;
    }
}

void nx_run_report_text(const struct nx_run *run, const char *command, FILE *out)
{
    struct strbuf sb = STRBUF_INIT;
    bool dry = run->opts->dry_run;
    for (size_t i = 0; i < run->problems.n; i++)
        fprintf(stderr, "%s\n", run->problems.msgs[i]);
    for (size_t i = 0; i < run->actions.n; i++) {
        const struct nx_action *a = &run->actions.items[i];
        strbuf_reset(&sb);
        describe(&sb, a);
        const char *st = "";
        switch (run->status[i]) {
        case NX_ST_PLANNED:
            st = dry ? "would " : "";
            break;
        case NX_ST_DONE:
            st = "";
            break;
        case NX_ST_FAILED:
            st = "FAILED ";
            break;
        case NX_ST_SKIPPED:
            st = "skipped ";
            break;
        }
        fprintf(out, "%s%-11s %s (tenant %s, host %s): %s", st, nx_action_name(a->kind),
                nx_action_appliance(a), nx_action_tenant(a), nx_action_host(a), sb.buf);
        if (run->errors[i])
            fprintf(out, ": %s", run->errors[i]);
        fputc('\n', out);
    }
    size_t planned = run->actions.n;
    if (planned == 0 && run->problems.n == 0)
        fprintf(out, "%s: up to date (%zu appliance%s checked, 0 changes)\n", command,
                run->desired ? run->desired->n : 0,
                run->desired && run->desired->n == 1 ? "" : "s");
    else if (dry)
        fprintf(out, "%s: dry run: %zu action%s planned, nothing changed\n", command, planned,
                planned == 1 ? "" : "s");
    else
        fprintf(out, "%s: %lu change%s made, %zu failed\n", command, run->n_changes,
                run->n_changes == 1 ? "" : "s", run->n_failed);
    strbuf_release(&sb);
}

/* status: one line per appliance in scope, from the diff. */
void nx_run_report_status(const struct nx_run *run, FILE *out)
{
    for (size_t i = 0; i < run->problems.n; i++)
        fprintf(stderr, "%s\n", run->problems.msgs[i]);
    fprintf(out, "%-40s %-16s %-12s %s\n", "APPLIANCE", "TENANT", "HOST", "STATE");
    const struct nx_desired *d = run->opts->remove_all ? &run->empty : run->desired;
    for (size_t i = 0; d && i < d->n; i++) {
        const struct nx_appliance_spec *s = d->items[i];
        if (!nx_run_in_scope(run, s))
            continue;
        size_t add = 0, rem = 0;
        bool missing = false, payload = false, power = false, dup = false, image = false;
        for (size_t k = 0; k < run->actions.n; k++) {
            const struct nx_action *a = &run->actions.items[k];
            if (a->spec != s)
                continue;
            missing |= a->kind == NX_ACT_CREATE;
            add += a->kind == NX_ACT_ADD_VNIC;
            rem += a->kind == NX_ACT_REMOVE_VNIC;
            payload |= a->kind == NX_ACT_SET_PAYLOAD;
            image |= a->kind == NX_ACT_SET_IMAGE;
            power |= a->kind == NX_ACT_POWER_ON || a->kind == NX_ACT_POWER_OFF;
            dup |= a->kind == NX_ACT_REMOVE;
        }
        struct strbuf st = STRBUF_INIT;
        if (missing)
            strbuf_addstr(&st, "missing");
        if (add || rem)
            strbuf_addf(&st, "%svNICs +%zu -%zu", st.len ? ", " : "", add, rem);
        if (payload)
            strbuf_addf(&st, "%spayload outdated", st.len ? ", " : "");
        if (image)
            strbuf_addf(&st, "%simage outdated", st.len ? ", " : "");
        if (power && !missing)
            strbuf_addf(&st, "%spower state differs", st.len ? ", " : "");
        if (dup)
            strbuf_addf(&st, "%sduplicates", st.len ? ", " : "");
        fprintf(out, "%-40s %-16s %-12s %s\n", s->name, s->tenant->name, s->host->name,
                st.len ? st.buf : "up to date");
        strbuf_release(&st);
    }
    for (size_t k = 0; k < run->actions.n; k++) {
        const struct nx_action *a = &run->actions.items[k];
        if (a->kind == NX_ACT_REMOVE && !a->spec)
            fprintf(out, "%-40s %-16s %-12s %s\n", a->obs->name, a->obs->marker.tenant,
                    a->obs->marker.host, "orphan (not subscribed)");
    }
}

void nx_run_report_json(const struct nx_run *run, const char *command, FILE *out)
{
    struct strbuf sb = STRBUF_INIT;
    const char *result = run->problems.n      ? "refused"
                         : run->n_failed      ? "failed"
                         : !run->actions.n    ? "up-to-date"
                         : run->opts->dry_run ? "planned"
                                              : "changed";
    strbuf_addstr(&sb, "{\"command\":");
    strbuf_add_json_str(&sb, command);
    strbuf_addf(&sb,
                ",\"dry_run\":%s,\"result\":\"%s\",\"exit_code\":%d,\"changes\":%lu,"
                "\"failed\":%zu,\"appliances\":%zu,\"actions\":[",
                run->opts->dry_run ? "true" : "false", result, run->exit_code, run->n_changes,
                run->n_failed, run->desired ? run->desired->n : 0);
    static const char *const st_names[] = {"planned", "done", "failed", "skipped"};
    for (size_t i = 0; i < run->actions.n; i++) {
        const struct nx_action *a = &run->actions.items[i];
        struct strbuf d = STRBUF_INIT;
        describe(&d, a);
        strbuf_addstr(&sb, i ? ",{" : "{");
        strbuf_addf(&sb,
                    "\"action\":\"%s\",\"status\":\"%s\",\"appliance\":", nx_action_name(a->kind),
                    st_names[run->status[i]]);
        strbuf_add_json_str(&sb, nx_action_appliance(a));
        strbuf_addstr(&sb, ",\"tenant\":");
        strbuf_add_json_str(&sb, nx_action_tenant(a));
        strbuf_addstr(&sb, ",\"host\":");
        strbuf_add_json_str(&sb, nx_action_host(a));
        strbuf_addstr(&sb, ",\"detail\":");
        strbuf_add_json_str(&sb, d.buf);
        if (run->errors[i]) {
            strbuf_addstr(&sb, ",\"error\":");
            strbuf_add_json_str(&sb, run->errors[i]);
        }
        strbuf_addch(&sb, '}');
        strbuf_release(&d);
    }
    strbuf_addstr(&sb, "],\"problems\":[");
    for (size_t i = 0; i < run->problems.n; i++) {
        if (i)
            strbuf_addch(&sb, ',');
        strbuf_add_json_str(&sb, run->problems.msgs[i]);
    }
    strbuf_addstr(&sb, "]}\n");
    fputs(sb.buf, out);
    strbuf_release(&sb);
}
