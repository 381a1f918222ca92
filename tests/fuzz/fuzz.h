/* fuzz.h: the entry point every fuzz target defines (libFuzzer's). The same
 * sources build a libFuzzer binary (make fuzz) and a replay binary that runs
 * the seed corpus and mutations of it in make check (tests/fuzz/replay.c). */
#ifndef NX_FUZZ_H
#define NX_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
