// The simulated network: one shared Fabric and, per node incarnation, a SimNetwork endpoint
// implementing env::Network. Addresses are {host = node name, port}.
//
// What is modelled (see docs/simulation.md):
// - Links are directional (from host, to host). Each has a latency distribution (min + a
//   uniform spread, and with a small probability a long tail), a bandwidth (bytes per
//   second, serializing the link), and may be stalled (nothing delivered until a time) or
//   cut (a partition). Each link draws from its own random stream.
// - A connection is two directions of TCP-like byte streams. Within a stream bytes arrive in
//   order, without gaps or duplicates. Streams are independent: a message on an old stream
//   may arrive after messages on a newer one. TCP never duplicates within a stream;
//   duplicates across reconnections arise only when senders retry (the workload does).
// - A cut link delivers nothing: a connect across a cut (either direction: the handshake
//   needs both) times out after kConnectTimeoutNs; bytes already on a stream across a cut
//   are retried every kCutRetryNs and, if the cut lasts kCutResetNs, the connection is
//   reset (both ends get on_close with an error). Healing lets pending bytes through.
// - A reset drops everything unsent or in flight and closes both ends with an error.
// - Connect to a host that is down or not listening is refused after a round trip.
// - A crashed host's streams are closed silently on its side; each peer sees a reset after
//   the link latency (or, if that link is cut, when its own bytes time out).
// Every connect, accept, open, delivery, close and reset is recorded in the trace with the
// node, the kind and a digest of the bytes.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "env/network.h"
#include "env/random.h"
#include "sim/scheduler.h"

namespace keel::sim {

struct LinkParams {
  int64_t latency_min_ns = 100'000;                // 0.1 ms
  int64_t latency_spread_ns = 400'000;             // + uniform [0, 0.4 ms]
  uint64_t tail_per_million = 2'000;               // 0.2% of sends...
  int64_t tail_max_ns = 50'000'000;                // ...take up to 50 ms more
  uint64_t bandwidth_bytes_per_s = 1'250'000'000;  // 10 Gbit/s
};

struct FabricStats {
  uint64_t connects = 0;
  uint64_t accepts = 0;
  uint64_t refused = 0;
  uint64_t connect_timeouts = 0;
  uint64_t resets = 0;      // connections reset (by the nemesis, a cut, or a crash)
  uint64_t closes = 0;      // orderly closes delivered
  uint64_t deliveries = 0;  // on_data calls
  uint64_t bytes_delivered = 0;
  uint64_t bytes_lost = 0;  // sent but dropped by a reset or a crash
  uint64_t cuts = 0;        // links cut (each direction counts)
  uint64_t heals = 0;
  uint64_t stalls = 0;
};

class Fabric {
 public:
  static constexpr int64_t kConnectTimeoutNs = 1'000'000'000;  // 1 s
  static constexpr int64_t kCutRetryNs = 200'000'000;          // 200 ms, like a TCP RTO
  static constexpr int64_t kCutResetNs = 3'000'000'000;        // 3 s of no progress
  static constexpr uint16_t kEphemeralPortFirst = 32768;
  static constexpr size_t kHostsMax = 64;

  struct Conn;
  struct Side;

  Fabric(Scheduler& scheduler, env::Random rng);
  Fabric(const Fabric&) = delete;
  Fabric& operator=(const Fabric&) = delete;
  ~Fabric();

  // Adds a host (a node) and returns its id (0, 1, ...). Hosts start down.
  int add_host(const std::string& name);
  int host_count() const { return int(hosts_.size()); }
  const std::string& host_name(int host) const { return hosts_.at(host).name; }
  // -1 if unknown.
  int host_id(const std::string& name) const;

  // The endpoint of host `host`'s current incarnation; the host is up while it exists.
  // Call host_down() before destroying the process that uses it (a crash).
  std::unique_ptr<env::Network> host_up(int host);
  // Crash: closes every stream of the host silently on its side (peers see resets), drops
  // its listeners; later calls through the old endpoint are inert.
  void host_down(int host);
  bool is_up(int host) const { return hosts_.at(host).up; }

  // Link parameters (directional).
  void set_link_params(int from, int to, const LinkParams& params);
  void set_all_link_params(const LinkParams& params);
  const LinkParams& link_params(int from, int to) const { return link(from, to).params; }

