/* hashmap.h: string-keyed open-addressing hash map (keys are borrowed).
 * Used so that every lookup by name is O(1) and cost grows linearly. */
#ifndef NX_HASHMAP_H
#define NX_HASHMAP_H

#include <stddef.h>

struct nx_map_slot {
    const char *key;
    void *value;
};

struct nx_map {
    struct nx_map_slot *slots;
    size_t cap, n;
};

void nx_map_init(struct nx_map *m);
void nx_map_release(struct nx_map *m);
void *nx_map_get(const struct nx_map *m, const char *key);
/* Insert; returns the existing value (and changes nothing) if key is present. */
void *nx_map_put(struct nx_map *m, const char *key, void *value);

#endif
