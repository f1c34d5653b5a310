// Header-only module: LLVMFuzzerRunDriver comes from libFuzzer itself.
#include "CVireoFuzz.h"
