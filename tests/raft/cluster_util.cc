#include <fmt/format.h>

#include <algorithm>

#include "base/check.h"
#include "raft/describe.h"
#include "tests/raft/cluster.h"

namespace keel::raft::testing {
namespace {

constexpr int kReadiesPerProcessMax = 100;
constexpr int kStabilizeRoundsMax = 1000;

std::string indent(const std::string& text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out += "  " + text.substr(start, end - start) + "\n";
    start = end + 1;
  }
  return out;
}

bool same_entry(const Entry& a, const Entry& b) {
  return a.index() == b.index() && a.count() == b.count() && a.term() == b.term() &&
         a.type() == b.type() && a.data() == b.data();
}

}  // namespace

std::vector<uint64_t> Cluster::add_nodes(int n, const NodeOptions& options) {
  const uint64_t first = nodes_.empty() ? 1 : nodes_.rbegin()->first + 1;
  std::vector<uint64_t> ids;
  for (int i = 0; i < n; i++) ids.push_back(first + uint64_t(i));
  for (uint64_t id : ids) {
    Node& node = nodes_[id];
    node.id = id;
    node.options = options;
    node.voters = ids;
    node.written = std::make_unique<MemoryStorage>(ids);
    if (options.snapshot_index > 0) {
      SnapshotMeta meta;
      meta.set_index(options.snapshot_index);
      meta.set_term(options.snapshot_term);
      for (uint64_t v : ids) meta.mutable_conf()->add_voters(v);
      node.written->apply_snapshot(meta);
      HardState hs;
      hs.set_term(options.snapshot_term);
      hs.set_commit(options.snapshot_index);
      node.written->set_hard_state(hs);
    }
    node.durable = std::make_unique<MemoryStorage>(*node.written);
    node.random =
        std::make_unique<env::Random>(env::Random(seed_).derive(fmt::format("raft/n{}", id)));
    node.raft = std::make_unique<Raft>(make_config(node), *node.written);
  }
  return ids;
}

Config Cluster::make_config(Node& n) {
  Config c;
  c.id = n.id;
  c.voters = n.voters;
  c.election_tick = n.options.election_tick;
  c.heartbeat_tick = n.options.heartbeat_tick;
  c.pre_vote = n.options.pre_vote;
  c.check_quorum = n.options.check_quorum;
  c.max_inflight_msgs = n.options.max_inflight_msgs;
  c.max_msg_bytes = n.options.max_msg_bytes;
  c.max_inflight_bytes = n.options.max_inflight_bytes;
  c.random = n.random.get();
  c.logger = [this](std::string_view s) {
    if (logging_) log_ += fmt::format("INFO {}\n", s);
  };
  return c;
}

Node& Cluster::node(uint64_t id) {
  auto it = nodes_.find(id);
  KEEL_CHECK(it != nodes_.end(), "no node {}", id);
  return it->second;
}

std::vector<uint64_t> Cluster::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [id, _] : nodes_) out.push_back(id);
  return out;
}

std::string Cluster::take_log() {
  std::string out = std::move(log_);
  log_.clear();
  return out;
}

std::string Cluster::process_ready(uint64_t id, bool do_sync) {
  Node& n = node(id);
  std::string out;
  for (int i = 0; i < kReadiesPerProcessMax && n.raft && n.raft->has_ready(); i++) {
    Ready rd = n.raft->take_ready();
    out += fmt::format("> {} handling Ready\n", id);
    out += indent(describe_ready(rd));
    if (rd.snapshot) n.written->apply_snapshot(*rd.snapshot);
    if (!rd.entries.empty()) n.written->append(rd.entries);
    if (rd.hard_state) n.written->set_hard_state(*rd.hard_state);
    for (const Message& m : rd.messages) {
      check_sent(n, m);
      network_.push_back(m);
    }
    record_applied(n, rd.committed_entries);
    if (rd.must_persist) n.unsynced_ready = rd.id;
    if (do_sync) out += sync(id);
    out += indent(take_log());
  }
  return out;
}

