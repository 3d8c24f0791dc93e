#include "sim/chaos.h"

#include <fmt/format.h>

#include <array>
#include <set>

#include "base/check.h"
#include "cluster/node.h"
#include "log/batch.h"
#include "sim/chaos_client.h"
#include "sim/nemesis.h"
#include "sim/world.h"

namespace keel::sim {
namespace {

constexpr uint16_t kPeerPort = 7000;
constexpr uint16_t kClientPort = 9092;
constexpr int64_t kScanIntervalNs = 1'000'000'000;
constexpr int64_t kDrainNs = 3'000'000'000;
constexpr size_t kViolationsKept = 20;

using cluster::RaftStorage;

struct Committed {
  uint32_t count = 0;
  uint64_t term = 0;
  uint32_t crc = 0;
  uint64_t min_reporter_term = UINT64_MAX;  // lowest term of a replica that reported it
};

// The global-view checker: a ReplicaObserver for every broker plus periodic scans.
class Checker final : public cluster::ReplicaObserver {
 public:
  Checker(World& world, int brokers) : world_(world), brokers_(brokers) {
    applied_max_.assign(size_t(brokers), 0);
    seen_.assign(size_t(brokers), Seen{});
    durable_checked_.assign(size_t(brokers), 0);
    match_checked_.assign(size_t(brokers * brokers), 0);
  }

  // `integrity`: corrupt bytes were served. Beyond the fault model only those count as
  // violations; everything else is an expected loss, counted and labelled.
  void violation(std::string text, bool integrity = false) {
    if (beyond_model_ && !integrity) {
      beyond_losses_++;
      world_.scheduler().record("checker", "beyond_model_loss", text);
      return;
    }
    violation_count_++;
    world_.scheduler().record("checker", "violation", text);
    if (violations_.size() < kViolationsKept) violations_.push_back(std::move(text));
  }

  cluster::Node* broker(int index) {
    return static_cast<cluster::Node*>(world_.node(index).process());
  }
  const cluster::Replica* replica(int index) {
    cluster::Node* n = broker(index);
    return n == nullptr ? nullptr : n->replica();
  }

  void on_role(uint64_t node, uint64_t term, raft::Role role, uint64_t leader) override {
    if (role != raft::Role::kLeader) return;
    elections_++;
    auto [it, fresh] = leaders_.emplace(term, node);
    if (!fresh && it->second != node) {
      violation(fmt::format("two leaders in term {}: n{} and n{}", term, it->second, node));
    }
    // Leader completeness: entries a replica committed while its term was below `term`.
    const cluster::Replica* r = replica(int(node) - 1);
    if (r == nullptr) return;
    const RaftStorage& s = r->storage();
    for (const auto& [index, c] : committed_) {
      if (c.min_reporter_term >= term || index < s.first_index()) continue;
      auto e = s.boundaries().find(index);
      if (e == s.boundaries().end() || e->second.term != c.term || e->second.crc != c.crc) {
        violation(fmt::format("n{} leads term {} without committed entry {} (term {})", node, term,
                              index, c.term));
        return;
      }
    }
  }

  void on_commit(uint64_t node, uint64_t index, uint32_t count, uint64_t term,
                 uint32_t crc) override {
    commits_++;
    const cluster::Replica* r = replica(int(node) - 1);
    const uint64_t reporter_term = r != nullptr ? r->core().term() : term;
    auto [it, fresh] = committed_.emplace(index, Committed{count, term, crc, reporter_term});
    Committed& c = it->second;
    if (!fresh && (c.count != count || c.term != term || c.crc != crc)) {
      violation(
          fmt::format("n{} committed {}+{}@{} crc {:08x} where {}+{}@{} crc {:08x} was "
                      "committed",
                      node, index, count, term, crc, index, c.count, c.term, c.crc));
    }
    c.min_reporter_term = std::min(c.min_reporter_term, reporter_term);
    uint64_t& applied = applied_max_[size_t(node - 1)];
    applied = std::max(applied, index + count - 1);
  }

