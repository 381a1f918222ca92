/* test-diff.c: desired state (a pure function of the model) and the diff. */
#include "config.h"

#include "testutil.h"

#include "diff.h"
#include "payload.h"
#include "util.h"
#include "xml.h"

/* The seed's example: two plans (2 + 3 networks) on one host, a third plan on
 * a second host, a second tenant. */
static const char seed_plan[] =
    NX_PLAN_HEAD "<gateway address='gw.example.com'/>"
                 "<host name='esx1' uri='test:///default' production-network='prod' "
                 "vlan-switch='vlans'/>"
                 "<host name='esx2' uri='test:///default' production-network='prod' "
                 "vlan-switch='vlans'/>"
                 "<hardware-plan name='small' host='esx1'><network name='web' vlan='101'/>"
                 "<network name='db' vlan='102'/></hardware-plan>"
                 "<hardware-plan name='large' host='esx1'><network name='app' vlan='201'/>"
                 "<network name='dmz' vlan='202'/><network name='bak' vlan='203'/>"
                 "</hardware-plan>"
                 "<hardware-plan name='again' host='esx1'><network name='web2' vlan='101'/>"
                 "</hardware-plan>"
                 "<hardware-plan name='dr' host='esx2'><network name='web' vlan='101'/>"
                 "</hardware-plan>"
                 "<hardware-plan name='other' host='esx1'><network name='lan' vlan='300'/>"
                 "</hardware-plan>"
                 "<tenant name='acme'><subscribe plan='small'/><subscribe plan='large'/>"
                 "<subscribe plan='again'/><subscribe plan='dr'/>"
                 "<public-ip-rule host='esx1' public='203.0.113.1:443' replica='10.0.0.1:443'/>"
                 "</tenant>"
                 "<tenant name='globex'><subscribe plan='other'/></tenant>" NX_PLAN_TAIL;

static struct nx_model *model;
static struct nx_desired *desired;

static const struct nx_appliance_spec *find(const struct nx_desired *d, const char *tenant,
                                            const char *host)
{
    for (size_t i = 0; i < d->n; i++)
        if (!strcmp(d->items[i]->tenant->name, tenant) && !strcmp(d->items[i]->host->name, host))
            return d->items[i];
    return NULL;
}

/* The desired state with its payloads and digests (without tunnel
 * credentials), as a run that attaches none sees it. */
static struct nx_desired *desired_of(const struct nx_model *m, const struct nx_mac_range *const *r)
{
    struct nx_desired *d = nx_desired_compute(m, r);
    nx_payload_render_all(d, m);
    return d;
}

static void setup(void)
{
    struct nx_diag diag;
    model = nx_test_model(seed_plan, &diag);
    CU_ASSERT_EQUAL_FATAL(diag.n, 0);
    nx_diag_release(&diag);
    desired = desired_of(model, NULL);
}

static void teardown(void)
{
    nx_desired_free(desired);
    nx_model_free(model);
}

static void test_seed_example(void)
{
    setup();
    CU_ASSERT_EQUAL(desired->n, 3); /* acme@esx1, acme@esx2, globex@esx1 */
    const struct nx_appliance_spec *a = find(desired, "acme", "esx1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    /* 1 production + 5 VLANs; VLAN 101 from two plans is one vNIC */
    CU_ASSERT_EQUAL(a->n_vnics, 6);
    CU_ASSERT_EQUAL(a->vnics[0].kind, NX_VNIC_PRODUCTION);
    CU_ASSERT_STRING_EQUAL(a->vnics[0].network, "prod");
    unsigned want[] = {101, 102, 201, 202, 203};
    for (size_t i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(a->vnics[i + 1].kind, NX_VNIC_VLAN);
        CU_ASSERT_EQUAL(a->vnics[i + 1].vlan, want[i]);
        CU_ASSERT_STRING_EQUAL(a->vnics[i + 1].network, "vlans");
    }
    const struct nx_appliance_spec *b = find(desired, "acme", "esx2");
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_EQUAL(b->n_vnics, 2);
    const struct nx_appliance_spec *g = find(desired, "globex", "esx1");
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->n_vnics, 2);
    /* placement defaults */
    CU_ASSERT_STRING_EQUAL(a->placement.folder, "Cloud_Connect_Replication");
    CU_ASSERT_STRING_EQUAL(a->placement.resource_pool, "Cloud_Connect_Replication");
    CU_ASSERT_PTR_NULL(a->placement.datastore);
    CU_ASSERT_PTR_NULL(a->addr); /* DHCP */
    teardown();
}

