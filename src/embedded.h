/* embedded.h: files compiled into the program by src/embed.sh. */
#ifndef NX_EMBEDDED_H
#define NX_EMBEDDED_H

extern const char nx_plan_schema[];
extern const unsigned long nx_plan_schema_len;
extern const char nx_tmpl_libvirt_domain[];
extern const unsigned long nx_tmpl_libvirt_domain_len;

#endif
