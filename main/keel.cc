// keel: the composition root. Subcommands wire a real or simulated Env into nodes.
#include <cstdio>
#include <cstring>

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: keel <command> [options]\n"
               "  version            print the build id\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  if (std::strcmp(argv[1], "version") == 0) {
    std::printf("keel %s\n", KEEL_BUILD_ID);
    return 0;
  }
  return usage();
}
