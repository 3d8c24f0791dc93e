// Log benchmarks on real files (PosixDisk), each figure next to a baseline measured in the
// same run on the same disk:
//   append: batches appended, one sync (group commit) per `group` batches, vs raw pwrite +
//           fdatasync of the same bytes in the same groups and files of the same size,
//           the two interleaved in chunks so both meet the same disk; also a pipelined
//           mode that keeps appending while a sync is in flight;
//   read:   whole log read back in max_bytes chunks from the page cache (every batch CRC
//           verified) vs memcpy of the same bytes;
//   open:   Log::open of a log of --recovery-mib with its checkpoint (only the tail after it
//           is scanned) and with the checkpoint removed (everything scanned), time and RSS.
//
// Usage: keel_log_bench [--dir=/tmp] [--total-mib=256] [--batch-bytes=4096] [--group=64]
//                       [--recovery-mib=256] [--segment-mib=128] [--chunk-rounds=1]
//                       [--lockstep-only]
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "base/check.h"
#include "disk/posix_disk.h"
#include "log/batch.h"
#include "log/log.h"
#include "net/event_loop.h"

namespace {

using keel::Bytes;
using Clock = std::chrono::steady_clock;

struct Flags {
  std::string dir = "/tmp";
  uint64_t total_mib = 256;
  size_t batch_bytes = 4096;
  int group = 64;
  uint64_t recovery_mib = 256;
  bool lockstep_only = false;  // only the lock-step append comparison (profiling, repeats)
  uint64_t segment_mib = 128;  // segment size of the log, and file size of the raw baseline
  uint64_t chunk_rounds = 1;   // lock-step rounds of one side before the other takes over
};

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto val = [&](const char* name) -> const char* {
      size_t n = std::strlen(name);
      return a.compare(0, n, name) == 0 ? a.c_str() + n : nullptr;
    };
    if (auto v = val("--dir="))
      f.dir = v;
    else if (auto v = val("--total-mib="))
      f.total_mib = std::stoull(v);
    else if (auto v = val("--batch-bytes="))
      f.batch_bytes = std::stoul(v);
    else if (auto v = val("--group="))
      f.group = std::stoi(v);
    else if (auto v = val("--recovery-mib="))
      f.recovery_mib = std::stoull(v);
    else if (a == "--lockstep-only")
      f.lockstep_only = true;
    else if (auto v = val("--segment-mib="))
      f.segment_mib = std::stoull(v);
    else if (auto v = val("--chunk-rounds="))
      f.chunk_rounds = std::stoull(v);
    else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      std::exit(2);
    }
  }
  return f;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

long rss_kib() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// A batch of about `bytes` bytes (one record holding the value).
Bytes make_batch(size_t bytes, uint64_t tag) {
  keel::log::BatchSpec spec;
  spec.leader_epoch = 1;
  spec.base_timestamp = 1700000000000;
  Bytes value(bytes > 80 ? bytes - 80 : 1);
  for (size_t i = 0; i < value.size(); i++) value[i] = uint8_t((i * 131 + tag) >> 3);
  spec.records.push_back({std::nullopt, std::move(value), 0});
  return keel::log::build_batch(spec);
}

struct Rig {
  explicit Rig(const std::string& parent) {
    std::string templ = parent + "/keel-log-bench-XXXXXX";
    KEEL_CHECK(mkdtemp(templ.data()) != nullptr);
    root = templ;
    loop = std::move(*keel::net::EventLoop::create());
    disk = std::move(*keel::disk::PosixDisk::open(*loop, root));
  }
  ~Rig() {
    disk.reset();
    std::error_code ec;
    std::filesystem::remove_all(root, ec);
  }
  void run_until(const bool& done) {
    while (!done) loop->run_once(std::chrono::milliseconds(10));
  }
  std::string root;
  std::unique_ptr<keel::net::EventLoop> loop;
  std::unique_ptr<keel::disk::PosixDisk> disk;
};

keel::log::Options bench_options(uint64_t segment_mib = 128) {
  keel::log::Options o;
  o.segment_bytes_max = segment_mib << 20;
  o.batch_bytes_max = 1u << 20;  // the benchmark's batches are 4 or 16 KiB
  o.write_buffer_bytes_max = 32u << 20;
  return o;
}

// Where the time of lock-step rounds goes (seconds, summed over the rounds).
struct Split {
  double fill = 0;   // log: the appends of each group (raw: nothing to do)
  double write = 0;  // raw: pwrite; log: sync() until its callback (write + fdatasync + hops)
  double sync = 0;   // raw: fdatasync (and the directory fsync of a new file)
  double total() const { return fill + write + sync; }
};