static void test_macs(void)
{
    setup();
    /* unique, unicast, locally administered, and the same on every run */
    struct nx_desired *again = desired_of(model, NULL);
    size_t total = 0;
    for (size_t i = 0; i < desired->n; i++) {
        const struct nx_appliance_spec *s = desired->items[i];
        for (size_t j = 0; j < s->n_vnics; j++) {
            const uint8_t *mac = s->vnics[j].mac;
            CU_ASSERT_EQUAL(mac[0], 0x02);
            CU_ASSERT_EQUAL(memcmp(mac, again->items[i]->vnics[j].mac, 6), 0);
            total++;
            for (size_t k = 0; k < desired->n; k++)
                for (size_t l = 0; l < desired->items[k]->n_vnics; l++)
                    if (k != i || l != j)
                        CU_ASSERT_NOT_EQUAL(memcmp(mac, desired->items[k]->vnics[l].mac, 6), 0);
        }
    }
    CU_ASSERT_EQUAL(total, 10);
    nx_desired_free(again);
    /* a narrow provider range (vSphere-like: 00:50:56, 22 bits) is honoured,
     * and collisions in a tiny range are resolved (8 bits: 256 MACs) */
    struct nx_mac_range narrow = {{0x00, 0x50, 0x56, 0x00, 0x00, 0x00}, 22};
    struct nx_mac_range tiny = {{0x00, 0x50, 0x56, 0x3f, 0xff, 0x00}, 8};
    const struct nx_mac_range *r1[] = {&narrow, &narrow}, *r2[] = {&tiny, &tiny};
    struct nx_desired *n1 = desired_of(model, r1);
    struct nx_desired *n2 = desired_of(model, r2);
    for (size_t i = 0; i < n1->n; i++)
        for (size_t j = 0; j < n1->items[i]->n_vnics; j++) {
            const uint8_t *mac = n1->items[i]->vnics[j].mac;
            CU_ASSERT(mac[0] == 0 && mac[1] == 0x50 && mac[2] == 0x56 && mac[3] <= 0x3f);
        }
    for (size_t i = 0; i < n2->n; i++)
        for (size_t j = 0; j < n2->items[i]->n_vnics; j++) {
            const uint8_t *mac = n2->items[i]->vnics[j].mac;
            CU_ASSERT(mac[3] == 0x3f && mac[4] == 0xff);
            for (size_t k = 0; k < n2->n; k++)
                for (size_t l = 0; l < n2->items[k]->n_vnics; l++)
                    if (k != i || l != j)
                        CU_ASSERT_NOT_EQUAL(memcmp(mac, n2->items[k]->vnics[l].mac, 6), 0);
        }
    nx_desired_free(n1);
    nx_desired_free(n2);
    teardown();
}

static void test_payload(void)
{
    setup();
    const struct nx_appliance_spec *a = find(desired, "acme", "esx1");
    const struct nx_appliance_spec *b = find(desired, "acme", "esx2");
    CU_ASSERT(strstr(a->payload, "role=\"provider\" tenant=\"acme\" host=\"esx1\"") != NULL);
    CU_ASSERT(strstr(a->payload, "<gateway address=\"gw.example.com\" port=\"6180\"/>") != NULL);
    CU_ASSERT(strstr(a->payload, "public=\"203.0.113.1:443\"") != NULL);
    CU_ASSERT(strstr(b->payload, "public-ip-rule") == NULL); /* the rule is for esx1 */
    CU_ASSERT(strstr(a->payload, "<dhcp/>") != NULL);
    char hex[65];
    nx_sha256_hex(a->payload, a->payload_len, hex);
    CU_ASSERT_STRING_EQUAL(hex, a->digest);
    CU_ASSERT_STRING_NOT_EQUAL(a->digest, b->digest);
    /* the payload is a well-formed document */
    xmlDocPtr doc = nx_xml_read_memory(a->payload, a->payload_len, "payload", NX_EX_DATAERR);
    CU_ASSERT_PTR_NOT_NULL(doc);
    xmlFreeDoc(doc);
    teardown();

    /* hostile names are escaped */
    struct nx_diag d;
    struct nx_model *m = nx_test_model(
        NX_PLAN_HEAD
        "<gateway address='gw'/><host name='h&lt;1&gt;' uri='test:///default' "
        "production-network='p&amp;q' vlan-switch='v'/>"
        "<hardware-plan name='p' host='h&lt;1&gt;'><network name='&quot;x&apos;' "
        "vlan='9'/></hardware-plan>"
        "<tenant name='A&amp;B &lt;evil&gt; Ü'><subscribe plan='p'/></tenant>" NX_PLAN_TAIL,
        &d);
    CU_ASSERT_EQUAL_FATAL(d.n, 0);
    /* the desired state renders no payload: payload.c does, once */
    struct nx_desired *bare = nx_desired_compute(m, NULL);
    CU_ASSERT_EQUAL_FATAL(bare->n, 1);
    CU_ASSERT_PTR_NULL(bare->items[0]->payload);
    CU_ASSERT_STRING_EQUAL(bare->items[0]->digest, "");
    nx_desired_free(bare);
    struct nx_desired *des = desired_of(m, NULL);
    CU_ASSERT_EQUAL_FATAL(des->n, 1);
    const char *p = des->items[0]->payload;
    CU_ASSERT(strstr(p, "tenant=\"A&amp;B &lt;evil&gt; Ü\"") != NULL);
    CU_ASSERT(strstr(p, "name=\"&quot;x&apos;\"") != NULL);
    CU_ASSERT(strstr(p, "<evil") == NULL);
    doc = nx_xml_read_memory(p, strlen(p), "payload", NX_EX_DATAERR);
    CU_ASSERT_PTR_NOT_NULL(doc);
    xmlFreeDoc(doc);
    nx_desired_free(des);
    nx_model_free(m);
    nx_diag_release(&d);
}