  // Raft's commitment rule (the paper's Figure 8), checked from the global view: a leader
  // commits only by counting an entry of its own term, so the entry holding `index` is of
  // `term`, on the leader and on a quorum (a replica that is down or whose disk was
  // corrupted counts: its log cannot be seen).
  void on_leader_commit(uint64_t node, uint64_t term, uint64_t index) override {
    const cluster::Replica* leader = replica(int(node) - 1);
    if (leader == nullptr || index < leader->storage().first_index()) return;
    auto holds = [&](const cluster::Replica& r) {
      const auto& b = r.storage().boundaries();
      auto it = b.upper_bound(index);
      if (it == b.begin()) return false;
      --it;
      return it->first + it->second.count > index && it->second.term == term;
    };
    if (!holds(*leader)) {
      violation(fmt::format(
          "n{} leading term {} committed through {}, which its log does not hold in term {}: "
          "only an entry of the leader's own term may be committed by counting",
          node, term, index, term));
      return;
    }
    int witnesses = 0;
    for (int i = 0; i < brokers_; i++) {
      const cluster::Replica* r = replica(i);
      if (r == nullptr || excused_.contains(i) || index < r->storage().first_index() || holds(*r)) {
        witnesses++;
      }
    }
    if (witnesses < brokers_ / 2 + 1) {
      violation(
          fmt::format("n{} leading term {} committed through {} held by only {} of {} replicas",
                      node, term, index, witnesses, brokers_));
    }
  }

  void on_log_start(uint64_t node, uint64_t start, bool from_leader) override {
    (from_leader ? snapshot_installs_ : retentions_)++;
  }

  // The periodic and end-of-phase checks. They are incremental: what a scan verified stays
  // verified until the replica restarts or cuts its log below it (RaftStorage::cuts()), so
  // each scan looks only at what changed since the previous one.
  void scan(std::string_view when) {
    scans_++;
    std::vector<uint64_t> low(size_t(brokers_), UINT64_MAX);
    for (int i = 0; i < brokers_; i++) {
      const cluster::Replica* r = replica(i);
      if (r == nullptr) continue;
      Seen& seen = seen_[size_t(i)];
      const uint64_t incarnation = world_.node(i).incarnations();
      if (seen.incarnation != incarnation) {
        seen = Seen{incarnation, 0};
        low[size_t(i)] = 0;
      }
      const std::vector<uint64_t>& cuts = r->storage().cuts();
      for (size_t k = seen.cuts; k < cuts.size(); k++)
        low[size_t(i)] = std::min(low[size_t(i)], cuts[k]);
      seen.cuts = cuts.size();
    }
    auto lower = [](uint64_t& checked, uint64_t cut) {
      if (cut != UINT64_MAX) checked = std::min(checked, cut == 0 ? 0 : cut - 1);
    };
    for (int i = 0; i < brokers_; i++) {
      const cluster::Replica* r = replica(i);
      if (r == nullptr) continue;
      lower(durable_checked_[size_t(i)], low[size_t(i)]);
      check_durable(i, *r, when);
      for (int j = i + 1; j < brokers_; j++) {
        const cluster::Replica* other = replica(j);
        if (other == nullptr) continue;
        uint64_t& checked = match_checked_[size_t(i * brokers_ + j)];
        lower(checked, low[size_t(i)]);
        lower(checked, low[size_t(j)]);
        check_matching(i, *r, j, *other, checked, when);
      }
    }
  }

