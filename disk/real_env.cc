#include "disk/real_env.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

#include "base/check.h"

namespace keel::disk {

void StderrTrace::event(std::string_view kind, std::string_view detail) {
  if (verbosity_ <= 0) return;
  const int64_t ms = net::wall_now_ms();
  const time_t seconds = time_t(ms / 1000);
  tm utc{};
  char stamp[32] = "?";
  if (gmtime_r(&seconds, &utc) != nullptr) {
    std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
  }
  // One fprintf per line: stdio locks the stream, so lines from several loops never mix.
  std::fprintf(stderr, "%s.%03dZ %s %.*s %.*s\n", stamp, int(ms % 1000), node_.c_str(),
               int(kind.size()), kind.data(), int(detail.size()), detail.data());
}

absl::StatusOr<std::unique_ptr<RealEnv>> RealEnv::create(RealEnvOptions options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("RealEnv needs a data_dir");
  std::unique_ptr<RealEnv> e(new RealEnv());
  e->seed_ = options.seed;
  auto loop = net::EventLoop::create();
  if (!loop.ok()) return loop.status();
  e->loop_ = std::move(*loop);
  e->clock_ = std::make_unique<net::RealClock>(*e->loop_);
  e->network_ = std::make_unique<net::TcpNetwork>(*e->loop_, options.tcp);
  auto disk = PosixDisk::open(*e->loop_, options.data_dir, options.disk);
  if (!disk.ok()) return disk.status();
  e->disk_ = std::move(*disk);
  e->random_ = std::make_unique<env::Random>(options.seed);
  e->faults_ = std::make_unique<NeverFaults>();
  e->trace_ = std::make_unique<StderrTrace>(options.node, options.trace_verbosity);
  e->env_ = std::make_unique<env::Env>(options.node, *e->clock_, *e->network_, *e->disk_,
                                       *e->random_, *e->faults_, *e->trace_);
  return e;
}

RealEnv::~RealEnv() {
  env_.reset();
  trace_.reset();
  faults_.reset();
  random_.reset();
  disk_.reset();
  network_.reset();
  clock_.reset();
  // Sync completions the disk's thread posted before it was joined may still be queued on
  // the loop: they are destroyed with it, never run.
  loop_.reset();
}

absl::StatusOr<uint64_t> seed_from_os() {
  uint64_t seed = 0;
  ssize_t n;
  do {
    n = getrandom(&seed, sizeof(seed), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return net::errno_status(errno, "getrandom");
  if (size_t(n) != sizeof(seed)) return absl::UnavailableError("getrandom: short read");
  return seed;
}

}  // namespace keel::disk
