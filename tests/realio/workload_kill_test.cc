// The world-proof workload as three real child processes, killed with SIGKILL at arbitrary
// instants and restarted: real process death (sockets reset by the kernel, the data
// directory's lock released, a write or fsync cut short), real files, real loopback TCP.
//
// Each child runs one node (RealEnv + sim::WorkloadProcess) and reports its observer events
// as text lines on a pipe; the parent replays them into the workload's WorkloadChecker.
// After the last kill, the parent recovers each node's files itself, so the checker verifies
// every acknowledgement it heard of against what the files hold.
//
// Two notifications can be lost to a kill by construction, because the workload acts first
// and reports second: on_written (a record appended, the process killed before it said so)
// and on_trimmed (a segment removed, likewise). The parent accounts for exactly these: the
// single record just past the last reported one, and a recovered log starting at a later
// first seq than before (a trimmed prefix). Everything else goes to the checker unchanged.
// Messages are only counted here: the order of lines across three pipes does not follow the
// order of sends and receipts, and the in-process test (workload_test.cc) checks them.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "disk/real_env.h"
#include "net/event_loop.h"
#include "sim/workload.h"
#include "tests/realio/realio_util.h"

namespace keel {
namespace {

using std::chrono::milliseconds;

constexpr int kNodes = 3;

void write_line(int fd, const std::string& line) {
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(3);  // the parent is gone
    done += size_t(n);
  }
}

// Child side: every observer event becomes one line on the pipe.
class PipeObserver final : public sim::WorkloadObserver {
 public:
  explicit PipeObserver(int fd) : fd_(fd) {}
  void on_written(std::string_view, uint64_t seq, uint64_t digest) override {
    write_line(fd_, ::fmt::format("W {} {}\n", seq, digest));
  }
  void on_acked(std::string_view, uint64_t seq, uint64_t digest) override {
    write_line(fd_, ::fmt::format("A {} {}\n", seq, digest));
  }
  void on_trimmed(std::string_view, uint64_t first_seq) override {
    write_line(fd_, ::fmt::format("T {}\n", first_seq));
  }
  void on_recovered(std::string_view, const std::vector<sim::RecoveredRecord>& log) override {
    std::string line = ::fmt::format("R {}", log.size());
    for (const auto& r : log) line += ::fmt::format(" {} {}", r.seq, r.digest);
    write_line(fd_, line + "\n");
  }
  void on_sent(std::string_view, uint64_t, uint64_t, uint64_t) override { write_line(fd_, "S\n"); }
  void on_received(std::string_view, std::string_view, uint64_t, uint64_t, uint64_t,
                   bool duplicate) override {
    write_line(fd_, duplicate ? "M 1\n" : "M 0\n");
  }
  void on_violation(std::string_view, std::string_view what) override {
    write_line(fd_, "V " + one_line(what) + "\n");
  }
  void on_disk_failed(std::string_view, const absl::Status& status) override {
    write_line(fd_, "D " + one_line(status.ToString()) + "\n");
  }

 private:
  static std::string one_line(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
      if (c == '\n') c = ' ';
    }
    return out;
  }
  int fd_;
};

struct NodeConfig {
  std::string name;
  std::string dir;
  env::Address address;
  std::vector<env::Address> peers;
};

sim::WorkloadOptions workload_options(const NodeConfig& node, sim::WorkloadObserver* observer) {
  sim::WorkloadOptions w;
  w.listen = node.address;
  w.peers = node.peers;
  w.observer = observer;
  return w;
}

// Runs in the child, never returns.
[[noreturn]] void child_main(const NodeConfig& node, uint64_t seed, int fd) {
  PipeObserver observer(fd);
  disk::RealEnvOptions options;
  options.node = node.name;
  options.data_dir = node.dir;
  options.seed = seed;
  auto env = disk::RealEnv::create(options);
  if (!env.ok()) {
    write_line(fd, "V child setup: " + env.status().ToString() + "\n");
    _exit(2);
  }
  sim::WorkloadProcess process((*env)->env(), workload_options(node, &observer));
  (*env)->loop().run();
  _exit(0);
}

// Parent side: replays one child's lines into the checker.
class Replayer {
 public:
  Replayer(std::string node, sim::WorkloadChecker& checker)
      : node_(std::move(node)), checker_(&checker) {}

  void feed(std::string_view bytes) {
    buffer_.append(bytes);
    size_t start = 0;
    for (size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
      apply(std::string_view(buffer_).substr(start, nl - start));
    }
    buffer_.erase(0, start);
  }
  // The child died: a line cut short by the kill is dropped.
  void end_of_incarnation() { buffer_.clear(); }

  // A recovery done by the parent itself (after the last kill).
  void recovered(const std::vector<sim::RecoveredRecord>& log) { replay_recovery(log); }

  uint64_t received = 0, duplicates = 0, sent = 0, excused_written = 0, excused_trims = 0;
  uint64_t acked = 0;

