/* vsphere_spec.c: the XML of ConfigSpecs (VirtualMachineConfigSpec), built
 * from the core's appliance spec and the placement layer's answers; no calls.
 *
 * - vNICs: vmxnet3 with a static MAC (the provider's range), backed by the
 *   standard or distributed portgroup carrying the VLAN on that host.
 * - Marker: extraConfig netext-deploy.marker (nx_marker_encode text).
 *   Payload: guestinfo.netext.payload (base64) + .encoding, as cloud-init's
 *   VMware datasource reads it.
 * - Appliance image: a VirtualCdrom holding "[DS] netext-deploy/<image name>"
 *   on the default IDE controller (or the VM's drive, or a free IDE unit), and
 *   boot from it (bootOrder). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "util.h"
#include "vsphere_spec.h"

#define APPLIANCE_MEMORY_MIB 512
#define APPLIANCE_GUEST_ID "otherLinux64Guest"

/* The key every new VM's first IDE controller has (ESXi and vCenter create
 * IDE 0 and 1, keys 200 and 201, with every VM; vcsim does the same). */
#define VS_DEFAULT_IDE "200"

void vs_spec_option(struct strbuf *sb, const char *key, const char *value)
{
    strbuf_addstr(sb, "<extraConfig>");
    nx_soap_add(sb, "key", key);
    strbuf_addstr(sb, "<value xsi:type=\"xsd:string\">");
    strbuf_add_xml_escaped(sb, value);
    strbuf_addstr(sb, "</value></extraConfig>");
}

/* The marker of spec with `image` (the id of the image the VM's drive holds
 * after this change; "" none), not necessarily spec's: a payload change does
 * not change the drive. */
char *vs_marker_text(const struct nx_appliance_spec *spec, const char *image)
{
    struct nx_marker m = {0};
    nx_marker_from_spec(&m, spec);
    nx_marker_set_image(&m, image);
    char *marker = nx_marker_encode(&m);
    nx_marker_release(&m);
    return marker;
}

void vs_spec_payload(struct strbuf *sb, const struct nx_appliance_spec *spec, const char *image)
{
    struct strbuf b64 = STRBUF_INIT;
    char *marker = vs_marker_text(spec, image);
    strbuf_add_base64(&b64, spec->payload ? spec->payload : "", spec->payload_len);
    vs_spec_option(sb, VS_MARKER_KEY, marker);
    vs_spec_option(sb, VS_PAYLOAD_KEY, b64.buf);
    vs_spec_option(sb, VS_ENCODING_KEY, "base64");
    strbuf_release(&b64);
    free(marker);
}

void vs_spec_nic(struct strbuf *sb, int key, const struct nx_vnic_spec *v,
                 const struct vs_backing *b)
{
    char mac[18];
    nx_format_mac(v->mac, mac);
    strbuf_addstr(sb, "<deviceChange><operation>add</operation>"
                      "<device xsi:type=\"VirtualVmxnet3\">");
    strbuf_addf(sb, "<key>%d</key><deviceInfo>", key);
    nx_soap_add(sb, "label", v->label);
    nx_soap_addf(sb, "summary", "%s", v->kind == NX_VNIC_PRODUCTION ? "production" : "tenant VLAN");
    strbuf_addstr(sb, "</deviceInfo>");
    if (b->switch_uuid) {
        strbuf_addstr(sb,
                      "<backing xsi:type=\"VirtualEthernetCardDistributedVirtualPortBackingInfo\">"
                      "<port>");
        nx_soap_add(sb, "switchUuid", b->switch_uuid);
        nx_soap_add(sb, "portgroupKey", b->net->pg_key);
        strbuf_addstr(sb, "</port></backing>");
    } else {
        strbuf_addstr(sb, "<backing xsi:type=\"VirtualEthernetCardNetworkBackingInfo\">");
        nx_soap_add(sb, "deviceName", b->net->name);
        nx_soap_add_moref(sb, "network", b->net->type, b->net->id);
        strbuf_addstr(sb, "</backing>");
    }
    strbuf_addstr(sb, "<connectable><startConnected>true</startConnected>"
                      "<allowGuestControl>true</allowGuestControl><connected>false</connected>"
                      "</connectable>");
    strbuf_addstr(sb, "<addressType>manual</addressType>");
    nx_soap_add(sb, "macAddress", mac);
    strbuf_addstr(sb, "</device></deviceChange>");
}

void vs_spec_remove_nic(struct strbuf *sb, const char *device_type, const char *key)
{
    strbuf_addstr(sb, "<deviceChange><operation>remove</operation><device xsi:type=\"");
    strbuf_add_xml_escaped(sb, device_type);
    strbuf_addstr(sb, "\">");
    nx_soap_add(sb, "key", key);
    strbuf_addstr(sb, "</device></deviceChange>");
}