  // A replica holds every entry it ever committed, unchanged (unless its disk was
  // corrupted: then it may lack them, but never hold different ones).
  void check_durable(int i, const cluster::Replica& r, std::string_view when) {
    // Retention and snapshots drop only committed entries.
    const uint64_t committed_max =
        committed_.empty() ? 0 : committed_.rbegin()->first + committed_.rbegin()->second.count - 1;
    if (r.storage().first_index() > committed_max + 1 && !excused_.contains(i)) {
      violation(fmt::format("{}: n{} log starts at {}, beyond everything committed ({})", when,
                            i + 1, r.storage().first_index(), committed_max));
    }
    const auto& b = r.storage().boundaries();
    uint64_t& checked = durable_checked_[size_t(i)];
    const uint64_t first = std::max(r.storage().first_index(), checked + 1);
    const uint64_t through = applied_max_[size_t(i)];
    checked = std::max(checked, through);
    for (auto it = committed_.lower_bound(first); it != committed_.end() && it->first <= through;
         ++it) {
      auto e = b.find(it->first);
      if (e == b.end()) {
        if (excused_.contains(i)) continue;
        violation(fmt::format("{}: n{} lost committed entry {} (term {})", when, i + 1, it->first,
                              it->second.term));
        return;
      }
      if (e->second.term != it->second.term || e->second.crc != it->second.crc) {
        violation(fmt::format("{}: n{} holds {}@{} where {}@{} was committed", when, i + 1,
                              it->first, e->second.term, it->first, it->second.term));
        return;
      }
    }
  }

  // Log matching: the highest offset where both logs hold an entry of the same term; below
  // it, the logs must be identical. `checked`: the logs were verified identical through it.
  void check_matching(int i, const cluster::Replica& a, int j, const cluster::Replica& b,
                      uint64_t& checked, std::string_view when) {
    const auto& ma = a.storage().boundaries();
    const auto& mb = b.storage().boundaries();
    if (ma.empty() || mb.empty()) return;
    uint64_t match = 0;
    const uint64_t top = std::min(ma.rbegin()->first, mb.rbegin()->first);
    for (auto it = std::make_reverse_iterator(ma.upper_bound(top)); it != ma.rend(); ++it) {
      if (it->first <= checked) break;
      auto o = mb.find(it->first);
      if (o != mb.end() && o->second.term == it->second.term) {
        match = it->first;
        break;
      }
    }
    if (match == 0) return;
    const uint64_t from =
        std::max({a.storage().first_index(), b.storage().first_index(), checked + 1});
    auto ia = ma.lower_bound(from);
    auto ib = mb.lower_bound(from);
    for (; ia != ma.end() && ia->first <= match; ++ia, ++ib) {
      if (ib == mb.end() || ib->first != ia->first || ib->second.count != ia->second.count ||
          ib->second.term != ia->second.term || ib->second.crc != ia->second.crc) {
        violation(fmt::format("{}: logs of n{} and n{} match at {} but differ at {}", when, i + 1,
                              j + 1, match, ia->first));
        return;
      }
    }
    checked = match;
  }

  void excuse(int broker) { excused_.insert(broker); }

