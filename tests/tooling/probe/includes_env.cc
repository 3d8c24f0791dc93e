// Build probe (tests/tooling/tests.cmake): the positive control for includes_sim.cc. The
// same setup, including an Env header as src/ code does, must build.
#include "env/env.h"

namespace keel::probe {
int includes_env() { return 0; }
}  // namespace keel::probe
