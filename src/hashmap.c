/* hashmap.c: string-keyed open-addressing hash map with linear probing. */
#include "config.h"

#include "hashmap.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

void nx_map_init(struct nx_map *m)
{
    m->slots = NULL;
    m->cap = m->n = 0;
}

void nx_map_release(struct nx_map *m)
{
    free(m->slots);
    nx_map_init(m);
}

static size_t slot_of(const struct nx_map *m, const char *key)
{
    size_t i = (size_t)nx_hash64(key, strlen(key), 0) & (m->cap - 1);
    while (m->slots[i].key && strcmp(m->slots[i].key, key) != 0)
        i = (i + 1) & (m->cap - 1);
    return i;
}

void *nx_map_get(const struct nx_map *m, const char *key)
{
    if (!m->cap)
        return NULL;
    size_t i = slot_of(m, key);
    return m->slots[i].key ? m->slots[i].value : NULL;
}

static void rehash(struct nx_map *m, size_t cap)
{
    struct nx_map_slot *old = m->slots;
    size_t oldcap = m->cap;
    m->slots = nx_calloc(cap, sizeof(*m->slots));
    m->cap = cap;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].key)
            m->slots[slot_of(m, old[i].key)] = old[i];
    }
    free(old);
}

void *nx_map_put(struct nx_map *m, const char *key, void *value)
{
    if ((m->n + 1) * 4 > m->cap * 3)
        rehash(m, m->cap ? m->cap * 2 : 16);
    size_t i = slot_of(m, key);
    if (m->slots[i].key)
        return m->slots[i].value;
    m->slots[i].key = key;
    m->slots[i].value = value;
    m->n++;
    return NULL;
}