/* ---- diff ---------------------------------------------------------------- */

static struct nx_appliance_obs *obs_from(const struct nx_appliance_spec *s, const char *id)
{
    struct nx_appliance_obs *o = nx_calloc(1, sizeof(*o));
    o->id = nx_strdup(id);
    o->name = nx_strdup(s->name);
    nx_marker_from_spec(&o->marker, s);
    o->powered_on = true;
    for (size_t i = 0; i < s->n_vnics; i++) {
        struct nx_vnic_obs *v = nx_obs_add_vnic(o);
        memcpy(v->mac, s->vnics[i].mac, 6);
        v->vlan = s->vnics[i].vlan;
        v->network = nx_strdup(s->vnics[i].network);
    }
    return o;
}

static size_t count(const struct nx_actions *a, enum nx_action_kind k)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n; i++)
        n += a->items[i].kind == k;
    return n;
}

static void test_diff_create_and_noop(void)
{
    setup();
    struct nx_obs_list obs = {0};
    struct nx_actions act;
    struct nx_scope all = {NX_ROLE_PROVIDER, NULL, model};
    nx_diff(desired, &obs, &all, &act);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_CREATE), 3);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_POWER_ON), 3);
    CU_ASSERT_EQUAL(act.n, 6);
    /* ordered: create before power-on for the same appliance */
    CU_ASSERT_EQUAL(act.items[0].kind, NX_ACT_CREATE);
    CU_ASSERT_EQUAL(act.items[1].kind, NX_ACT_POWER_ON);
    CU_ASSERT_PTR_EQUAL(act.items[0].spec, act.items[1].spec);
    nx_actions_release(&act);
    /* everything exists as desired: nothing to do */
    for (size_t i = 0; i < desired->n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "id%zu", i);
        nx_obs_list_add(&obs, obs_from(desired->items[i], id));
    }
    nx_diff(desired, &obs, &all, &act);
    CU_ASSERT_EQUAL(act.n, 0);
    nx_actions_release(&act);
    nx_obs_list_release(&obs);
    teardown();
}

static void test_diff_drift(void)
{
    setup();
    const struct nx_appliance_spec *a = find(desired, "acme", "esx1");
    struct nx_obs_list obs = {0};
    struct nx_appliance_obs *o = obs_from(a, "vm-1");
    /* lose VLAN 202, gain a stray VLAN 999, old payload, powered off */
    free(o->vnics[4].network);
    free(o->vnics[4].id);
    o->vnics[4] = o->vnics[--o->n_vnics]; /* the last entry moves into slot 4 */
    struct nx_vnic_obs *stray = nx_obs_add_vnic(o);
    stray->vlan = 999;
    stray->network = nx_strdup("vlans");
    memset(o->marker.digest, '0', 64);
    o->powered_on = false;
    nx_obs_list_add(&obs, o);
    const char *only[] = {"acme", NULL};
    struct nx_scope sc = {NX_ROLE_PROVIDER, only, model};
    struct nx_actions act;
    nx_diff(desired, &obs, &sc, &act);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_ADD_VNIC), 1);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_REMOVE_VNIC), 1);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_SET_PAYLOAD), 1);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_POWER_ON), 2); /* esx1 appliance + new esx2 one */
    CU_ASSERT_EQUAL(count(&act, NX_ACT_CREATE), 1); /* acme@esx2 */
    CU_ASSERT_EQUAL(count(&act, NX_ACT_REMOVE), 0); /* globex is out of scope */
    for (size_t i = 0; i < act.n; i++) {
        if (act.items[i].kind == NX_ACT_ADD_VNIC)
            CU_ASSERT_EQUAL(act.items[i].vnic->vlan, 202);
        if (act.items[i].kind == NX_ACT_REMOVE_VNIC)
            CU_ASSERT_EQUAL(act.items[i].ovnic->vlan, 999);
        CU_ASSERT_STRING_EQUAL(act.items[i].spec->tenant->name, "acme");
    }
    nx_actions_release(&act);
    nx_obs_list_release(&obs);
    teardown();
}