// The raw baseline, shaped like the log's writes: the same bytes (a 4-byte frame header and
// the batch) in one pwrite per group, fdatasync after each group, and, like the log's
// segments, a new file every segment_bytes_max whose name is made durable (directory fsync)
// by the round that first writes it.
class RawWriter {
 public:
  RawWriter(std::string dir, const Bytes& batch, int group, uint64_t segment_bytes)
      : dir_(std::move(dir)), segment_bytes_(segment_bytes) {
    for (int i = 0; i < group; i++) {
      chunk_.insert(chunk_.end(), {0, 0, 0, 0});
      chunk_.insert(chunk_.end(), batch.begin(), batch.end());
    }
    dir_fd_ = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY);
    KEEL_CHECK(dir_fd_ >= 0);
  }
  ~RawWriter() {
    if (fd_ >= 0) ::close(fd_);
    ::close(dir_fd_);
    for (const std::string& p : paths_) ::unlink(p.c_str());
  }
  void round(Split& split) {
    auto t0 = Clock::now();
    bool created = false;
    if (fd_ < 0 || off_ + chunk_.size() > segment_bytes_) {
      if (fd_ >= 0) ::close(fd_);
      paths_.push_back(dir_ + "/raw" + std::to_string(paths_.size()) + ".bin");
      fd_ = ::open(paths_.back().c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
      KEEL_CHECK(fd_ >= 0);
      off_ = 0;
      created = true;
    }
    KEEL_CHECK(::pwrite(fd_, chunk_.data(), chunk_.size(), off_t(off_)) == ssize_t(chunk_.size()));
    off_ += chunk_.size();
    auto t1 = Clock::now();
    KEEL_CHECK(::fdatasync(fd_) == 0);
    if (created) KEEL_CHECK(::fsync(dir_fd_) == 0);
    split.write += std::chrono::duration<double>(t1 - t0).count();
    split.sync += seconds_since(t1);
  }

 private:
  std::string dir_;
  uint64_t segment_bytes_;
  Bytes chunk_;
  int dir_fd_ = -1;
  int fd_ = -1;
  uint64_t off_ = 0;
  std::vector<std::string> paths_;
};

// One lock-step round of the log: `group` appends, then sync() and wait for its callback.
void log_round(Rig& rig, keel::log::Log& log, const Bytes& batch, int group, Split& split) {
  auto t0 = Clock::now();
  for (int i = 0; i < group; i++) KEEL_CHECK(log.append(batch, std::nullopt).ok());
  auto t1 = Clock::now();
  bool synced = false;
  log.sync([&](absl::Status s) {
    KEEL_CHECK(s.ok());
    synced = true;
  });
  rig.run_until(synced);
  split.fill += std::chrono::duration<double>(t1 - t0).count();
  split.write += seconds_since(t1);
}

// Pipelined: appends continue while a sync is in flight; a new sync starts when one
// completes. Returns seconds.
double log_append_pipelined(Rig& rig, const Bytes& batch, uint64_t batches, int group) {
  auto log = std::move(*keel::log::Log::open(*rig.disk, "log", bench_options()));
  bool ready = false;
  log->sync([&](absl::Status s) { ready = true; });
  rig.run_until(ready);
  auto t = Clock::now();
  uint64_t appended = 0;
  bool in_flight = false;
  while (appended < batches || in_flight) {
    for (int i = 0; i < group && appended < batches; i++, appended++) {
      KEEL_CHECK(log->append(batch, std::nullopt).ok());
    }
    if (!in_flight) {
      in_flight = true;
      log->sync([&](absl::Status s) {
        KEEL_CHECK(s.ok());
        in_flight = false;
      });
    }
    rig.loop->run_once(std::chrono::nanoseconds(appended < batches ? 0 : 10'000'000));
  }
  bool synced = false;
  log->sync([&](absl::Status) { synced = true; });
  rig.run_until(synced);
  double s = seconds_since(t);
  KEEL_CHECK_EQ(log->durable_offset(), int64_t(batches));
  return s;
}

