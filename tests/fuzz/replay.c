/* replay.c: run a fuzz target over files and directories of inputs, and over
 * deterministic mutations of each (truncations, bit flips, byte runs), so
 * that make check exercises every parser on hostile input without libFuzzer.
 * Usage: replay-TARGET [-m MUTATIONS] PATH... ; prints one summary line. */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned long runs;
static unsigned mutations = 64;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void one(const uint8_t *data, size_t size)
{
    /* a private copy: targets must not rely on anything beyond size */
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    LLVMFuzzerTestOneInput(copy, size);
    free(copy);
    runs++;
}

static void mutate(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size + 64);
    for (unsigned i = 0; i < mutations; i++) {
        size_t n = size;
        memcpy(buf, data, size);
        switch (i % 4) {
        case 0: /* truncate */
            n = size ? rng() % size : 0;
            break;
        case 1: /* flip bits */
            for (int k = 0; k < 4 && size; k++)
                buf[rng() % size] ^= (uint8_t)(1u << (rng() % 8));
            break;
        case 2: { /* overwrite a run with markup */
            static const char *const runs_[] = {"<",   ">",    "&",      "\"",       "'",
                                                "]]>", "<!--", "&#0;",   "\xff\xfe", "%00",
                                                "{{",  "}}",   "{{#x}}", "\n"};
            const char *r = runs_[rng() % (sizeof(runs_) / sizeof(*runs_))];
            size_t at = size ? rng() % size : 0, l = strlen(r);
            if (at + l <= size)
                memcpy(buf + at, r, l);
            break;
        }
        case 3: /* duplicate a slice at the end */
            if (size) {
                size_t at = rng() % size, l = rng() % 64;
                if (at + l > size)
                    l = size - at;
                memcpy(buf + size, data + at, l);
                n = size + l;
            }
            break;
        }
        one(buf, n);
    }
    free(buf);
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    struct stat st;
    fstat(fileno(f), &st);
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    size_t got = fread(data, 1, size, f);
    fclose(f);
    one(data, got);
    mutate(data, got);
    free(data);
    return 0;
}

static int run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    DIR *d = opendir(path);
    struct dirent *de;
    int rc = 0;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = malloc(strlen(path) + strlen(de->d_name) + 2);
        sprintf(p, "%s/%s", path, de->d_name);
        rc |= run_path(p);
        free(p);
    }
    if (d)
        closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    int i = 1, rc = 0;
    if (argc > 2 && !strcmp(argv[1], "-m")) {
        mutations = (unsigned)strtoul(argv[2], NULL, 10);
        i = 3;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: %s [-m MUTATIONS] PATH...\n", argv[0]);
        return 64;
    }
    for (; i < argc; i++)
        rc |= run_path(argv[i]);
    printf("%s: %lu inputs run, no crash\n", argv[0], runs);
    return rc ? 1 : 0;
}