std::string Cluster::sync(uint64_t id) {
  Node& n = node(id);
  *n.durable = *n.written;
  const HardState hs = n.durable->hard_state();
  n.durable_votes.insert({hs.term(), hs.vote()});
  if (n.raft && n.unsynced_ready != 0) {
    const uint64_t ready = n.unsynced_ready;
    n.unsynced_ready = 0;
    n.raft->persisted(ready);
  }
  return take_log();
}

bool Cluster::link_up(uint64_t from, uint64_t to) const {
  if (isolated_.count(from) || isolated_.count(to)) return false;
  return cut_.count({from, to}) == 0;
}

std::string Cluster::deliver(uint64_t id, bool drop, int type_filter) {
  std::vector<Message> mine;
  std::vector<Message> rest;
  for (Message& m : network_) {
    if (m.to() == id && (type_filter < 0 || m.type() == type_filter)) {
      mine.push_back(std::move(m));
    } else {
      rest.push_back(std::move(m));
    }
  }
  network_ = std::move(rest);
  if (mine.empty()) return "";
  std::string out = fmt::format("> {} receiving messages\n", id);
  Node& n = node(id);
  for (const Message& m : mine) {
    if (drop || !n.raft || !link_up(m.from(), m.to())) {
      out += "  dropped: " + describe_message(m) + "\n";
      continue;
    }
    out += "  " + describe_message(m) + "\n";
    n.raft->step(m);
    out += indent(take_log());
  }
  return out;
}

void Cluster::deliver_one(size_t i, bool duplicate) {
  KEEL_CHECK_LT(i, network_.size());
  Message m = network_[i];
  if (!duplicate) network_.erase(network_.begin() + long(i));
  Node& n = node(m.to());
  if (n.raft && link_up(m.from(), m.to())) n.raft->step(m);
}

std::string Cluster::stabilize(const std::vector<uint64_t>& ids) {
  std::string out;
  for (int round = 0; round < kStabilizeRoundsMax; round++) {
    bool progress = false;
    for (uint64_t id : ids) {
      Node& n = node(id);
      if (n.raft && n.raft->has_ready()) {
        out += process_ready(id, true);
        progress = true;
      }
    }
    for (uint64_t id : ids) {
      bool any = std::any_of(network_.begin(), network_.end(),
                             [&](const Message& m) { return m.to() == id; });
      if (any) {
        out += deliver(id, false);
        progress = true;
      }
    }
    if (!progress) return out;
  }
  return out + "stabilize: did not settle\n";
}

void Cluster::crash(uint64_t id) {
  Node& n = node(id);
  n.raft.reset();
  *n.written = *n.durable;
  n.unsynced_ready = 0;
}

void Cluster::restart(uint64_t id) {
  Node& n = node(id);
  if (n.raft) crash(id);
  n.raft = std::make_unique<Raft>(make_config(n), *n.written);
}

// ---------------------------------------------------------------------------------------
// Checkers.

void Cluster::check_sent(Node& n, const Message& m) {
  if (m.type() == MSG_APP_RESP && !m.reject() && m.term() > 0) {
    // Durable before send: an acknowledgement claims the log is durable through m.index().
    const MemoryStorage& d = *n.durable;
    const uint64_t x = m.index();
    bool ok = x <= d.last_index();
    // Once a later leader rewrote the log (a new term), an acknowledgement released earlier
    // may describe entries that are durable but no longer in the in-memory log: compare
    // terms only while the term is unchanged.
    if (ok && x + 1 >= d.first_index() && n.raft->term() == m.term() &&
        n.raft->term_at(x).has_value()) {
      ok = d.term(x) == n.raft->term_at(x);
    }
    if (!ok) {
      violations_.add(
          fmt::format("node {} acknowledged offset {} at term {} but its durable log "
                      "ends at {}",
                      n.id, x, m.term(), d.last_index()));
    }
  }
  if (m.type() == MSG_VOTE_RESP && !m.reject()) {
    // Durable means: this vote was synced, or a later term was (which rules out any other
    // vote in this term after a crash).
    if (n.durable_votes.count({m.term(), m.to()}) == 0 &&
        n.durable->hard_state().term() <= m.term()) {
      violations_.add(fmt::format("node {} granted its vote to {} at term {} before it was durable",
                                  n.id, m.to(), m.term()));
    }
    auto [it, inserted] = granted_.emplace(std::pair{n.id, m.term()}, m.to());
    if (!inserted && it->second != m.to()) {
      violations_.add(fmt::format("node {} voted for {} and {} at term {}", n.id, it->second,
                                  m.to(), m.term()));
    }
  }
}