void bench_append_read(const Flags& f) {
  const Bytes batch = make_batch(f.batch_bytes, 7);
  const uint64_t rounds = (f.total_mib << 20) / batch.size() / f.group;
  const uint64_t batches = rounds * f.group;
  const double mib = double(batches * (batch.size() + 4)) / (1 << 20);
  Rig rig(f.dir);
  // Lock-step, the raw baseline and the log interleaved round by round (or in chunks of
  // --chunk-rounds, alternating which goes first), so both meet the same disk: on this VM an
  // fdatasync takes 0.4 ms or 4 ms depending on the time and on where a file's blocks land,
  // which separate runs, or one file each, would count as a difference between them.
  // The raw files live in the log's directory, so ext4 places both sides' blocks alike (a
  // file in another directory may land in another block group, and on this VM's disk that
  // alone changes fdatasync time by tens of percent). The log ignores names that are not
  // segments.
  const keel::log::Options options = bench_options(f.segment_mib);
  auto log = std::move(*keel::log::Log::open(*rig.disk, "log", options));
  RawWriter raw(rig.root + "/log", batch, f.group, options.segment_bytes_max);
  {
    bool ready = false;
    log->sync([&](absl::Status) { ready = true; });
    rig.run_until(ready);
  }
  Split rs, ls;
  const uint64_t chunk = std::max<uint64_t>(1, f.chunk_rounds);
  for (uint64_t r = 0; r < rounds; r += chunk) {
    const uint64_t n = std::min(chunk, rounds - r);
    const bool raw_first = (r / chunk) % 2 == 0;
    for (int part = 0; part < 2; part++) {
      for (uint64_t i = 0; i < n; i++) {
        if ((part == 0) == raw_first) {
          raw.round(rs);
        } else {
          log_round(rig, *log, batch, f.group, ls);
        }
      }
    }
  }
  KEEL_CHECK_EQ(log->durable_offset(), int64_t(batches));
  std::printf(
      "append  %llu batches of %zu B, sync every %d, files of %llu MiB, interleaved: raw "
      "pwrite+fdatasync %.1f MB/s, log %.1f MB/s (%.0f batches/s) = %.1f%% of raw\n",
      (unsigned long long)batches, batch.size(), f.group, (unsigned long long)f.segment_mib,
      mib / rs.total(), mib / ls.total(), batches / ls.total(), 100.0 * rs.total() / ls.total());
  std::printf(
      "        per round (us): raw pwrite %.0f + fdatasync %.0f = %.0f; log append %.0f + "
      "sync %.0f = %.0f\n",
      rs.write / rounds * 1e6, rs.sync / rounds * 1e6, rs.total() / rounds * 1e6,
      ls.fill / rounds * 1e6, ls.write / rounds * 1e6, ls.total() / rounds * 1e6);
  if (f.lockstep_only) return;
  // Read back from the page cache, 1 MiB per read; every batch is verified.
  auto t = Clock::now();
  uint64_t bytes = 0;
  for (int64_t at = log->start_offset(); at < log->next_offset();) {
    auto r = log->read(at, 1 << 20);
    KEEL_CHECK(r.ok());
    bytes += r->batches.size();
    at = r->next_offset;
  }
  double read_s = seconds_since(t);
  Bytes src(bytes), dst(bytes);
  std::memset(src.data(), 1, src.size());
  std::memset(dst.data(), 2, dst.size());
  t = Clock::now();
  for (uint64_t at = 0; at < bytes; at += 1 << 20) {
    size_t n = std::min<uint64_t>(1 << 20, bytes - at);
    std::memcpy(dst.data() + at, src.data() + at, n);
  }
  double copy_s = seconds_since(t);
  KEEL_CHECK(dst[bytes / 2] == 1);
  std::printf(
      "read    %.1f MiB from page cache: log %.0f MB/s, memcpy %.0f MB/s = %.1f%% of "
      "memcpy\n",
      double(bytes) / (1 << 20), bytes / read_s / 1e6, bytes / copy_s / 1e6,
      100.0 * copy_s / read_s);
  log.reset();
  std::filesystem::remove_all(rig.root + "/log");
  double piped = log_append_pipelined(rig, batch, batches, f.group);
  std::printf(
      "append  pipelined (appends continue during a sync): log %.1f MB/s = %.1f%% of "
      "lock-step raw\n",
      mib / piped, 100.0 * rs.total() / piped);
}

void bench_recovery(const Flags& f) {
  Rig rig(f.dir);
  const Bytes batch = make_batch(16 << 10, 3);
  const uint64_t batches = (f.recovery_mib << 20) / batch.size();
  std::printf("writing a %llu MiB log for the open benchmark...\n",
              (unsigned long long)f.recovery_mib);
  {
    auto log = std::move(*keel::log::Log::open(*rig.disk, "log", bench_options()));
    for (uint64_t i = 0; i < batches; i++) {
      KEEL_CHECK(log->append(batch, std::nullopt).ok());
      if (i % 1024 == 1023 || i + 1 == batches) {
        log->mark_stable(log->next_offset());
        bool synced = false;
        log->sync([&](absl::Status) { synced = true; });
        rig.run_until(synced);
      }
    }
    // One more round so the checkpoint of the last stable data is written and durable.
    bool synced = false;
    log->sync([&](absl::Status) { synced = true; });
    rig.run_until(synced);
    for (int i = 0; i < 100; i++) rig.loop->run_once(std::chrono::milliseconds(1));
  }
  for (bool with_checkpoint : {true, false}) {
    if (!with_checkpoint) std::filesystem::remove(rig.root + "/log/checkpoint");
    long rss0 = rss_kib();
    auto t = Clock::now();
    auto log = keel::log::Log::open(*rig.disk, "log", bench_options());
    double open_s = seconds_since(t);
    KEEL_CHECK(log.ok());
    long rss1 = rss_kib();
    const auto& rep = (*log)->recovery();
    std::printf(
        "open    %.0f MiB log, %zu segments, checkpoint %s: %.1f ms, scanned %.1f MiB, "
        "RSS +%ld KiB\n",
        double((*log)->size_bytes()) / (1 << 20), (*log)->segment_count(),
        with_checkpoint ? "used" : "removed", open_s * 1e3, double(rep.bytes_scanned) / (1 << 20),
        rss1 - rss0);
    bool synced = false;
    (*log)->sync([&](absl::Status) { synced = true; });
    rig.run_until(synced);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Flags f = parse(argc, argv);
  bench_append_read(f);
  if (!f.lockstep_only) bench_recovery(f);
  return 0;
}