/* The image: none configured changes nothing; a configured one that the
 * appliance does not carry is one set-image, before the payload (whose
 * marker then names the image truly) and power; the desired state carries
 * the model's image. */
static void test_diff_image(void)
{
    setup();
    struct nx_image img = {.size = 1};
    memcpy(img.id, "00112233445566ff", 17);
    model->image = &img;
    nx_desired_free(desired);
    desired = desired_of(model, NULL);
    const struct nx_appliance_spec *a = find(desired, "acme", "esx1");
    CU_ASSERT_PTR_EQUAL(a->image, &img);
    struct nx_obs_list obs = {0};
    struct nx_appliance_obs *o = obs_from(a, "vm-1");
    CU_ASSERT_STRING_EQUAL(o->marker.image, "00112233445566ff"); /* nx_marker_from_spec */
    o->marker.image[0] = '\0';
    memset(o->marker.digest, '0', 64);
    o->powered_on = false;
    nx_obs_list_add(&obs, o);
    const char *only[] = {"acme", NULL};
    struct nx_scope sc = {NX_ROLE_PROVIDER, only, model};
    struct nx_actions act;
    nx_diff(desired, &obs, &sc, &act);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_SET_IMAGE), 1);
    size_t pay = act.n, img_at = act.n, pow = act.n;
    for (size_t i = 0; i < act.n; i++) {
        if (act.items[i].obs != o)
            continue;
        if (act.items[i].kind == NX_ACT_SET_PAYLOAD)
            pay = i;
        else if (act.items[i].kind == NX_ACT_SET_IMAGE)
            img_at = i;
        else if (act.items[i].kind == NX_ACT_POWER_ON)
            pow = i;
    }
    CU_ASSERT(img_at < pay && pay < pow && pow < act.n);
    CU_ASSERT_STRING_EQUAL(nx_action_name(NX_ACT_SET_IMAGE), "set-image");
    nx_actions_release(&act);
    /* carrying it: nothing about the image */
    memcpy(o->marker.image, img.id, 17);
    nx_diff(desired, &obs, &sc, &act);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_SET_IMAGE), 0);
    nx_actions_release(&act);
    /* no image configured: whatever the appliance boots stays */
    model->image = NULL;
    nx_desired_free(desired);
    desired = desired_of(model, NULL);
    memcpy(o->marker.image, "ffffffffffffffff", 17);
    nx_diff(desired, &obs, &sc, &act);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_SET_IMAGE), 0);
    nx_actions_release(&act);
    nx_obs_list_release(&obs);
    teardown();
}

static void test_diff_duplicates_orphans(void)
{
    setup();
    const struct nx_appliance_spec *a = find(desired, "acme", "esx1");
    const struct nx_appliance_spec *g = find(desired, "globex", "esx1");
    struct nx_obs_list obs = {0};
    /* two copies of acme@esx1 (an interrupted run): the complete one is kept */
    struct nx_appliance_obs *partial = obs_from(a, "vm-a");
    partial->n_vnics = 2;
    for (size_t i = 2; i < a->n_vnics; i++)
        free(partial->vnics[i].network);
    nx_obs_list_add(&obs, partial);
    nx_obs_list_add(&obs, obs_from(a, "vm-b"));
    /* an appliance of acme on a host it no longer uses: orphan */
    struct nx_appliance_obs *orphan = obs_from(a, "vm-c");
    free(orphan->marker.host);
    orphan->marker.host = nx_strdup("esx9");
    nx_obs_list_add(&obs, orphan);
    /* globex (out of scope) and an appliance from a newer version */
    nx_obs_list_add(&obs, obs_from(g, "vm-g"));
    struct nx_appliance_obs *newer = obs_from(a, "vm-n");
    newer->marker.revision = NX_MODEL_REVISION + 1;
    nx_obs_list_add(&obs, newer);

    const char *only[] = {"acme", NULL};
    struct nx_scope sc = {NX_ROLE_PROVIDER, only, model};
    struct nx_actions act;
    nx_diff(desired, &obs, &sc, &act);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_REMOVE), 2);
    bool removed_partial = false, removed_orphan = false;
    for (size_t i = 0; i < act.n; i++) {
        const struct nx_action *x = &act.items[i];
        if (x->kind != NX_ACT_REMOVE)
            continue;
        removed_partial |= x->obs == partial;
        removed_orphan |= x->obs == orphan;
        CU_ASSERT(x->obs != newer);
    }
    CU_ASSERT(removed_partial && removed_orphan);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_ADD_VNIC), 0); /* vm-b is complete */
    CU_ASSERT_EQUAL(act.n_skipped, 1);
    CU_ASSERT_PTR_EQUAL(act.skipped[0], newer);
    nx_actions_release(&act);

    /* unsubscribe: nothing desired for acme; globex untouched */
    struct nx_desired empty = {0};
    nx_diff(&empty, &obs, &sc, &act);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_REMOVE), 3);
    CU_ASSERT_EQUAL(act.n, 3);
    for (size_t i = 0; i < act.n; i++)
        CU_ASSERT_STRING_EQUAL(act.items[i].obs->marker.tenant, "acme");
    nx_actions_release(&act);
    nx_obs_list_release(&obs);
    teardown();
}

