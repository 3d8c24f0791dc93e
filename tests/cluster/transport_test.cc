// PeerTransport in the simulated world: ordered delivery with the sender's name, reconnection
// after a peer restarts, the unreachable report when a peer's stream is lost, and a bad
// stream closed without disturbing the others.
#include "cluster/transport.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "base/check.h"
#include "sim/world.h"

namespace keel::cluster {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr uint16_t kPeerPort = 7000;

// What every incarnation of every node saw; lives outside the processes, so crashes keep it.
struct Log {
  std::vector<std::string> received;     // "n2 got 'x' from n1"
  std::vector<std::string> unreachable;  // "n1 lost n2"
};

class TransportProcess final : public env::Process {
 public:
  TransportProcess(env::Env& env, Log* log, const std::vector<std::string>& names)
      : env_(env), log_(log) {
    std::map<std::string, env::Address> peers;
    for (const auto& n : names) peers[n] = env::Address{n, kPeerPort};
    const std::string self(env.node());
    transport_ = std::make_unique<PeerTransport>(
        env, self, peers, [this, self](const std::string& from, size_t, ByteView payload) {
          log_->received.push_back(
              fmt::format("{} got '{}' from {}", self, std::string(as_chars(payload)), from));
        });
    transport_->set_unreachable_handler([this, self, names](size_t peer) {
      // Peers are numbered in name order, without this node.
      std::vector<std::string> others;
      for (const auto& n : names) {
        if (n != self) others.push_back(n);
      }
      log_->unreachable.push_back(fmt::format("{} lost {}", self, others.at(peer)));
    });
    KEEL_CHECK(transport_->start(env::Address{self, kPeerPort}).ok());
  }
  PeerTransport& transport() { return *transport_; }
  env::Env& env() { return env_; }

 private:
  env::Env& env_;
  Log* log_;
  std::unique_ptr<PeerTransport> transport_;
};

struct Rig {
  explicit Rig(uint64_t seed) : world(sim::WorldOptions{seed, names, true}) {
    world.buggify().force_run_enabled(false);  // its drop site would lose messages on purpose
    world.set_factory_all(
        [this](env::Env& env) { return std::make_unique<TransportProcess>(env, &log, names); });
    world.start_all();
  }
  TransportProcess& node(int id) {
    return *static_cast<TransportProcess*>(world.node(id).process());
  }
  void send(int from, const std::string& to, const std::string& text) {
    node(from).transport().send(to, as_bytes(text));
  }
  size_t count(const std::vector<std::string>& lines, const std::string& line) const {
    return size_t(std::count(lines.begin(), lines.end(), line));
  }

  std::vector<std::string> names{"n1", "n2", "n3"};
  Log log;
  sim::World world;
};

TEST(PeerTransport, DeliversInOrderWithTheSendersName) {
  for (uint64_t seed = 1; seed <= 10; seed++) {
    Rig rig(seed);
    for (int i = 0; i < 20; i++) rig.send(0, "n2", fmt::format("m{}", i));
    rig.send(2, "n2", "hello from 3");
    rig.world.run_for(500 * kMs);
    std::vector<std::string> from_n1;
    for (const auto& l : rig.log.received) {
      if (l.ends_with("from n1")) from_n1.push_back(l);
    }
    ASSERT_EQ(from_n1.size(), 20u) << "seed " << seed;
    for (int i = 0; i < 20; i++) {
      EXPECT_EQ(from_n1[size_t(i)], fmt::format("n2 got 'm{}' from n1", i)) << "seed " << seed;
    }
    EXPECT_EQ(rig.count(rig.log.received, "n2 got 'hello from 3' from n3"), 1u);
    EXPECT_TRUE(rig.log.unreachable.empty());
  }
}

TEST(PeerTransport, ReportsALostPeerAndReconnectsAfterItRestarts) {
  for (uint64_t seed = 1; seed <= 10; seed++) {
    Rig rig(seed);
    rig.send(0, "n2", "before");
    rig.world.run_for(500 * kMs);
    ASSERT_EQ(rig.count(rig.log.received, "n2 got 'before' from n1"), 1u) << "seed " << seed;

    rig.world.crash(1);
    rig.send(0, "n2", "while down");  // lost with the stream (or before one opens)
    rig.world.run_for(500 * kMs);
    EXPECT_GE(rig.count(rig.log.unreachable, "n1 lost n2"), 1u) << "seed " << seed;
    EXPECT_EQ(rig.count(rig.log.unreachable, "n1 lost n3"), 0u) << "seed " << seed;

    rig.world.start(1);
    rig.world.run_for(1000 * kMs);  // past the longest backoff (500 ms)
    rig.send(0, "n2", "after");
    rig.world.run_for(500 * kMs);
    EXPECT_EQ(rig.count(rig.log.received, "n2 got 'after' from n1"), 1u) << "seed " << seed;
  }
}

TEST(PeerTransport, ABadStreamIsClosedAndTheOthersCarryOn) {
  Rig rig(7);
  rig.send(0, "n2", "first");
  rig.world.run_for(200 * kMs);
  // n3 opens a raw stream to n2's peer port and sends garbage instead of a hello frame.
  auto raw = rig.node(2).env().network().connect(env::Address{"n2", kPeerPort});
  bool closed = false;
  raw->set_handlers({.on_open = {},
                     .on_data = [](ByteView) {},
                     .on_close = [&closed](absl::Status) { closed = true; }});
  const std::string junk(64, '\xff');
  ASSERT_TRUE(raw->send(as_bytes(junk)).ok());
  rig.world.run_for(200 * kMs);
  EXPECT_TRUE(closed);
  EXPECT_GE(rig.node(1).transport().stats().bad_frames, 1u);
  rig.send(0, "n2", "second");
  rig.world.run_for(200 * kMs);
  EXPECT_EQ(rig.count(rig.log.received, "n2 got 'first' from n1"), 1u);
  EXPECT_EQ(rig.count(rig.log.received, "n2 got 'second' from n1"), 1u);
  EXPECT_TRUE(rig.log.unreachable.empty());
}

}  // namespace
}  // namespace keel::cluster
