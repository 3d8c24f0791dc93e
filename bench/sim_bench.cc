// Simulator speed for the world-proof workload: simulated seconds per wall second and
// events per second, for (a) a 3-node cluster running the workload with no faults (the
// steady load), (b) the full scenario under its per-seed nemesis, and (c) the bare
// scheduler. Figures and the command that produced them: docs/benchmarks.md (section sim).
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "sim/scenario.h"
#include "sim/workload.h"
#include "sim/world.h"

namespace keel::sim {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

void report(benchmark::State& state, double simulated_s, double events) {
  state.counters["sim_s_per_wall_s"] = benchmark::Counter(simulated_s, benchmark::Counter::kIsRate);
  state.counters["events_per_s"] = benchmark::Counter(events, benchmark::Counter::kIsRate);
}

// Three nodes run the workload for state.range(0) simulated seconds, no nemesis.
void BM_WorkloadNoFaults(benchmark::State& state) {
  const int64_t seconds = state.range(0);
  double simulated = 0, events = 0;
  uint64_t seed = 1;
  for (auto _ : state) {
    const std::vector<std::string> names = {"n1", "n2", "n3"};
    World world(WorldOptions{seed++, names});
    WorkloadChecker checker;
    world.set_factory_all([&](env::Env& env) -> std::unique_ptr<env::Process> {
      WorkloadOptions o;
      o.listen = env::Address{std::string(env.node()), 9000};
      for (const auto& n : names) {
        if (n != env.node()) o.peers.push_back(env::Address{n, 9000});
      }
      o.observer = &checker;
      return std::make_unique<WorkloadProcess>(env, std::move(o));
    });
    world.start_all();
    world.run_for(seconds * kSecond);
    if (!checker.ok()) state.SkipWithError("checker failed");
    simulated += double(world.scheduler().now_ns()) / 1e9;
    events += double(world.scheduler().events_run());
  }
  report(state, simulated, events);
}
BENCHMARK(BM_WorkloadNoFaults)->Arg(10)->Unit(benchmark::kMillisecond)->UseRealTime();

// The `keel sim` scenario: safety phase of state.range(0) s under the nemesis, 5 s liveness,
// final crash-recovery, one seed per iteration (seeds 1, 2, ...: varied fault mixes).
void BM_WorldScenario(benchmark::State& state) {
  double simulated = 0, events = 0;
  uint64_t seed = 1;
  for (auto _ : state) {
    RunOptions o;
    o.seed = seed++;
    o.safety_ns = state.range(0) * kSecond;
    const RunResult r = run_world_scenario(o);
    if (!r.ok) state.SkipWithError("checker failed");
    simulated += double(r.simulated_ns) / 1e9;
    events += double(r.events);
  }
  report(state, simulated, events);
}
BENCHMARK(BM_WorldScenario)->Arg(10)->Unit(benchmark::kMillisecond)->UseRealTime();

// The bare scheduler: schedule and run empty events (an upper bound on event throughput).
void BM_SchedulerEvents(benchmark::State& state) {
  Scheduler scheduler;
  int64_t t = 0;
  for (auto _ : state) {
    for (int i = 0; i < 1000; i++) scheduler.at(t + (i * 7919) % 1000, [] {});
    t += 1000;
    scheduler.run_until(t);
  }
  state.counters["events_per_s"] =
      benchmark::Counter(double(scheduler.events_run()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SchedulerEvents)->UseRealTime();

}  // namespace
}  // namespace keel::sim

BENCHMARK_MAIN();