  World& world_;
  int brokers_;
  std::map<uint64_t, uint64_t> leaders_;  // term -> node id
  std::map<uint64_t, Committed> committed_;
  std::vector<uint64_t> applied_max_;
  // Incremental scans: per broker, the incarnation and cuts already seen, and how far its
  // committed entries were verified; per pair, how far the two logs were verified equal.
  struct Seen {
    uint64_t incarnation = UINT64_MAX;
    size_t cuts = 0;
  };
  std::vector<Seen> seen_;
  std::vector<uint64_t> durable_checked_;
  std::vector<uint64_t> match_checked_;
  std::set<int> excused_;
  std::vector<std::string> violations_;
  uint64_t violation_count_ = 0;
  bool beyond_model_ = false;
  uint64_t beyond_losses_ = 0;
  uint64_t elections_ = 0;
  uint64_t commits_ = 0;
  uint64_t scans_ = 0;
  uint64_t retentions_ = 0;
  uint64_t snapshot_installs_ = 0;
};

struct FinalLog {
  std::map<int64_t, std::string> values;  // data records by offset
  int64_t high_watermark = 0;
  int64_t log_start = 0;  // retention dropped what lies below
  bool complete = false;
};

// Reads the whole committed log from the leader of the highest term.
FinalLog read_final(World& world, Checker& checker, int brokers) {
  FinalLog out;
  int leader = -1;
  uint64_t best = 0;
  for (int i = 0; i < brokers; i++) {
    const cluster::Replica* r = checker.replica(i);
    if (r != nullptr && !r->failed() && r->core().role() == raft::Role::kLeader &&
        r->core().term() >= best) {
      leader = i;
      best = r->core().term();
    }
  }
  if (leader < 0) return out;
  cluster::Replica* r = checker.broker(leader)->replica();
  int64_t offset = int64_t(r->storage().first_index());
  out.log_start = offset;
  for (;;) {
    cluster::FetchResult f = r->fetch(offset, 1 << 20);
    out.high_watermark = f.high_watermark;
    if (f.error != cluster::OK) {
      checker.violation(fmt::format("final read at {} from n{} failed: {} {}", offset, leader + 1,
                                    int(f.error), f.message));
      return out;
    }
    if (f.batches.empty()) break;
    ByteView rest(f.batches);
    while (!rest.empty()) {
      auto header = log::parse_batch_header(rest, log::kBatchBytesMax);
      auto h = header.ok() && header->total_bytes() <= rest.size()
                   ? log::validate_batch(rest.first(header->total_bytes()))
                   : header;
      if (!h.ok()) {
        checker.violation(fmt::format("final read: n{} served a corrupt batch at {}: {}",
                                      leader + 1, offset, h.status().ToString()),
                          /*integrity=*/true);
        return out;
      }
      const ByteView batch = rest.first(h->total_bytes());
      if (!h->is_control()) {
        auto records = log::decode_records(batch);
        if (!records.ok()) {
          checker.violation(fmt::format("final read: undecodable records at {}", offset),
                            /*integrity=*/true);
          return out;
        }
        for (size_t k = 0; k < records->size(); k++) {
          const auto& v = (*records)[k].value;
          out.values[h->base_offset + int64_t(k)] = v ? std::string(as_chars(*v)) : "";
        }
      }
      offset = h->next_offset();
      rest = rest.subspan(batch.size());
    }
  }
  out.complete = true;
  return out;
}

void check_history(const History& h, const FinalLog& final_log, Checker& checker, RunResult& r) {
  uint64_t acks_all = 0, acks_one = 0, acks_one_lost = 0, acks_all_lost = 0;
  uint64_t retired = 0;
  for (const History::Ack& ack : h.acks) {
    // Every acks=all acknowledgement names a batch that was committed at its offset with
    // its bytes (whatever retention did later).
    if (ack.acks_all) {
      auto c = checker.committed_.find(uint64_t(ack.base_offset));
      if (c == checker.committed_.end() || c->second.crc != ack.crc ||
          c->second.count != ack.values.size()) {
        checker.violation(
            fmt::format("acknowledged (acks=all) batch {} at offset {} was never "
                        "committed there",
                        ack.values.front(), ack.base_offset));
      }
    }
    if (ack.base_offset + int64_t(ack.values.size()) <= final_log.log_start) {
      retired++;  // dropped by retention (the checker verified every compaction)
      continue;
    }
    bool intact = true;
    for (size_t k = 0; k < ack.values.size(); k++) {
      auto it = final_log.values.find(ack.base_offset + int64_t(k));
      if (it == final_log.values.end() || it->second != ack.values[k]) intact = false;
    }
    if (ack.acks_all) {
      acks_all++;
      if (!intact) {
        acks_all_lost++;
        checker.violation(
            fmt::format("acknowledged (acks=all) batch {} at offset {} is not in "
                        "the final log",
                        ack.values.front(), ack.base_offset));
      }
    } else {
      acks_one++;
      if (!intact) acks_one_lost++;
    }
  }
  uint64_t served_changed = 0;
  for (const auto& [offset, value] : h.consumed) {
    if (offset < final_log.log_start) continue;
    auto it = final_log.values.find(offset);
    if (it == final_log.values.end() || it->second != value) {
      if (served_changed++ == 0) {
        checker.violation(
            fmt::format("a consumer read '{}' at offset {}; the final log holds "
                        "'{}' there",
                        value, offset, it == final_log.values.end() ? "nothing" : it->second));
      }
    }
  }
  uint64_t unseen = 0;
  for (const auto& [offset, value] : final_log.values)
    unseen += h.consumed.contains(offset) ? 0 : 1;
  if (unseen > 0) {
    checker.violation(
        fmt::format("{} committed records never reached the consumer after the "
                    "drain",
                    unseen));
  }
  std::map<std::string, int> copies;
  uint64_t duplicates = 0;
  for (const auto& [offset, value] : final_log.values) {
    if (++copies[value] == 2) duplicates++;
  }
  for (const std::string& v : h.violations) checker.violation(v, /*integrity=*/true);
  r.counts["records.acked_all"] = acks_all;
  r.counts["records.acked_one"] = acks_one;
  r.counts["records.acked_one_lost"] = acks_one_lost;
  r.counts["records.lost_all"] = acks_all_lost;
  r.counts["records.final"] = final_log.values.size();
  r.counts["records.retired_batches"] = retired;
  r.counts["records.retention_skipped"] = h.retention_skipped;
  r.counts["records.consumed"] = h.consumed.size();
  r.counts["records.retry_duplicates"] = duplicates;
  r.counts["client.produce_attempts"] = h.produce_attempts;
  r.counts["client.produce_errors"] = h.produce_errors;
  r.counts["client.timeouts"] = h.produce_timeouts;
}

// The brokers and clients of one partition in a World, with the checker and history.
struct Harness {
  Harness(uint64_t seed, int brokers_in, const std::string& trace_path, bool retention = false)
      : brokers(brokers_in),
        world(WorldOptions{seed, names_for(brokers_in)}),
        checker(world, brokers_in) {
    if (!trace_path.empty()) {
      KEEL_CHECK(world.scheduler().open_trace_file(trace_path), "cannot write {}", trace_path);
    }
    world.scheduler().record("world", "run.start",
                             fmt::format("seed={} scenario=partition replicas={}", seed, brokers));
    for (int i = 0; i < brokers; i++) {
      const std::string& name = world.node(i).name();
      members[uint64_t(i + 1)] = {name, {name, kPeerPort}, {name, kClientPort}};
      broker_addresses.push_back({name, kClientPort});
    }
    for (int i = 0; i < brokers; i++) {
      world.set_factory(i, [this, i, retention](env::Env& env) -> std::unique_ptr<env::Process> {
        cluster::NodeConfig config;
        config.id = uint64_t(i + 1);
        config.members = members;
        config.replica.dir = "p0";
        // Small segments, so rolling and multi-segment recovery happen in every run.
        config.replica.log.segment_bytes_max = 64 << 10;
        config.replica.log.batch_bytes_max = 16 << 10;
        // Scrub 64 KiB a second: the whole of these small logs every few simulated seconds.
        config.replica.scrub_bytes = 64 << 10;
        if (retention) {
          // Keep 4..8 KiB (about a simulated second of writes) in 4 KiB segments, so that a
          // replica down or cut off for longer needs the leader's log start (InstallSnapshot).
          config.replica.log.batch_bytes_max = 2 << 10;
          config.replica.log.segment_bytes_max = 4 << 10;
          config.replica.retention_bytes = 8 << 10;
          config.replica.retention_check_ticks = 10;
        }
        config.observer = &checker;
        return std::make_unique<cluster::Node>(env, std::move(config));
      });
    }
    for (size_t c = 0; c < kClients.size(); c++) {
      world.set_factory(brokers + int(c),
                        [this, c](env::Env& env) -> std::unique_ptr<env::Process> {
                          ClientOptions o;
                          o.name = kClients[c];
                          o.brokers = broker_addresses;
                          o.producer = c < 3;
                          o.acks_all = c != 2;
                          o.history = &history;
                          o.now_ns = [this] { return world.scheduler().now_ns(); };
                          o.producing = &producing;
                          return std::make_unique<ChaosClient>(env, std::move(o));
                        });
    }
  }

