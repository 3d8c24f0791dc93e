#include "sim/scenario.h"

#include <fmt/format.h>

#include "base/check.h"
#include "sim/chaos.h"
#include "sim/nemesis.h"
#include "sim/workload.h"
#include "sim/world.h"

namespace keel::sim {
namespace {

constexpr uint16_t kWorkloadPort = 9000;
// After the final crash and restart, recovery runs in the constructors; a little time lets
// the first syncs complete too.
constexpr int64_t kFinalRunNs = 200'000'000;

std::vector<std::string> node_names(int n) {
  std::vector<std::string> names;
  for (int i = 1; i <= n; i++) names.push_back(fmt::format("n{}", i));
  return names;
}

WorkloadProcess& workload(World& world, int id) {
  return *static_cast<WorkloadProcess*>(world.node(id).process());
}

// Per-seed variety in the healthy network: a LAN, a slower LAN, or a WAN-like link.
LinkParams draw_links(env::Random& rng) {
  LinkParams p;
  switch (rng.uniform(3)) {
    case 0:
      break;
    case 1:
      p.latency_min_ns = 500'000;
      p.latency_spread_ns = 2'000'000;
      p.bandwidth_bytes_per_s = 125'000'000;
      break;
    default:
      p.latency_min_ns = 5'000'000;
      p.latency_spread_ns = 20'000'000;
      p.tail_per_million = 10'000;
      p.tail_max_ns = 200'000'000;
      p.bandwidth_bytes_per_s = 12'500'000;
      break;
  }
  return p;
}

void add_counts(RunResult& r, const std::string& prefix, const std::map<std::string, uint64_t>& m) {
  for (const auto& [k, v] : m) r.counts[prefix + k] += v;
}

}  // namespace

const std::map<std::string, Scenario>& scenarios() {
  static const std::map<std::string, Scenario> all = {{"world", run_world_scenario},
                                                      {"partition", run_partition_scenario}};
  return all;
}

RunResult run_world_scenario(const RunOptions& options) {
  KEEL_CHECK(options.nodes >= 1 && options.nodes <= int(World::kNodesMax));
  RunResult r;
  r.seed = options.seed;
  const std::vector<std::string> names = node_names(options.nodes);
  World world(WorldOptions{options.seed, names});
  if (!options.trace_path.empty()) {
    KEEL_CHECK(world.scheduler().open_trace_file(options.trace_path), "cannot write {}",
               options.trace_path);
  }
  world.scheduler().record("world", "run.start",
                           fmt::format("seed={} nodes={}", options.seed, options.nodes));
  env::Random setup = world.stream("setup");
  world.fabric().set_all_link_params(draw_links(setup));

  WorkloadChecker checker;
  world.set_factory_all([&](env::Env& env) -> std::unique_ptr<env::Process> {
    WorkloadOptions wo;
    wo.listen = env::Address{std::string(env.node()), kWorkloadPort};
    for (const std::string& name : names) {
      if (name != env.node()) wo.peers.push_back(env::Address{name, kWorkloadPort});
    }
    wo.observer = &checker;
    return std::make_unique<WorkloadProcess>(env, std::move(wo));
  });

  // Two statements, two streams: in one expression the order of "copy the stream" and "draw
  // from it" would be up to the compiler (g++ and clang++ differ).
  env::Random mix_rng = world.stream("nemesis/mix");
  const FaultMix mix = FaultMix::draw(mix_rng);
  Nemesis nemesis(world, world.stream("nemesis"), mix);
  nemesis.on_corrupt = [&](int id) {
    checker.excuse(world.node(id).name());
    world.scheduler().record(world.node(id).name(), "checker.excuse", "disk corruption");
  };
  r.fault_mix = fmt::format("{}; buggify {}", nemesis.mix().describe(),
                            world.buggify().run_enabled() ? "on" : "off");

  // Safety phase.
  world.start_all();
  nemesis.start();
  bool bounded = world.run_for(options.safety_ns, options.events_max);

  // Liveness phase: faults off, everything healed and up; a node whose log a failed sync
  // poisoned gets a fresh incarnation (restarting is how it recovers).
  nemesis.stop();
  std::vector<uint64_t> acked_before(size_t(world.size()));
  for (int id = 0; id < world.size(); id++) {
    if (workload(world, id).poisoned()) world.restart(id);
    acked_before[size_t(id)] = workload(world, id).acked_upto();
  }
  bounded = bounded && world.run_for(options.liveness_ns, options.events_max);
  std::vector<std::string> liveness_failures;
  for (int id = 0; id < world.size(); id++) {
    WorkloadProcess& w = workload(world, id);
    if (w.acked_upto() <= acked_before[size_t(id)]) {
      liveness_failures.push_back(
          fmt::format("{}: no record acknowledged in the liveness phase", world.node(id).name()));
    }
    if (w.open_peers() != size_t(world.size() - 1)) {
      liveness_failures.push_back(fmt::format("{}: connected to {} of {} peers after healing",
                                              world.node(id).name(), w.open_peers(),
                                              world.size() - 1));
    }
  }

  // Final check: every node crashes and recovers; the checker verifies each recovered log.
  for (int id = 0; id < world.size(); id++) world.crash(id);
  for (int id = 0; id < world.size(); id++) world.start(id);
  bounded = bounded && world.run_for(kFinalRunNs, options.events_max);

  r.ok = checker.ok() && liveness_failures.empty() && bounded;
  r.violation_count = checker.violation_count() + liveness_failures.size() + (bounded ? 0 : 1);
  r.violations = checker.violations();
  for (auto& f : liveness_failures) r.violations.push_back("liveness: " + f);
  if (!bounded) r.violations.push_back(fmt::format("more than {} events", options.events_max));

  add_counts(r, "nemesis.", nemesis.counts());
  add_counts(r, "buggify.", world.buggify().fires());
  const FabricStats& net = world.fabric().stats();
  const WorkloadChecker::Counts& c = checker.counts();
  const DiskStats disk = world.disk_stats();
  r.counts["net.resets"] = net.resets;
  r.counts["net.refused"] = net.refused;
  r.counts["net.connect_timeouts"] = net.connect_timeouts;
  r.counts["disk.crash_sectors_torn"] = disk.crash_sectors_torn;
  r.counts["disk.crash_sectors_dropped"] = disk.crash_sectors_dropped;
  r.counts["disk.corruptions"] = disk.corruptions();
  r.counts["workload.acked"] = c.acked;
  r.counts["workload.duplicates"] = c.duplicates;
  r.counts["workload.recoveries"] = c.recoveries;

  world.scheduler().record("world", "run.end", r.ok ? "ok" : "violations");
  r.trace_hash = world.scheduler().trace_hash();
  r.trace_events = world.scheduler().trace_events();
  // The trace ends here: tearing the world down is not part of the run.
  world.scheduler().close_trace_file();
  r.events = world.scheduler().events_run();
  r.simulated_ns = world.scheduler().now_ns();

  std::string nemesis_line;
  for (const auto& [kind, n] : nemesis.counts()) nemesis_line += fmt::format(" {}={}", kind, n);
  uint64_t buggify_fires = 0;
  std::string buggify_sites;
  for (const auto& [site, n] : world.buggify().fires()) {
    buggify_fires += n;
    buggify_sites += fmt::format(" {}={}", site, n);
  }
  r.summary.push_back(fmt::format("faults: {}", r.fault_mix));
  r.summary.push_back(fmt::format("nemesis:{}", nemesis_line.empty() ? " none" : nemesis_line));
  r.summary.push_back(
      fmt::format("nodes: starts={} crashes={}", world.stats().starts, world.stats().crashes));
  r.summary.push_back(fmt::format(
      "network: connects={} accepts={} refused={} timeouts={} resets={} closes={} "
      "deliveries={} bytes={} lost_bytes={} cuts={} heals={} stalls={}",
      net.connects, net.accepts, net.refused, net.connect_timeouts, net.resets, net.closes,
      net.deliveries, net.bytes_delivered, net.bytes_lost, net.cuts, net.heals, net.stalls));
  r.summary.push_back("disk: " + disk.summary());
  r.summary.push_back(fmt::format("buggify: {}, {} fires at {} sites{}",
                                  world.buggify().run_enabled() ? "on" : "off", buggify_fires,
                                  world.buggify().fires().size(), buggify_sites));
  r.summary.push_back(
      fmt::format("workload: written={} acked={} recoveries={} recovered={} sent={} received={} "
                  "duplicates={} disk_failures={}",
                  c.written, c.acked, c.recoveries, c.recovered_records, c.sent, c.received,
                  c.duplicates, c.disk_failures));
  r.summary.push_back(fmt::format("events: {} run, {} traced, {:.3f} simulated seconds", r.events,
                                  r.trace_events, double(r.simulated_ns) / 1e9));
  return r;
}

}  // namespace keel::sim
