// Always-on invariant checks. A broken invariant is a bug, not an operating error: it
// crashes the process with a message (errors that happen in operation are absl::Status).
#pragma once

#include <fmt/core.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace keel::base {

[[noreturn]] inline void check_failed(const char* file, int line, const char* expr,
                                      const std::string& message) {
  std::fprintf(stderr, "%s:%d: CHECK failed: %s %s\n", file, line, expr, message.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace keel::base

// KEEL_CHECK(cond) or KEEL_CHECK(cond, "fmt {}", args...): crash with a message if false.
#define KEEL_CHECK(cond, ...)                                                               \
  do {                                                                                      \
    if (!(cond)) [[unlikely]] {                                                             \
      ::keel::base::check_failed(__FILE__, __LINE__, #cond, ::fmt::format("" __VA_ARGS__)); \
    }                                                                                       \
  } while (0)

#define KEEL_CHECK_EQ(a, b) KEEL_CHECK((a) == (b), "{} != {}", (a), (b))
#define KEEL_CHECK_LE(a, b) KEEL_CHECK((a) <= (b), "{} > {}", (a), (b))
#define KEEL_CHECK_LT(a, b) KEEL_CHECK((a) < (b), "{} >= {}", (a), (b))
#define KEEL_UNREACHABLE() ::keel::base::check_failed(__FILE__, __LINE__, "unreachable", "")

// Planted bugs (docs/simulation.md): a build configured with -DKEEL_PLANT_BUGS=ON compiles in
// a handful of classic consensus bugs, each off until chosen at run time with
// set_planted_bug(name) (`keel sim --plant NAME`), so the simulator can be shown to catch
// each one. In every other build KEEL_PLANTED(name) is the constant false.
namespace keel::base {
// The chosen bug ("" for none). Set once, before any node starts.
void set_planted_bug(std::string name);
bool planted_bug(const char* name);
}  // namespace keel::base

#if defined(KEEL_PLANT_BUGS)
#define KEEL_PLANTED(name) (::keel::base::planted_bug(#name))
#else
#define KEEL_PLANTED(name) false
#endif
