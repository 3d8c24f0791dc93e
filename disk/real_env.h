// RealEnv: everything one real node needs, wired together for the composition root (`keel
// serve`), tests and tools: an EventLoop, a RealClock and a TcpNetwork on it, a PosixDisk
// rooted at the node's data directory, a Random seeded by the caller, FaultPoints that never
// fire, and a Trace that prints lines to stderr.
//
// Lifetime: everything the node's Process created through the Env (streams, listeners,
// files, timers) must be destroyed before the RealEnv; the loop checks it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "disk/posix_disk.h"
#include "env/env.h"
#include "net/event_loop.h"
#include "net/real_clock.h"
#include "net/tcp_network.h"

namespace keel::disk {

// Real builds never force the rare paths the simulator explores.
class NeverFaults final : public env::FaultPoints {
 public:
  bool fire(const char* site) override { return false; }
};

// Prints "<wall time> <node> <kind> <detail>" lines to stderr when verbosity > 0.
class StderrTrace final : public env::Trace {
 public:
  StderrTrace(std::string node, int verbosity) : node_(std::move(node)), verbosity_(verbosity) {}
  void event(std::string_view kind, std::string_view detail) override;
  void set_verbosity(int verbosity) { verbosity_ = verbosity; }
  int verbosity() const { return verbosity_; }

 private:
  std::string node_;
  int verbosity_;
};

struct RealEnvOptions {
  std::string node = "n1";
  std::string data_dir;  // required
  uint64_t seed = 0;     // the caller's choice (see seed_from_os); print it for reproduction
  int trace_verbosity = 0;
  net::TcpOptions tcp;
  PosixDiskOptions disk;
};

class RealEnv {
 public:
  static absl::StatusOr<std::unique_ptr<RealEnv>> create(RealEnvOptions options);
  ~RealEnv();
  RealEnv(const RealEnv&) = delete;
  RealEnv& operator=(const RealEnv&) = delete;

  env::Env& env() { return *env_; }
  net::EventLoop& loop() { return *loop_; }
  net::RealClock& clock() { return *clock_; }
  net::TcpNetwork& network() { return *network_; }
  PosixDisk& disk() { return *disk_; }
  StderrTrace& trace() { return *trace_; }
  uint64_t seed() const { return seed_; }

 private:
  RealEnv() = default;

  // Declared in construction order; destroyed in reverse, the loop last.
  uint64_t seed_ = 0;
  std::unique_ptr<net::EventLoop> loop_;
  std::unique_ptr<net::RealClock> clock_;
  std::unique_ptr<net::TcpNetwork> network_;
  std::unique_ptr<PosixDisk> disk_;
  std::unique_ptr<env::Random> random_;
  std::unique_ptr<NeverFaults> faults_;
  std::unique_ptr<StderrTrace> trace_;
  std::unique_ptr<env::Env> env_;
};

// 64 random bits from the kernel (getrandom), for seeding a real node.
absl::StatusOr<uint64_t> seed_from_os();

}  // namespace keel::disk
