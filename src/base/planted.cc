#include <string>

#include "base/check.h"

namespace keel::base {
namespace {

// Process-wide configuration, written once before anything runs; not a source of
// nondeterminism (the same flag gives the same behaviour).
std::string& chosen() {
  static std::string name;
  return name;
}

}  // namespace

void set_planted_bug(std::string name) { chosen() = std::move(name); }

bool planted_bug(const char* name) { return !chosen().empty() && chosen() == name; }

}  // namespace keel::base
