// keel: the composition root. Subcommands wire a real or simulated Env into nodes.
#include <chrono>
#include <cstdio>
#include <cstring>

#include "build_id.h"  // generated: KEEL_BUILD_ID (cmake/BuildId.cmake)
#include "sim/cli.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: keel <command> [options]\n"
               "  version            print the build id\n"
               "  sim                run seeded simulations (keel sim --help)\n");
  return 2;
}

// Wall time for speed figures only: read here, outside the simulated world.
double wall_seconds() {
  using Clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  if (std::strcmp(argv[1], "version") == 0) {
    std::printf("keel %s\n", KEEL_BUILD_ID);
    return 0;
  }
  if (std::strcmp(argv[1], "sim") == 0) {
    keel::sim::CliContext ctx;
    ctx.binary = argv[0];
    ctx.build_id = KEEL_BUILD_ID;
    ctx.wall_seconds = wall_seconds;
    return keel::sim::sim_main(argc - 1, argv + 1, ctx);
  }
  return usage();
}