static void test_diff_subscription_change(void)
{
    /* a plan gains a network and loses one: exactly those vNICs change */
    struct nx_diag d;
    const char *before = NX_PLAN_HEAD
        "<gateway address='gw'/><host name='h' uri='test:///default' production-network='p' "
        "vlan-switch='v'/><hardware-plan name='x' host='h'><network name='a' vlan='10'/>"
        "<network name='b' vlan='11'/></hardware-plan>"
        "<tenant name='t'><subscribe plan='x'/></tenant>" NX_PLAN_TAIL;
    const char *after = NX_PLAN_HEAD
        "<gateway address='gw'/><host name='h' uri='test:///default' production-network='p' "
        "vlan-switch='v'/><hardware-plan name='x' host='h'><network name='a' vlan='10'/>"
        "<network name='c' vlan='12'/></hardware-plan>"
        "<tenant name='t'><subscribe plan='x'/></tenant>" NX_PLAN_TAIL;
    struct nx_model *m1 = nx_test_model(before, &d);
    nx_diag_release(&d);
    struct nx_model *m2 = nx_test_model(after, &d);
    nx_diag_release(&d);
    struct nx_desired *d1 = desired_of(m1, NULL), *d2 = desired_of(m2, NULL);
    struct nx_obs_list obs = {0};
    nx_obs_list_add(&obs, obs_from(d1->items[0], "vm"));
    struct nx_scope sc = {NX_ROLE_PROVIDER, NULL, m2};
    struct nx_actions act;
    nx_diff(d2, &obs, &sc, &act);
    CU_ASSERT_EQUAL(act.n, 3); /* remove 11, add 12, new payload */
    CU_ASSERT_EQUAL(count(&act, NX_ACT_REMOVE_VNIC), 1);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_ADD_VNIC), 1);
    CU_ASSERT_EQUAL(count(&act, NX_ACT_SET_PAYLOAD), 1);
    CU_ASSERT_EQUAL(act.items[0].kind, NX_ACT_REMOVE_VNIC);
    CU_ASSERT_EQUAL(act.items[0].ovnic->vlan, 11);
    CU_ASSERT_EQUAL(act.items[1].vnic->vlan, 12);
    /* the unchanged vNIC keeps its MAC across the change */
    CU_ASSERT_EQUAL(memcmp(d1->items[0]->vnics[1].mac, d2->items[0]->vnics[1].mac, 6), 0);
    nx_actions_release(&act);
    nx_obs_list_release(&obs);
    nx_desired_free(d1);
    nx_desired_free(d2);
    nx_model_free(m1);
    nx_model_free(m2);
}

static CU_TestInfo tests[] = {
    {"seed example: 2+3 networks -> 6 vNICs; two hosts -> two appliances", test_seed_example},
    {"MACs: deterministic, unique, in the provider's range", test_macs},
    {"payload: content, digest, escaping", test_payload},
    {"diff: create, then nothing to do", test_diff_create_and_noop},
    {"diff: vNIC, payload and power drift; tenant scope", test_diff_drift},
    {"diff: duplicates, orphans, newer revisions, unsubscribe", test_diff_duplicates_orphans},
    {"diff: the appliance image", test_diff_image},
    {"diff: a plan gains and loses a network", test_diff_subscription_change},
    CU_TEST_INFO_NULL,
};

NX_TEST_MAIN("desired state and diff", tests)