  // Partitions. cut/heal act on one direction; the helpers below name whole shapes.
  void cut(int from, int to);
  void heal(int from, int to);
  void heal_all();
  bool is_cut(int from, int to) const { return link(from, to).cut; }
  // Every link between `a` and `b` (both directions).
  void partition_symmetric(const std::vector<int>& a, const std::vector<int>& b);
  // Only a -> b is cut: b's bytes still reach a.
  void partition_asymmetric(const std::vector<int>& a, const std::vector<int>& b);
  // a and b cannot talk to each other; `bridge` talks to both.
  void partition_bridge(const std::vector<int>& a, const std::vector<int>& b, int bridge);

  // Nothing is delivered on from -> to until `duration_ns` from now.
  void stall(int from, int to, int64_t duration_ns);
  // Resets every live connection between hosts a and b (either direction); returns how many.
  int reset_between(int a, int b);
  // Resets one live connection chosen with `rng` (in connection id order); false if none.
  bool reset_one(env::Random& rng);
  size_t live_connections() const { return conns_.size(); }

  const FabricStats& stats() const { return stats_; }
  Scheduler& scheduler() { return *scheduler_; }

  // Internal, used by the stream and endpoint implementations.
  struct Link {
    LinkParams params;
    env::Random rng{0};
    bool cut = false;
    int64_t stalled_until_ns = 0;
    int64_t tx_free_ns = 0;
  };
  struct ListenerEntry;
  Link& link(int from, int to) { return links_.at(size_t(from) * kHostsMax + size_t(to)); }
  const Link& link(int from, int to) const {
    return links_.at(size_t(from) * kHostsMax + size_t(to));
  }
  int64_t sample_latency(int from, int to);
  uint16_t ephemeral_port(int host);
  absl::StatusOr<std::unique_ptr<env::Listener>> listen(int host, uint64_t epoch,
                                                        const env::Address& at,
                                                        env::Network::AcceptFn on_accept);
  std::unique_ptr<env::Stream> connect(int host, uint64_t epoch, const env::Address& to);
  void unlisten(const env::Address& at, const ListenerEntry* entry);
  absl::Status send(const std::shared_ptr<Conn>& conn, int side, ByteView bytes);
  size_t send_queue_bytes(const Conn& conn, int side) const;
  void close(const std::shared_ptr<Conn>& conn, int side);
  bool epoch_alive(int host, uint64_t epoch) const {
    return hosts_.at(host).up && hosts_.at(host).epoch == epoch;
  }

 private:
  struct Host {
    std::string name;
    bool up = false;
    uint64_t epoch = 0;
    uint16_t next_port = kEphemeralPortFirst;
  };

  void on_syn(const std::shared_ptr<Conn>& conn);
  void fail_connect(const std::shared_ptr<Conn>& conn, int64_t at_ns, absl::Status status);
  void enqueue(const std::shared_ptr<Conn>& conn, int to_side, int64_t arrival_ns, int kind,
               ByteView bytes);
  void schedule_delivery(const std::shared_ptr<Conn>& conn, int side, int64_t at_ns);
  void deliver(const std::shared_ptr<Conn>& conn, int side);
  void reset(const std::shared_ptr<Conn>& conn, std::string_view reason);
  void notify_close(const std::shared_ptr<Conn>& conn, int side, int64_t at_ns,
                    absl::Status status);
  void forget_if_done(const std::shared_ptr<Conn>& conn);
  void record(int host, std::string_view kind, std::string detail);

  Scheduler* scheduler_;
  env::Random rng_;
  std::vector<Host> hosts_;
  std::vector<Link> links_;  // kHostsMax x kHostsMax, indexed from * kHostsMax + to
  std::map<env::Address, std::shared_ptr<ListenerEntry>> listeners_;
  std::map<uint64_t, std::shared_ptr<Conn>> conns_;  // live (some side still open)
  uint64_t next_conn_id_ = 1;
  FabricStats stats_;
};

// One node incarnation's network, a thin handle on the Fabric.
class SimNetwork final : public env::Network {
 public:
  SimNetwork(Fabric& fabric, int host, uint64_t epoch)
      : fabric_(&fabric), host_(host), epoch_(epoch) {}
  absl::StatusOr<std::unique_ptr<env::Listener>> listen(const env::Address& at,
                                                        AcceptFn on_accept) override {
    return fabric_->listen(host_, epoch_, at, std::move(on_accept));
  }
  std::unique_ptr<env::Stream> connect(const env::Address& to) override {
    return fabric_->connect(host_, epoch_, to);
  }

 private:
  Fabric* fabric_;
  int host_;
  uint64_t epoch_;
};

}  // namespace keel::sim