  static std::vector<std::string> names_for(int brokers) {
    std::vector<std::string> names;
    for (int i = 1; i <= brokers; i++) names.push_back(fmt::format("n{}", i));
    for (const char* c : kClients) names.push_back(c);
    return names;
  }

  // The up broker that leads the highest term, or -1.
  int leader() {
    int best = -1;
    uint64_t term = 0;
    for (int i = 0; i < brokers; i++) {
      const cluster::Replica* r = checker.replica(i);
      if (r != nullptr && !r->failed() && r->core().role() == raft::Role::kLeader &&
          r->core().term() >= term) {
        best = i;
        term = r->core().term();
      }
    }
    return best;
  }

  // c1, c2: acks=all producers; c3: acks=1 producer; c4: consumer.
  static constexpr std::array<const char*, 4> kClients = {"c1", "c2", "c3", "c4"};

  const int brokers;
  World world;
  Checker checker;
  History history;
  bool producing = true;
  std::map<uint64_t, cluster::Member> members;
  std::vector<env::Address> broker_addresses;
};

}  // namespace

RunResult run_partition_scenario(const RunOptions& options) {
  RunResult r;
  r.seed = options.seed;
  env::Random shape = env::Random(options.seed).derive("partition/shape");
  const int replicas = shape.chance(1, 4) ? 5 : 3;
  const bool retention = shape.chance(1, 2);
  Harness h(options.seed, replicas, options.trace_path, retention);
  const int brokers = h.brokers;
  World& world = h.world;
  Checker& checker = h.checker;
  History& history = h.history;
  bool& producing = h.producing;
  const std::vector<std::string> clients(Harness::kClients.begin(), Harness::kClients.end());

  env::Random nemesis_rng = world.stream("nemesis");
  FaultMix mix = FaultMix::draw(nemesis_rng);
  if (!options.faults.empty()) KEEL_CHECK(mix.restrict_to(options.faults), "{}", options.faults);
  Nemesis nemesis(world, nemesis_rng, mix);
  nemesis.actions_max = options.faults_max;
  nemesis.storage_nodes = brokers;
  checker.beyond_model_ = options.beyond_model;
  // Beyond the model: corruption on any replica, any number of them, and syncs that lie.
  env::Random beyond_rng = world.stream("beyond");
  std::function<void()> beyond = [&] {
    if (!nemesis.running()) return;
    const int victim = int(beyond_rng.uniform(uint64_t(brokers)));
    SimDisk& disk = world.node(victim).disk();
    DiskFaults f = disk.faults();
    f.lying_sync_ppm = 50'000;
    disk.set_faults(f);
    (void)disk.corrupt_random_sector();
    world.scheduler().after(int64_t(beyond_rng.range(50'000'000, 500'000'000)), [&] { beyond(); });
  };
  nemesis.on_corrupt = [&](int id) {
    if (id < brokers) checker.excuse(id);
    world.scheduler().record(world.node(id).name(), "checker.excuse", "disk corruption");
  };
  r.fault_mix =
      fmt::format("replicas={}{}; {}; buggify {}{}", brokers, retention ? ", retention 8 KiB" : "",
                  nemesis.mix().describe(), world.buggify().run_enabled() ? "on" : "off",
                  options.beyond_model ? "; BEYOND THE MODEL" : "");

  // Periodic global checks.
  std::function<void()> periodic = [&] {
    checker.scan("periodic");
    world.scheduler().after(kScanIntervalNs, [&] { periodic(); });
  };
  world.scheduler().after(kScanIntervalNs, [&] { periodic(); });

  // Safety phase.
  world.start_all();
  nemesis.start();
  if (options.beyond_model) world.scheduler().after(100'000'000, [&] { beyond(); });
  bool bounded = world.run_for(options.safety_ns, options.events_max);
  checker.scan("end of safety phase");

  // Liveness phase: faults off, network healed, every broker restarted.
  nemesis.stop();
  r.faults_injected = nemesis.actions();
  for (int i = 0; i < brokers; i++) {
    if (options.beyond_model) {
      DiskFaults f = world.node(i).disk().faults();
      f.lying_sync_ppm = 0;
      world.node(i).disk().set_faults(f);
    }
    world.restart(i);
  }
  for (size_t c = 0; c < clients.size(); c++) {
    if (!world.node(brokers + int(c)).up()) world.start(brokers + int(c));
  }
  const int64_t liveness_start = world.scheduler().now_ns();
  bounded = bounded && world.run_for(options.liveness_ns, options.events_max);
  checker.scan("end of liveness phase");
  if (history.last_ack_all_ns < liveness_start) {
    std::string state;
    for (int i = 0; i < brokers; i++) {
      const cluster::Replica* rep = checker.replica(i);
      state += rep == nullptr
                   ? fmt::format(" n{}:down", i + 1)
                   : fmt::format(" n{}:{}@{}{}", i + 1, raft::role_name(rep->core().role()),
                                 rep->core().term(), rep->failed() ? "(failed)" : "");
    }
    checker.violation(
        fmt::format("liveness: no acks=all write acknowledged within {:.1f} s "
                    "after the faults stopped;{}",
                    double(options.liveness_ns) / 1e9, state));
  }

  // Drain: producers stop, the consumer catches up; then the final checks.
  producing = false;
  bounded = bounded && world.run_for(kDrainNs, options.events_max);
  checker.scan("final");
  const FinalLog final_log = read_final(world, checker, brokers);
  if (!final_log.complete) checker.violation("final: no leader to read the log from");
  check_history(history, final_log, checker, r);
  if (!bounded) checker.violation(fmt::format("more than {} events", options.events_max));

  r.ok = checker.violation_count_ == 0;
  r.violation_count = checker.violation_count_;
  r.violations = checker.violations_;
  for (const auto& [kind, n] : nemesis.counts()) r.counts["nemesis." + kind] += n;
  for (const auto& [site, n] : world.buggify().fires()) r.counts["buggify." + site] += n;
  r.counts["raft.elections"] = checker.elections_;
  r.counts["checker.beyond_model_losses"] = checker.beyond_losses_;
  r.counts["raft.commits"] = checker.commits_;
  r.counts["checker.scans"] = checker.scans_;
  r.counts["raft.retentions"] = checker.retentions_;
  r.counts["raft.snapshot_installs"] = checker.snapshot_installs_;
  const DiskStats disk = world.disk_stats();
  r.counts["disk.corruptions"] = disk.corruptions();

  world.scheduler().record("world", "run.end", r.ok ? "ok" : "violations");
  r.trace_hash = world.scheduler().trace_hash();
  r.trace_events = world.scheduler().trace_events();
  r.events = world.scheduler().events_run();
  r.simulated_ns = world.scheduler().now_ns();
  std::string nemesis_line;
  for (const auto& [kind, n] : nemesis.counts()) nemesis_line += fmt::format(" {}={}", kind, n);
  r.summary.push_back(fmt::format("faults: {}", r.fault_mix));
  r.summary.push_back(fmt::format("nemesis:{}", nemesis_line.empty() ? " none" : nemesis_line));
  r.summary.push_back(
      fmt::format("raft: elections={} commits={} high_watermark={} log_start={} retentions={} "
                  "snapshot_installs={}",
                  checker.elections_, checker.commits_, final_log.high_watermark,
                  final_log.log_start, checker.retentions_, checker.snapshot_installs_));
  r.summary.push_back(
      fmt::format("records: acked_all={} acked_one={} acked_one_lost={} final={} consumed={} "
                  "retry_duplicates={} retired_batches={} consumer_skipped={}",
                  r.counts["records.acked_all"], r.counts["records.acked_one"],
                  r.counts["records.acked_one_lost"], r.counts["records.final"],
                  r.counts["records.consumed"], r.counts["records.retry_duplicates"],
                  r.counts["records.retired_batches"], r.counts["records.retention_skipped"]));
  if (options.beyond_model) {
    r.summary.push_back(fmt::format("beyond the model: {} losses (expected, not violations)",
                                    checker.beyond_losses_));
  }
  r.summary.push_back("disk: " + disk.summary());
  r.summary.push_back(fmt::format("events: {} run, {} traced, {:.3f} simulated seconds", r.events,
                                  r.trace_events, double(r.simulated_ns) / 1e9));
  return r;
}

}  // namespace keel::sim