void Cluster::record_applied(Node& n, const std::vector<Entry>& committed) {
  uint64_t max_term = 0;
  for (const auto& [_, other] : nodes_) {
    if (other.voters.front() != n.voters.front()) continue;
    max_term = std::max(max_term, other.durable->hard_state().term());
    if (other.raft) max_term = std::max(max_term, other.raft->term());
  }
  for (const Entry& e : committed) {
    auto [it, inserted] = committed_.emplace(std::pair{n.voters.front(), e.index()},
                                             Committed{e.term(), e.data(), max_term});
    if (!inserted && (it->second.term != e.term() || it->second.data != e.data())) {
      violations_.add(fmt::format("node {} applied {} at offset {}, but {}/{} was applied there",
                                  n.id, describe_entry(e), e.index(), it->second.term, e.index()));
    }
  }
}

void Cluster::check() {
  std::map<uint64_t, std::vector<Entry>> logs;
  for (auto& [id, n] : nodes_) {
    if (!n.raft) continue;
    logs[id] = n.raft->log_entries();
    if (n.raft->role() != Role::kLeader) continue;
    // Election safety.
    const uint64_t group = n.voters.front();
    auto [it, inserted] = leader_of_term_.emplace(std::pair{group, n.raft->term()}, id);
    if (!inserted && it->second != id) {
      violations_.add(
          fmt::format("two leaders at term {}: {} and {}", n.raft->term(), it->second, id));
    }
    // Leader completeness.
    for (const auto& [key, c] : committed_) {
      const auto [g, index] = key;
      if (g != group) continue;
      if (c.max_term_seen >= n.raft->term() || index < n.raft->first_index()) continue;
      if (n.raft->term_at(index) != c.term) {
        violations_.add(fmt::format("leader {} at term {} lacks committed entry {}/{}", id,
                                    n.raft->term(), c.term, index));
      }
    }
  }
  // Log matching: two logs holding the same entry (offset, term) agree on everything before.
  for (auto& [a, log_a] : logs) {
    for (auto& [b, log_b] : logs) {
      if (a >= b || log_a.empty() || log_b.empty()) continue;
      if (node(a).voters.front() != node(b).voters.front()) continue;
      std::map<uint64_t, const Entry*> by_index;
      for (const Entry& e : log_b) by_index[e.index()] = &e;
      size_t last_common = log_a.size();
      for (size_t i = log_a.size(); i-- > 0;) {
        auto it = by_index.find(log_a[i].index());
        if (it != by_index.end() && it->second->term() == log_a[i].term()) {
          last_common = i;
          break;
        }
      }
      if (last_common == log_a.size()) continue;
      for (size_t i = 0; i <= last_common; i++) {
        if (log_a[i].index() < log_b.front().index()) continue;
        auto it = by_index.find(log_a[i].index());
        if (it == by_index.end() || !same_entry(*it->second, log_a[i])) {
          violations_.add(fmt::format("logs of {} and {} share {}/{} but differ at offset {}", a, b,
                                      log_a[last_common].term(), log_a[last_common].index(),
                                      log_a[i].index()));
          break;
        }
      }
    }
  }
}

}  // namespace keel::raft::testing