 private:
  void apply(std::string_view line) {
    std::istringstream in{std::string(line)};
    char kind = 0;
    in >> kind;
    switch (kind) {
      case 'W': {
        uint64_t seq, digest;
        in >> seq >> digest;
        max_written_ = std::max(max_written_, seq);
        checker_->on_written(node_, seq, digest);
        break;
      }
      case 'A': {
        uint64_t seq, digest;
        in >> seq >> digest;
        acked++;
        checker_->on_acked(node_, seq, digest);
        break;
      }
      case 'T': {
        uint64_t first;
        in >> first;
        first_seq_ = std::max(first_seq_, first);
        checker_->on_trimmed(node_, first);
        break;
      }
      case 'R': {
        size_t count;
        in >> count;
        std::vector<sim::RecoveredRecord> log(count);
        for (auto& r : log) in >> r.seq >> r.digest;
        ASSERT_FALSE(in.fail()) << "bad recovery line from " << node_;
        replay_recovery(log);
        break;
      }
      case 'S':
        sent++;
        break;
      case 'M': {
        int dup = 0;
        in >> dup;
        received++;
        duplicates += uint64_t(dup);
        break;
      }
      case 'V':
        checker_->on_violation(node_, line.substr(2));
        break;
      case 'D':
        checker_->on_disk_failed(node_, absl::InternalError(std::string(line.substr(2))));
        break;
      default:
        ADD_FAILURE() << "unknown line from " << node_ << ": " << line;
    }
  }

  void replay_recovery(const std::vector<sim::RecoveredRecord>& log) {
    if (!log.empty()) {
      // A trimmed prefix whose on_trimmed was lost to a kill.
      if (log.front().seq > first_seq_) {
        checker_->on_trimmed(node_, log.front().seq);
        excused_trims++;
      }
      first_seq_ = log.front().seq;
      // The one record appended just before a kill, whose on_written never left the child.
      const sim::RecoveredRecord& last = log.back();
      if (last.seq == max_written_ + 1) {
        checker_->on_written(node_, last.seq, last.digest);
        max_written_ = last.seq;
        excused_written++;
      }
    }
    checker_->on_recovered(node_, log);
  }

  std::string node_;
  sim::WorkloadChecker* checker_;
  std::string buffer_;
  uint64_t max_written_ = 0;
  uint64_t first_seq_ = 1;
};

class KilledCluster {
 public:
  explicit KilledCluster(sim::WorkloadChecker& checker) {
    for (int i = 0; i < kNodes; i++) {
      NodeConfig node;
      node.name = "n" + std::to_string(i + 1);
      node.dir = dir_.sub(node.name);
      node.address = env::Address{"127.0.0.1", realio_test::unused_port()};
      nodes_.push_back(node);
      replayers_.emplace_back(node.name, checker);
    }
    for (int i = 0; i < kNodes; i++) {
      for (int j = 0; j < kNodes; j++) {
        if (i != j) nodes_[i].peers.push_back(nodes_[j].address);
      }
    }
    children_.resize(kNodes);
  }
  ~KilledCluster() {
    for (int i = 0; i < kNodes; i++) kill(i);
  }

  void start(int i) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const uint64_t seed = 0xc0ffee00 + uint64_t(i) * 1000 + incarnations_++;
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      child_main(nodes_[i], seed, fds[1]);
    }
    ::close(fds[1]);
    children_[i] = Child{pid, fds[0]};
  }

  // SIGKILL, reap, and read everything the child wrote before it died.
  void kill(int i) {
    Child& child = children_[i];
    if (child.pid <= 0) return;
    ::kill(child.pid, SIGKILL);
    int status = 0;
    while (::waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
    }
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << nodes_[i].name << " exited on its own, status " << status;
    drain(i, /*until_eof=*/true);
    replayers_[i].end_of_incarnation();
    ::close(child.fd);
    child = Child{};
  }

  // Reads the children's pipes for `duration`.
  void pump(std::chrono::nanoseconds duration) {
    const auto end = net::monotonic_now() + duration;
    for (;;) {
      const auto now = net::monotonic_now();
      if (now >= end) return;
      std::vector<pollfd> fds;
      std::vector<int> which;
      for (int i = 0; i < kNodes; i++) {
        if (children_[i].pid > 0) {
          fds.push_back(pollfd{children_[i].fd, POLLIN, 0});
          which.push_back(i);
        }
      }
      const int wait_ms = int(std::chrono::duration_cast<milliseconds>(end - now).count()) + 1;
      const int rc = ::poll(fds.data(), fds.size(), wait_ms);
      if (rc < 0 && errno == EINTR) continue;
      ASSERT_GE(rc, 0);
      for (size_t k = 0; k < fds.size(); k++) {
        if (fds[k].revents & (POLLIN | POLLHUP)) drain(which[k], /*until_eof=*/false);
        // A child that died on its own is a failure: it reported why (V line) or crashed.
        if (fds[k].revents & POLLHUP) {
          ADD_FAILURE() << nodes_[which[k]].name << " died unexpectedly";
          return;
        }
      }
    }
  }

  Replayer& replayer(int i) { return replayers_[i]; }
  const NodeConfig& node(int i) const { return nodes_[i]; }

 private:
  struct Child {
    pid_t pid = -1;
    int fd = -1;
  };

  void drain(int i, bool until_eof) {
    char buf[65536];
    for (;;) {
      if (!until_eof) {
        pollfd p{children_[i].fd, POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN)) return;
      }
      const ssize_t n = ::read(children_[i].fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      replayers_[i].feed(std::string_view(buf, size_t(n)));
    }
  }

  realio_test::TempDir dir_;
  std::vector<NodeConfig> nodes_;
  std::vector<Replayer> replayers_;
  std::vector<Child> children_;
  uint64_t incarnations_ = 0;
};