namespace keel::sim {

FailoverResult run_failover(uint64_t seed, int crashes, bool buggify) {
  constexpr int64_t kStepNs = 1'000'000;         // 1 ms resolution
  constexpr int64_t kGiveUpNs = 30'000'000'000;  // per failover
  constexpr int64_t kSettleNs = 2'000'000'000;
  FailoverResult out;
  Harness h(seed, 3, "");
  // A healthy cluster unless asked: an enabled BUGGIFY site can drop a quarter of the peer
  // messages, which is a fault of its own.
  if (!buggify) h.world.buggify().force_run_enabled(false);
  h.world.start_all();
  h.world.run_for(kSettleNs);
  for (int k = 0; k < crashes; k++) {
    const int leader = h.leader();
    if (leader < 0) {
      h.world.run_for(kSettleNs);
      continue;
    }
    const int64_t t0 = h.world.scheduler().now_ns();
    const size_t acks_before = h.history.acks.size();
    const uint64_t old_term = h.checker.replica(leader)->core().term();
    h.world.crash(leader);
    out.crashes++;
    int64_t latency = -1, elected = -1;
    while (h.world.scheduler().now_ns() - t0 < kGiveUpNs && latency < 0) {
      h.world.run_for(kStepNs);
      const int now_leader = h.leader();
      if (elected < 0 && now_leader >= 0 &&
          h.checker.replica(now_leader)->core().term() > old_term) {
        elected = h.world.scheduler().now_ns() - t0;
      }
      for (size_t i = acks_before; i < h.history.acks.size(); i++) {
        if (h.history.acks[i].acks_all && h.history.acks[i].at_ns > t0) {
          latency = h.history.acks[i].at_ns - t0;
          break;
        }
      }
    }
    if (latency >= 0) out.latencies_ns.push_back(latency);
    if (elected >= 0) out.election_ns.push_back(elected);
    h.world.start(leader);
    h.world.run_for(kSettleNs);
  }
  out.violations = h.checker.violation_count_;
  return out;
}

}  // namespace keel::sim

namespace keel::sim {

LoadResult run_partition_load(uint64_t seed, int64_t simulated_ns) {
  Harness h(seed, 3, "");
  h.world.buggify().force_run_enabled(false);  // no faults at all, BUGGIFY included
  h.world.start_all();
  h.world.run_for(simulated_ns);
  LoadResult out;
  out.simulated_ns = h.world.scheduler().now_ns();
  out.events = h.world.scheduler().events_run();
  for (const History::Ack& a : h.history.acks) out.acked_records += a.values.size();
  out.violations = h.checker.violation_count_;
  return out;
}

}  // namespace keel::sim
