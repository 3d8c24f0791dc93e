// A cluster of Raft cores in memory for the scripted tests and the properties: per node a
// "written" log (what the core reads: writes issued) and a "durable" copy (what survives a
// crash), a network of in-flight messages, and safety checkers fed from a global view.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "env/random.h"
#include "raft/log_storage.h"
#include "raft/raft.h"

namespace keel::raft::testing {

struct NodeOptions {
  bool pre_vote = true;
  bool check_quorum = true;
  int election_tick = 10;
  int heartbeat_tick = 1;
  uint32_t max_inflight_msgs = 256;
  uint64_t max_msg_bytes = 1 << 20;
  uint64_t max_inflight_bytes = 32 << 20;
  // The log starts after this snapshot point (0 = a fresh log).
  uint64_t snapshot_index = 0;
  uint64_t snapshot_term = 0;
};

struct Node {
  uint64_t id = 0;
  NodeOptions options;
  std::vector<uint64_t> voters;
  std::unique_ptr<MemoryStorage> written;  // the core reads this: every write issued
  std::unique_ptr<MemoryStorage> durable;  // what survives a crash: writes synced
  std::unique_ptr<env::Random> random;
  std::unique_ptr<Raft> raft;   // null while crashed
  uint64_t unsynced_ready = 0;  // last written Ready id not yet synced (0: none)
  std::set<std::pair<uint64_t, uint64_t>> durable_votes;  // (term, vote) ever synced
};

// A safety violation found by the checkers; empty when none.
struct Violations {
  std::vector<std::string> found;
  void add(std::string s) { found.push_back(std::move(s)); }
  bool empty() const { return found.empty(); }
};

class Cluster {
 public:
  explicit Cluster(uint64_t seed) : seed_(seed) {}

  // Adds n nodes (ids continue from the last) forming one group of exactly these voters.
  std::vector<uint64_t> add_nodes(int n, const NodeOptions& options);
  Node& node(uint64_t id);
  bool has_node(uint64_t id) const { return nodes_.count(id) != 0; }
  std::vector<uint64_t> ids() const;

  // Takes every Ready of `id` and writes it (to `written`); if sync, then syncs. Returns a
  // description of the Readies.
  std::string process_ready(uint64_t id, bool sync);
  // Makes everything written durable and reports it to the core.
  std::string sync(uint64_t id);
  // Delivers the in-flight messages addressed to `id` (optionally only of one type); with
  // drop, discards them. Returns what happened.
  std::string deliver(uint64_t id, bool drop, int type_filter = -1);
  // Repeats process_ready(sync) and deliver on `ids` until nothing changes.
  std::string stabilize(const std::vector<uint64_t>& ids);

  void crash(uint64_t id);    // the core and every unsynced write are lost
  void restart(uint64_t id);  // a new core from the durable state
  void isolate(uint64_t id) { isolated_.insert(id); }
  void heal() {
    isolated_.clear();
    cut_.clear();
  }
  void cut(uint64_t a, uint64_t b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }

  // The network: messages sent and not yet delivered or dropped.
  std::vector<Message>& network() { return network_; }
  // Steps message i of the network into its recipient (removing it unless duplicate).
  void deliver_one(size_t i, bool duplicate);

  // Event log from the cores (when log_level is on) and the checkers.
  void set_logging(bool on) { logging_ = on; }
  std::string take_log();

  // Checks the global safety properties now; violations accumulate.
  void check();
  Violations& violations() { return violations_; }

 private:
  Config make_config(Node& n);
  void check_sent(Node& n, const Message& m);
  void record_applied(Node& n, const std::vector<Entry>& committed);
  bool link_up(uint64_t from, uint64_t to) const;

  uint64_t seed_;
  std::map<uint64_t, Node> nodes_;
  std::vector<Message> network_;
  std::set<uint64_t> isolated_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  bool logging_ = false;
  std::string log_;

  // Checker state (global view).
  Violations violations_;
  // Keyed by group (its smallest voter id) first: one Cluster may hold several groups.
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> leader_of_term_;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> chain_;  // (index, term) -> prefix hash
  struct Committed {
    uint64_t term;
    std::string data;
    uint64_t max_term_seen;  // any leader of a later term must hold it
  };
  std::map<std::pair<uint64_t, uint64_t>, Committed> committed_;  // (group, index)
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> granted_;     // (voter, term) -> candidate
};

}  // namespace keel::raft::testing
