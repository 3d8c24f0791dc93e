// Planted bugs in the raft tests: in a build configured with -DKEEL_PLANT_BUGS=ON, the
// environment variable KEEL_PLANT=<name> chooses the bug before any test runs, e.g.
//   KEEL_PLANT=commit_prev_term ./keel_raft_tests
// Every test or property that fails then is one that catches it (docs/raft.md).
#include <cstdlib>

#include "base/check.h"

#if defined(KEEL_PLANT_BUGS)
namespace {
const bool kPlantChosen = [] {
  if (const char* name = std::getenv("KEEL_PLANT")) keel::base::set_planted_bug(name);
  return true;
}();
}  // namespace
#endif
