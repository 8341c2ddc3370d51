#include <stddef.h>
#include <stdint.h>

// SwiftPM links an executable target with `--defsym main=<Module>_main`, so libFuzzer's own
// main is never pulled in. This is that symbol: it hands control to libFuzzer's driver with
// the Swift entry point (LLVMFuzzerInitialize is found by the driver as usual).
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

int WispFuzz_main(int argc, char **argv) {
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
