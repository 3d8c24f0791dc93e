// Always-on invariant checks. A broken invariant is a bug, not an operating error: it
// crashes the process with a message (errors that happen in operation are absl::Status).
#pragma once

#include <fmt/core.h>

#include <cstdio>
#include <cstdlib>

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

// Planted bugs (docs/simulation.md): compiled in only with -DKEEL_PLANT_BUG=<name>, so the
// simulator can be shown to catch each classic mistake. KEEL_PLANTED(name) is a constant.
#define KEEL_PLANTED(name) (KEEL_PLANTED_IMPL_(KEEL_PLANT_BUG_##name))
#define KEEL_PLANTED_IMPL_(x) (x + 0 == 1)
