// `keel sim ...`: the command-line driver over sim/scenario.h, kept out of main/ so tests can
// call it in-process. The wall clock is the caller's (the composition root measures speed;
// nothing inside the simulated world reads it).
#pragma once

#include <cstdio>
#include <functional>
#include <string>

namespace keel::sim {

struct CliContext {
  std::string binary = "keel";  // argv[0], for the reproduce commands
  std::string build_id = "unknown";
  std::function<double()> wall_seconds;  // seconds since any fixed point; may be empty
  std::FILE* out = stdout;
  std::FILE* err = stderr;
};

// argv[0] is "sim". Returns the process exit code: 0 when every run passed, 1 on a checker
// violation (or a trace difference, for diff), 2 on bad usage.
int sim_main(int argc, char** argv, const CliContext& ctx);

// Compares two JSON-lines traces; prints the first differing event (with the one before it)
// or that they are identical. Returns 0 if identical, 1 if they differ, 2 on IO errors.
int diff_traces(const std::string& a, const std::string& b, std::FILE* out);

}  // namespace keel::sim
