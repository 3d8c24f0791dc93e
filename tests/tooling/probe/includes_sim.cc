// Build probe (tests/tooling/tests.cmake): compiled exactly like a library in src/, which
// sees only src/ as include root. This include must not resolve, so the build fails.
#include "sim/scheduler.h"

namespace keel::probe {
int includes_sim() { return 0; }
}  // namespace keel::probe