TEST(RealWorkloadKillTest, ChildProcessesKilledAtArbitraryInstantsLoseNoAcknowledgedRecord) {
  sim::WorkloadChecker checker;
  KilledCluster cluster(checker);
  for (int i = 0; i < kNodes; i++) cluster.start(i);
  if (HasFatalFailure()) return;
  cluster.pump(milliseconds(500));

  std::mt19937_64 rng(42);
  int kills = 0;
  for (int round = 0; round < 15 && !HasFailure(); round++) {
    if (rng() % 5 == 0) {
      for (int i = 0; i < kNodes; i++) cluster.kill(i);
      for (int i = 0; i < kNodes; i++) cluster.start(i);
      kills += kNodes;
    } else {
      const int i = int(rng() % kNodes);
      cluster.kill(i);
      cluster.start(i);
      kills++;
    }
    if (HasFatalFailure()) return;
    cluster.pump(milliseconds(50 + rng() % 300));
  }
  cluster.pump(milliseconds(500));
  for (int i = 0; i < kNodes; i++) cluster.kill(i);

  // Recover every node here, so every acknowledgement heard of is checked against the files.
  for (int i = 0; i < kNodes; i++) {
    struct Capture final : sim::WorkloadObserver {
      std::vector<sim::RecoveredRecord> log;
      void on_written(std::string_view, uint64_t, uint64_t) override {}
      void on_acked(std::string_view, uint64_t, uint64_t) override {}
      void on_trimmed(std::string_view, uint64_t) override {}
      void on_recovered(std::string_view, const std::vector<sim::RecoveredRecord>& l) override {
        log = l;
      }
      void on_sent(std::string_view, uint64_t, uint64_t, uint64_t) override {}
      void on_received(std::string_view, std::string_view, uint64_t, uint64_t, uint64_t,
                       bool) override {}
      void on_violation(std::string_view, std::string_view) override {}
      void on_disk_failed(std::string_view, const absl::Status&) override {}
    } capture;
    disk::RealEnvOptions options;
    options.node = cluster.node(i).name;
    options.data_dir = cluster.node(i).dir;
    auto env = disk::RealEnv::create(options);
    ASSERT_TRUE(env.ok()) << env.status();
    {
      sim::WorkloadOptions w = workload_options(cluster.node(i), &capture);
      w.listen.port = 0;  // recovery only: do not collide with anything
      w.peers.clear();
      sim::WorkloadProcess process((*env)->env(), w);
    }
    cluster.replayer(i).recovered(capture.log);
  }

  uint64_t acked = 0, received = 0, sent = 0, excused_written = 0, excused_trims = 0;
  for (int i = 0; i < kNodes; i++) {
    const Replayer& r = cluster.replayer(i);
    acked += r.acked;
    received += r.received;
    sent += r.sent;
    excused_written += r.excused_written;
    excused_trims += r.excused_trims;
    EXPECT_GT(r.acked, 0u) << "node " << i << " never acknowledged anything";
    EXPECT_GT(r.received, 0u) << "node " << i << " never received a message";
  }
  const auto& c = checker.counts();
  std::printf(
      "killed workload: %d kills; written %llu, acked %llu, recoveries %llu (%llu records), "
      "sent %llu, received %llu; lost notifications accounted: %llu written, %llu trims\n",
      kills, (unsigned long long)c.written, (unsigned long long)acked,
      (unsigned long long)c.recoveries, (unsigned long long)c.recovered_records,
      (unsigned long long)sent, (unsigned long long)received, (unsigned long long)excused_written,
      (unsigned long long)excused_trims);
  EXPECT_TRUE(checker.ok()) << checker.violation_count() << " violations";
  for (const std::string& v : checker.violations()) ADD_FAILURE() << v;
  EXPECT_EQ(c.recoveries, uint64_t(kNodes + kills + kNodes));
  EXPECT_LE(excused_written, uint64_t(kills));
}

}  // namespace
}  // namespace keel
