// libFuzzer's driver entry, for executables that keep their own main.
// Only referenced when built with -sanitize=fuzzer (-DVIREO_LIBFUZZER);
// an ordinary build never calls it, so nothing needs to define it there.
#ifndef CVIREOFUZZ_H
#define CVIREOFUZZ_H
#include <stddef.h>
#include <stdint.h>

typedef int (*vireo_fuzz_callback)(const uint8_t *data, size_t size);

/// libFuzzer (compiler-rt): parses libFuzzer flags from argc/argv and runs
/// `callback` on each input. Defined in libclang_rt.fuzzer.
int LLVMFuzzerRunDriver(int *argc, char ***argv, vireo_fuzz_callback callback);

#endif