/* "[DS] netext-deploy/<image name>" */
static char *image_file(const struct vs_obj *ds, const struct nx_image *img)
{
    return nx_asprintf("[%s] " VS_IMAGE_DIR "/%s", ds->name ? ds->name : "", img->name);
}

/* A VirtualCdrom holding img (op "add" or "edit"), connected at power-on. */
static void add_cdrom(struct strbuf *sb, const char *op, const char *key, const char *controller,
                      int unit, bool connected, const struct vs_obj *ds, const struct nx_image *img)
{
    char *file = image_file(ds, img);
    strbuf_addstr(sb, "<deviceChange>");
    nx_soap_add(sb, "operation", op);
    strbuf_addstr(sb, "<device xsi:type=\"VirtualCdrom\">");
    nx_soap_add(sb, "key", key);
    /* (vcsim fails an edit without deviceInfo) */
    strbuf_addstr(sb, "<deviceInfo><label>CD/DVD drive 1</label>");
    nx_soap_add(sb, "summary", file);
    strbuf_addstr(sb, "</deviceInfo><backing xsi:type=\"VirtualCdromIsoBackingInfo\">");
    nx_soap_add(sb, "fileName", file);
    nx_soap_add_moref(sb, "datastore", "Datastore", ds->id);
    strbuf_addstr(sb, "</backing>");
    strbuf_addf(sb,
                "<connectable><startConnected>true</startConnected>"
                "<allowGuestControl>false</allowGuestControl><connected>%s</connected>"
                "</connectable>",
                connected ? "true" : "false");
    nx_soap_add(sb, "controllerKey", controller);
    strbuf_addf(sb, "<unitNumber>%d</unitNumber>", unit);
    strbuf_addstr(sb, "</device></deviceChange>");
    free(file);
}

/* after extraConfig (the ConfigSpec's order): boot from the CD/DVD drive */
void vs_spec_boot_cdrom(struct strbuf *sb)
{
    strbuf_addstr(
        sb, "<bootOptions><bootOrder xsi:type=\"VirtualMachineBootOptionsBootableCdromDevice\"/>"
            "</bootOptions>");
}

int vs_spec_image_drive(struct strbuf *sb, const struct vs_obj *vm, bool powered_on,
                        const struct vs_obj *ds, const struct nx_image *img, bool *edit)
{
    *edit = false;
    if (vm && vm->cd.key && vm->cd.controller) {
        *edit = true;
        add_cdrom(sb, "edit", vm->cd.key, vm->cd.controller, vm->cd.unit, powered_on, ds, img);
        return 0;
    }
    /* a drive on the first free IDE unit */
    int slot = -1;
    for (int i = 0; i < 4 && slot < 0; i++)
        if (vm && vm->cd.ide[i / 2] && !(vm->cd.ide_used & (1u << i)))
            slot = i;
    if (vm && vm->cd.ide[0] && slot < 0)
        return -1;
    add_cdrom(sb, "add", "-10", slot >= 0 ? vm->cd.ide[slot / 2] : VS_DEFAULT_IDE,
              slot >= 0 ? slot % 2 : 0, powered_on, ds, img);
    return 0;
}

void vs_spec_create_vm(struct strbuf *sb, const struct nx_appliance_spec *spec,
                       const struct vs_resolved *r, const char *folder, const char *pool)
{
    nx_soap_begin(sb, "CreateVM_Task", "Folder", folder);
    strbuf_addstr(sb, "<config>");
    nx_soap_add(sb, "name", spec->name);
    nx_soap_add(sb, "guestId", APPLIANCE_GUEST_ID);
    nx_soap_addf(sb, "annotation", "netext-deploy appliance of tenant %s on host %s",
                 spec->tenant->name, spec->host->name);
    strbuf_addstr(sb, "<files>");
    nx_soap_addf(sb, "vmPathName", "[%s]", r->ds->name ? r->ds->name : "");
    strbuf_addstr(sb, "</files>");
    strbuf_addf(sb, "<numCPUs>1</numCPUs><memoryMB>%d</memoryMB>", APPLIANCE_MEMORY_MIB);
    for (size_t i = 0; i < spec->n_vnics; i++)
        vs_spec_nic(sb, -100 - (int)i, &spec->vnics[i], &r->nics[i]);
    if (spec->image)
        add_cdrom(sb, "add", "-10", VS_DEFAULT_IDE, 0, false, r->image_ds, spec->image);
    vs_spec_payload(sb, spec, spec->image ? spec->image->id : "");
    if (spec->image)
        vs_spec_boot_cdrom(sb);
    strbuf_addstr(sb, "</config>");
    nx_soap_add_moref(sb, "pool", "ResourcePool", pool);
    nx_soap_add_moref(sb, "host", "HostSystem", r->host->id);
    nx_soap_end(sb, "CreateVM_Task");
}
