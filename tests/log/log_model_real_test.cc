// The same model-based test on real files (disk/PosixDisk in a temporary directory): shows
// that the real disk keeps the promises the simulated one is modelled on, for everything a
// process can do to it (restarts at any point, syncs in flight). Power loss cannot be
// injected on a real disk, so Crash commands restart the process only.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "base/check.h"
#include "disk/posix_disk.h"
#include "net/event_loop.h"
#include "tests/log/log_model_util.h"

namespace keel::log::testing {
namespace {

class PosixHarness final : public DiskHarness {
 public:
  PosixHarness() {
    char templ[] = "/tmp/keel-log-model-XXXXXX";
    const char* made = mkdtemp(templ);
    KEEL_CHECK(made != nullptr);
    root_ = made;
    loop_ = std::move(*net::EventLoop::create());
    auto disk = disk::PosixDisk::open(*loop_, root_);
    KEEL_CHECK(disk.ok());
    disk_ = std::move(*disk);
  }
  ~PosixHarness() override {
    disk_.reset();
    run_until_idle();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  env::Disk& disk() override { return *disk_; }
  void run_until_idle() override {
    for (int i = 0; i < 1'000'000; i++) {
      bool busy = disk_ && disk_->syncs_in_flight() > 0;
      size_t ran = loop_->run_once(busy ? std::chrono::milliseconds(1) : Nanos(0));
      if (!busy && ran == 0) return;
    }
    ADD_FAILURE() << "event loop did not go idle";
  }
  void run_some(int events) override {
    for (int i = 0; i < events; i++) loop_->run_once(Nanos(0));
  }
  bool crash() override { return false; }
  bool corrupt(const std::string&, uint32_t, int) override { return false; }
  bool corrupted() const override { return false; }

 private:
  using Nanos = std::chrono::nanoseconds;
  std::string root_;
  std::unique_ptr<net::EventLoop> loop_;
  std::unique_ptr<disk::PosixDisk> disk_;
};

TEST(LogModel, RealFiles) {
  ModelParams params;
  params.options.segment_bytes_max = 1200;
  params.options.batch_bytes_max = 600;
  params.options.write_buffer_bytes_max = 1500;
  params.options.index_interval_bytes = 200;
  params.options.checkpoint_interval_bytes = 300;
  params.options.open_files_max = 3;
  run_model_property(
      "LogModel.RealFiles", [](uint64_t) { return std::make_unique<PosixHarness>(); }, params,
      std::getenv("KEEL_SOAK") ? 5'000 : 200, 40);
}

}  // namespace
}  // namespace keel::log::testing
