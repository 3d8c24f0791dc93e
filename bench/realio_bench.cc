// Real IO micro benchmarks: loopback TCP through TcpNetwork (bulk throughput, ping-pong round
// trip), PosixDisk append + fdatasync latency with completion on the loop, and timer churn.
//
//   ninja -C build keel_realio_bench && ./build/bench/keel_realio_bench
//
// Data files go to a fresh directory under $TMPDIR (default /tmp): fsync figures are only as
// meaningful as the file system that directory is on.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "disk/posix_disk.h"
#include "net/event_loop.h"
#include "net/real_clock.h"
#include "net/tcp_network.h"

namespace keel {
namespace {

using std::chrono::seconds;

std::unique_ptr<net::EventLoop> make_loop() {
  auto loop = net::EventLoop::create();
  if (!loop.ok()) std::abort();
  return std::move(*loop);
}

// A connected client/server pair on one loop.
struct Pair {
  std::unique_ptr<net::EventLoop> loop = make_loop();
  std::unique_ptr<net::TcpNetwork> network = std::make_unique<net::TcpNetwork>(*loop);
  std::unique_ptr<env::Listener> listener;
  std::unique_ptr<env::Stream> client;
  std::unique_ptr<env::Stream> server;
  uint64_t server_bytes = 0;
  uint64_t client_bytes = 0;

  Pair() {
    auto l = network->listen(env::Address{"127.0.0.1", 0}, [this](auto s) {
      server = std::move(s);
      server->set_handlers({.on_open = nullptr,
                            .on_data = [this](ByteView b) { on_server_data(b); },
                            .on_close = [](absl::Status) {}});
    });
    if (!l.ok()) std::abort();
    listener = std::move(*l);
    client = network->connect(listener->local_address());
    client->set_handlers({.on_open = nullptr,
                          .on_data = [this](ByteView b) { client_bytes += b.size(); },
                          .on_close = [](absl::Status) {}});
    if (!loop->run_until([&] { return server != nullptr; }, seconds(10))) std::abort();
  }
  ~Pair() {
    client.reset();
    server.reset();
    listener.reset();
    network.reset();
  }

  size_t echo_bytes = 0;  // when non-zero, the server answers each echo_bytes received
  void on_server_data(ByteView b) {
    server_bytes += b.size();
    if (echo_bytes == 0) return;
    static const Bytes reply(4096, 0x77);
    while (server_bytes >= echo_bytes) {
      server_bytes -= echo_bytes;
      (void)server->send(ByteView(reply.data(), echo_bytes));
    }
  }
};

void BM_LoopbackBulk(benchmark::State& state) {
  Pair pair;
  const Bytes chunk(size_t(state.range(0)), 0x42);
  constexpr uint64_t kBatch = 64 << 20;
  for (auto _ : state) {
    const uint64_t target = pair.server_bytes + kBatch;
    for (uint64_t sent = 0; sent < kBatch; sent += chunk.size()) {
      if (!pair.client->send(chunk).ok()) std::abort();
      // Keep the queue bounded: let the loop drain when it holds 8 MiB.
      if (pair.client->send_queue_bytes() > (8 << 20)) {
        pair.loop->run_until([&] { return pair.client->send_queue_bytes() < (4 << 20); },
                             seconds(30));
      }
    }
    if (!pair.loop->run_until([&] { return pair.server_bytes >= target; }, seconds(60))) {
      state.SkipWithError("timeout");
      break;
    }
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kBatch));
}
BENCHMARK(BM_LoopbackBulk)->Arg(4096)->Arg(65536)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LoopbackPingPong(benchmark::State& state) {
  Pair pair;
  pair.echo_bytes = size_t(state.range(0));
  const Bytes request(pair.echo_bytes, 0x11);
  for (auto _ : state) {
    const uint64_t want = pair.client_bytes + pair.echo_bytes;
    if (!pair.client->send(request).ok()) std::abort();
    if (!pair.loop->run_until([&] { return pair.client_bytes >= want; }, seconds(10))) {
      state.SkipWithError("timeout");
      break;
    }
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_LoopbackPingPong)->Arg(64)->Arg(4096)->Unit(benchmark::kMicrosecond)->UseRealTime();

struct TempData {
  std::string path;
  TempData() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr ? tmp : "/tmp") + "/keel-bench-XXXXXX";
    if (mkdtemp(templ.data()) == nullptr) std::abort();
    path = templ;
  }
  ~TempData() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// One append of range(0) bytes, then File::sync, waiting for the completion on the loop.
void BM_AppendSync(benchmark::State& state) {
  TempData dir;
  auto loop = make_loop();
  auto disk = disk::PosixDisk::open(*loop, dir.path + "/data");
  if (!disk.ok()) std::abort();
  auto file = (*disk)->open("log", env::OpenMode::kCreate);
  if (!file.ok()) std::abort();
  const Bytes record(size_t(state.range(0)), 0x33);
  for (auto _ : state) {
    if (!(*file)->append(record).ok()) std::abort();
    std::optional<absl::Status> done;
    (*file)->sync([&](absl::Status s) { done = s; });
    if (!loop->run_until([&] { return done.has_value(); }, seconds(60)) || !done->ok()) {
      state.SkipWithError("sync failed");
      break;
    }
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
  state.SetBytesProcessed(int64_t(state.iterations()) * state.range(0));
  file->reset();
}
BENCHMARK(BM_AppendSync)->Arg(4096)->Arg(1 << 20)->Unit(benchmark::kMicrosecond)->UseRealTime();

// range(0) appends each followed by sync() without waiting: queued syncs merge (group commit).
void BM_GroupCommit(benchmark::State& state) {
  TempData dir;
  auto loop = make_loop();
  auto disk = disk::PosixDisk::open(*loop, dir.path + "/data");
  if (!disk.ok()) std::abort();
  auto file = (*disk)->open("log", env::OpenMode::kCreate);
  if (!file.ok()) std::abort();
  const Bytes record(4096, 0x44);
  const int64_t batch = state.range(0);
  for (auto _ : state) {
    int64_t done = 0;
    for (int64_t i = 0; i < batch; i++) {
      if (!(*file)->append(record).ok()) std::abort();
      (*file)->sync([&](absl::Status s) {
        if (!s.ok()) std::abort();
        done++;
      });
    }
    if (!loop->run_until([&] { return done == batch; }, seconds(60))) {
      state.SkipWithError("timeout");
      break;
    }
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * batch);
  file->reset();
}
BENCHMARK(BM_GroupCommit)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_TimerStartCancel(benchmark::State& state) {
  auto loop = make_loop();
  net::RealClock clock(*loop);
  for (auto _ : state) {
    const env::TimerId id = clock.start_timer(seconds(1), [] {});
    clock.cancel_timer(id);
  }
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_TimerStartCancel);

}  // namespace
}  // namespace keel

BENCHMARK_MAIN();
