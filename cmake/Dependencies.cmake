# Every dependency is a Debian bookworm package. A missing one stops configuration with the
# name of the package that provides it (`make deps` installs them all).
macro(keel_require_package found_var debian_pkg what)
  if(NOT ${found_var})
    message(FATAL_ERROR "Keel needs ${what}: install the Debian package '${debian_pkg}' "
                        "(apt-get install ${debian_pkg}, or run `make deps`).")
  endif()
endmacro()

find_package(Protobuf QUIET)
keel_require_package(Protobuf_FOUND "libprotobuf-dev protobuf-compiler" "protobuf")
if(NOT Protobuf_PROTOC_EXECUTABLE)
  keel_require_package(FALSE "protobuf-compiler" "protoc")
endif()
find_package(fmt QUIET)
keel_require_package(fmt_FOUND "libfmt-dev" "fmt")
find_package(absl QUIET)
keel_require_package(absl_FOUND "libabsl-dev" "abseil")
find_package(zstd QUIET)
keel_require_package(zstd_FOUND "libzstd-dev" "zstd")
find_package(Threads REQUIRED)
if(NOT KEEL_FUZZ)
  find_package(GTest QUIET)
  keel_require_package(GTest_FOUND "libgtest-dev libgmock-dev" "GoogleTest")
  find_package(rapidcheck QUIET)
  keel_require_package(rapidcheck_FOUND "librapidcheck-dev" "rapidcheck")
  find_package(benchmark QUIET)
  keel_require_package(benchmark_FOUND "libbenchmark-dev" "Google Benchmark")
endif()
# The allocator of the `keel` binary and the benchmarks: the simulator allocates and frees
# millions of small objects a second, and glibc's malloc spent about 30% of `keel sim` on
# it (free() mostly past its small per-size caches). tcmalloc, from Debian, takes about a
# tenth off a chaos run's wall time (docs/benchmarks.md). Not with the sanitizers or
# libFuzzer, which bring their own allocator. src/ does not depend on it.
set(KEEL_MALLOC_LIBS "")
if(NOT KEEL_SANITIZE AND NOT KEEL_FUZZ)
  find_library(KEEL_TCMALLOC NAMES tcmalloc_minimal)
  keel_require_package(KEEL_TCMALLOC "libgoogle-perftools-dev" "tcmalloc")
  set(KEEL_MALLOC_LIBS ${KEEL_TCMALLOC})
endif()
