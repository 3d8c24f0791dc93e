#include "sim/cli.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "base/check.h"
#include "sim/nemesis.h"
#include "sim/scenario.h"

namespace keel::sim {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr uint64_t kSeedsMax = 100'000'000;
constexpr int64_t kSecondsMax = 24 * 3600;
// Every kRecheckEvery-th seed of a multi-seed run is run twice and must give the same hash.
constexpr uint64_t kRecheckEvery = 20;
constexpr uint64_t kJobsMax = 64;

struct Args {
  std::optional<uint64_t> seed;
  std::optional<uint64_t> seeds;
  uint64_t seed_start = 1;
  std::optional<int64_t> seconds;
  std::string trace;
  std::string scenario = "partition";
  uint64_t jobs = 1;
  std::string faults;       // restrict the nemesis to these kinds
  uint64_t faults_max = 0;  // at most this many nemesis actions
  bool beyond_model = false;
  std::string plant;  // a planted bug (builds with -DKEEL_PLANT_BUGS=ON)
  bool shrink = false;
};

int usage(const CliContext& ctx) {
  fmt::print(ctx.err,
             "usage: keel sim --seed S [--trace FILE] [--shrink] [options]\n"
             "       keel sim --seeds N [--seed-start S] [--jobs J] [options]\n"
             "       keel sim diff A.jsonl B.jsonl\n"
             "options:\n"
             "  --scenario NAME   partition (default: a replicated partition under chaos) or "
             "world\n"
             "  --seconds N       simulated seconds under faults per seed (default 10, or 3 "
             "with --seeds)\n"
             "  --faults LIST     only these fault kinds: crash,partition,reset,stall,slow-link,"
             "drift,clock-jump,disk-error,corruption\n"
             "  --faults-max K    at most K nemesis actions per seed\n"
             "  --beyond-model    lying syncs and corruption on every replica; only serving "
             "corrupt data is a violation\n"
             "  --plant NAME      plant a bug (builds configured with -DKEEL_PLANT_BUGS=ON)\n"
             "  --shrink          with --seed: search for a smaller failing fault schedule\n");
  return 2;
}

bool parse_u64(const char* s, uint64_t* out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || s[0] == '-') return false;
  *out = v;
  return true;
}

std::optional<Args> parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; i++) {
    std::string_view a = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    uint64_t v = 0;
    if (a == "--seed" && parse_u64(value, &v)) {
      args.seed = v;
    } else if (a == "--seeds" && parse_u64(value, &v) && v > 0 && v <= kSeedsMax) {
      args.seeds = v;
    } else if (a == "--seed-start" && parse_u64(value, &v)) {
      args.seed_start = v;
    } else if (a == "--seconds" && parse_u64(value, &v) && v > 0 && int64_t(v) <= kSecondsMax) {
      args.seconds = int64_t(v);
    } else if (a == "--trace" && value != nullptr) {
      args.trace = value;
    } else if (a == "--scenario" && value != nullptr) {
      args.scenario = value;
    } else if (a == "--jobs" && parse_u64(value, &v) && v >= 1 && v <= kJobsMax) {
      args.jobs = v;
    } else if (a == "--faults" && value != nullptr && FaultMix().restrict_to(value)) {
      args.faults = value;
    } else if (a == "--faults-max" && parse_u64(value, &v)) {
      args.faults_max = v;
    } else if (a == "--plant" && value != nullptr) {
      args.plant = value;
    } else if (a == "--beyond-model") {
      args.beyond_model = true;
      continue;
    } else if (a == "--shrink") {
      args.shrink = true;
      continue;
    } else {
      return std::nullopt;
    }
    i++;
  }
  if (args.seed.has_value() == args.seeds.has_value()) return std::nullopt;
  if (args.seeds && (!args.trace.empty() || args.shrink)) return std::nullopt;
  return args;
}

std::string options_flags(const Args& args, int64_t seconds) {
  std::string out = fmt::format(" --seconds {} --scenario {}", seconds, args.scenario);
  if (!args.faults.empty()) out += " --faults " + args.faults;
  if (args.faults_max > 0) out += fmt::format(" --faults-max {}", args.faults_max);
  if (args.beyond_model) out += " --beyond-model";
  if (!args.plant.empty()) out += " --plant " + args.plant;
  return out;
}

std::string reproduce(const CliContext& ctx, const Args& args, uint64_t seed, int64_t seconds) {
  return fmt::format("{} sim --seed {}{}", ctx.binary, seed, options_flags(args, seconds));
}

RunOptions run_options(const Args& args, uint64_t seed, int64_t seconds) {
  RunOptions options;
  options.seed = seed;
  options.safety_ns = seconds * kNanosPerSecond;
  options.faults = args.faults;
  options.faults_max = args.faults_max;
  options.beyond_model = args.beyond_model;
  return options;
}

double now_s(const CliContext& ctx) { return ctx.wall_seconds ? ctx.wall_seconds() : 0.0; }

// Searches for a smaller fault schedule that still fails: fewer simulated seconds, fewer
// fault kinds, fewer nemesis actions. Every candidate is a full deterministic run.
int shrink(const CliContext& ctx, Args args, const Scenario& scenario, int64_t seconds,
           const RunResult& first) {
  uint64_t runs = 0;
  auto fails = [&](const Args& a, int64_t secs, RunResult* out) {
    runs++;
    RunResult r = scenario(run_options(a, *a.seed, secs));
    if (out != nullptr) *out = r;
    return !r.ok;
  };
  RunResult best = first;
  // 1. Shorter safety phase.
  while (seconds > 1) {
    RunResult r;
    if (!fails(args, seconds / 2, &r)) break;
    seconds /= 2;
    best = r;
  }
  // 2. Fewer fault kinds: drop each kind the seed enabled while the run still fails.
  if (args.faults.empty()) {
    const std::string mix = best.fault_mix;
    std::string kinds;
    for (const char* k : {"crash", "partition", "reset", "stall", "slow-link", "drift",
                          "clock-jump", "disk-error", "corruption"}) {
      if (mix.find(k) != std::string::npos) kinds += std::string(kinds.empty() ? "" : ",") + k;
    }
    args.faults = kinds;
  }
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<std::string> list;
    for (size_t at = 0; at <= args.faults.size();) {
      const size_t comma = std::min(args.faults.find(',', at), args.faults.size());
      list.push_back(args.faults.substr(at, comma - at));
      at = comma + 1;
    }
    if (list.size() <= 1) break;
    for (size_t i = 0; i < list.size() && !changed; i++) {
      Args trial = args;
      trial.faults.clear();
      for (size_t j = 0; j < list.size(); j++) {
        if (j != i) trial.faults += (trial.faults.empty() ? "" : ",") + list[j];
      }
      RunResult r;
      if (fails(trial, seconds, &r)) {
        args = trial;
        best = r;
        changed = true;
      }
    }
  }
  // 3. Fewest nemesis actions: binary search on the cap.
  uint64_t lo = 0, hi = best.faults_injected;
  while (hi > 0 && lo + 1 < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    Args trial = args;
    trial.faults_max = mid;
    RunResult r;
    if (fails(trial, seconds, &r)) {
      hi = mid;
      best = r;
    } else {
      lo = mid;
    }
  }
  if (hi > 0) {
    Args trial = args;
    trial.faults_max = hi;
    RunResult r;
    if (fails(trial, seconds, &r)) {
      args.faults_max = hi;
      best = r;
    }
  }
  fmt::print(ctx.out, "shrink: {} runs; {} fault actions over {} s (was {} over {} s)\n", runs,
             best.faults_injected, seconds, first.faults_injected, args.seconds.value_or(10));
  for (const std::string& v : best.violations) fmt::print(ctx.out, "VIOLATION: {}\n", v);
  fmt::print(ctx.out, "reproduce (shrunk): {} sim --seed {}{}\n", ctx.binary, *args.seed,
             options_flags(args, seconds));
  return 1;
}

int run_one(const CliContext& ctx, const Args& args, const Scenario& scenario) {
  const int64_t seconds = args.seconds.value_or(10);
  fmt::print(ctx.out, "keel sim seed={} build={}{}\n", *args.seed, ctx.build_id,
             options_flags(args, seconds));
  std::fflush(ctx.out);
  RunOptions options = run_options(args, *args.seed, seconds);
  options.trace_path = args.trace;
  const double t0 = now_s(ctx);
  const RunResult r = scenario(options);
  const double wall = now_s(ctx) - t0;
  for (const std::string& line : r.summary) fmt::print(ctx.out, "{}\n", line);
  if (wall > 0) {
    fmt::print(ctx.out, "speed: {:.1f} simulated s / wall s, {:.0f} events / s\n",
               double(r.simulated_ns) / 1e9 / wall, double(r.events) / wall);
  }
  if (!args.trace.empty()) fmt::print(ctx.out, "trace: {}\n", args.trace);
  for (const std::string& v : r.violations) fmt::print(ctx.out, "VIOLATION: {}\n", v);
  if (r.ok) {
    fmt::print(ctx.out, "verdict: PASS\n");
  } else {
    fmt::print(ctx.out, "verdict: FAIL ({} violations)\nreproduce: {}\n", r.violation_count,
               reproduce(ctx, args, r.seed, seconds));
  }
  fmt::print(ctx.out, "trace hash: {:016x}\n", r.trace_hash);
  if (!r.ok && args.shrink) {
    std::fflush(ctx.out);
    shrink(ctx, args, scenario, seconds, r);
  }
  return r.ok ? 0 : 1;
}

struct SeedOutcome {
  RunResult result;
  bool deterministic = true;  // re-run gave the same hash (or was not re-run)
  bool rechecked = false;
};

uint64_t sum_prefix(const std::map<std::string, uint64_t>& totals, std::string_view prefix) {
  uint64_t n = 0;
  for (const auto& [k, v] : totals) n += k.starts_with(prefix) ? v : 0;
  return n;
}

int run_many(const CliContext& ctx, const Args& args, const Scenario& scenario) {
  const int64_t seconds = args.seconds.value_or(3);
  const uint64_t first = args.seed_start;
  const uint64_t count = *args.seeds;
  fmt::print(ctx.out, "keel sim seeds={}..{} jobs={} build={}{}\n", first, first + count - 1,
             args.jobs, ctx.build_id, options_flags(args, seconds));
  std::fflush(ctx.out);
  std::vector<SeedOutcome> outcomes(count);
  std::atomic<uint64_t> next{0}, done{0}, failed{0};
  std::mutex print_mu;
  const double t0 = now_s(ctx);
  const bool tty = isatty(fileno(ctx.err)) != 0;
  uint64_t last_reported = 0;
  auto progress = [&](uint64_t n) {
    // Called with print_mu held.
    const uint64_t step = std::max<uint64_t>(1, count / (tty ? 100 : 10));
    if (n != count && n < last_reported + step) return;
    last_reported = n;
    const int width = 30;
    const int filled = int(double(n) / double(count) * width);
    fmt::print(ctx.err, "{}[{}{}] {}/{} seeds, {} failed, {:.0f} s{}", tty ? "\r" : "",
               std::string(size_t(filled), '#'), std::string(size_t(width - filled), ' '), n, count,
               failed.load(), now_s(ctx) - t0, tty && n != count ? "" : "\n");
    std::fflush(ctx.err);
  };
  auto worker = [&] {
    for (;;) {
      const uint64_t i = next.fetch_add(1);
      if (i >= count) return;
      const uint64_t seed = first + i;
      SeedOutcome& o = outcomes[i];
      o.result = scenario(run_options(args, seed, seconds));
      // Determinism self-check: about 5% of the seeds run twice and must agree bit for bit.
      if (i % kRecheckEvery == 0) {
        o.rechecked = true;
        o.deterministic =
            scenario(run_options(args, seed, seconds)).trace_hash == o.result.trace_hash;
      }
      const bool ok = o.result.ok && o.deterministic;
      if (!ok) failed++;
      std::lock_guard<std::mutex> lock(print_mu);
      if (!ok) {
        if (tty) fmt::print(ctx.err, "\n");
        if (!o.deterministic) {
          fmt::print(ctx.out, "FAIL seed={}: nondeterminism: the same seed gave two trace hashes\n",
                     seed);
        }
        if (!o.result.ok) {
          fmt::print(ctx.out, "FAIL seed={} ({}): {}\n", seed, o.result.fault_mix,
                     o.result.violations.empty() ? "?" : o.result.violations.front());
        }
        fmt::print(ctx.out, "  reproduce: {}\n", reproduce(ctx, args, seed, seconds));
        std::fflush(ctx.out);
      }
      progress(++done);
    }
  };
  std::vector<std::thread> threads;
  for (uint64_t j = 0; j < args.jobs; j++) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  const double wall = now_s(ctx) - t0;

  std::map<std::string, uint64_t> totals;
  uint64_t events = 0, rechecks = 0;
  int64_t simulated_ns = 0;
  for (const SeedOutcome& o : outcomes) {
    for (const auto& [k, v] : o.result.counts) totals[k] += v;
    events += o.result.events;
    simulated_ns += o.result.simulated_ns;
    rechecks += o.rechecked ? 1 : 0;
  }
  const uint64_t failures = failed.load();
  std::string faults;
  for (const auto& [k, v] : totals) {
    if (k.starts_with("nemesis.")) faults += fmt::format(" {}={}", k.substr(8), v);
  }
  fmt::print(ctx.out, "verdict: {} {}/{} seeds passed\n", failures == 0 ? "PASS" : "FAIL",
             count - failures, count);
  auto row = [&](std::string_view name, const std::string& value) {
    fmt::print(ctx.out, "  {:<22}{}\n", name, value);
  };
  row("scenarios", fmt::format("{} ({} re-run for determinism)", count, rechecks));
  row("simulated time", fmt::format("{:.1f} s ({} events)", double(simulated_ns) / 1e9, events));
  row("faults injected", faults.empty() ? "none" : faults.substr(1));
  row("buggify", fmt::format("{} fires at {} sites", sum_prefix(totals, "buggify."), [&] {
        uint64_t n = 0;
        for (const auto& [k, v] : totals) n += k.starts_with("buggify.");
        return n;
      }()));
  if (args.scenario == "partition") {
    row("elections", fmt::format("{}", totals["raft.elections"]));
    row("records acked", fmt::format("acks=all {}, acks=1 {}", totals["records.acked_all"],
                                     totals["records.acked_one"]));
    row("records lost", fmt::format("acks=all {} (violations), acks=1 {} (expected)",
                                    totals["records.lost_all"], totals["records.acked_one_lost"]));
    row("retry duplicates",
        fmt::format("{} (no idempotence yet)", totals["records.retry_duplicates"]));
    row("retention", fmt::format("{} log-start moves, {} snapshot installs, {} acked batches "
                                 "retired (checked committed, not read back)",
                                 totals["raft.retentions"], totals["raft.snapshot_installs"],
                                 totals["records.retired_batches"]));
    if (args.beyond_model) {
      row("beyond-model losses",
          fmt::format("{} (expected)", totals["checker.beyond_model_losses"]));
    }
  } else {
    row("workload", fmt::format("acked={} recoveries={} duplicates={}", totals["workload.acked"],
                                totals["workload.recoveries"], totals["workload.duplicates"]));
  }
  row("violations", fmt::format("{} seeds", failures));
  // One fingerprint of the whole run's behaviour: the seeds' trace hashes folded in seed
  // order. The same build, seeds and options give the same value on any machine and any
  // --jobs; a refactoring meant to change nothing must leave it unchanged.
  uint64_t combined = 0xcbf29ce484222325ULL;
  for (const SeedOutcome& o : outcomes)
    combined = (combined ^ o.result.trace_hash) * 0x100000001b3ULL;
  row("trace hash", fmt::format("{:016x} (all seeds, in seed order)", combined));
  if (wall > 0) {
    row("speed", fmt::format("{:.0f} scenarios/min, {:.0f}x simulated/wall ({} jobs), {:.2f}M "
                             "events/s",
                             double(count) / wall * 60, double(simulated_ns) / 1e9 / wall,
                             args.jobs, double(events) / wall / 1e6));
    row("wall time", fmt::format("{:.1f} s", wall));
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

int diff_traces(const std::string& a, const std::string& b, std::FILE* out) {
  std::ifstream fa(a), fb(b);
  if (!fa || !fb) {
    fmt::print(out, "cannot read {}\n", !fa ? a : b);
    return 2;
  }
  std::string la, lb, prev;
  for (uint64_t line = 1;; line++) {
    const bool ga = bool(std::getline(fa, la));
    const bool gb = bool(std::getline(fb, lb));
    if (!ga && !gb) {
      fmt::print(out, "identical: {} events\n", line - 1);
      return 0;
    }
    if (ga && gb && la == lb) {
      prev = std::move(la);
      continue;
    }
    fmt::print(out, "first difference at event {}\n", line);
    if (!prev.empty()) fmt::print(out, "  before: {}\n", prev);
    fmt::print(out, "  {}: {}\n", a, ga ? la : "<end of trace>");
    fmt::print(out, "  {}: {}\n", b, gb ? lb : "<end of trace>");
    return 1;
  }
}

int sim_main(int argc, char** argv, const CliContext& ctx) {
  if (argc >= 2 && std::strcmp(argv[1], "diff") == 0) {
    if (argc != 4) return usage(ctx);
    return diff_traces(argv[2], argv[3], ctx.out);
  }
  const std::optional<Args> args = parse(argc, argv);
  if (!args) return usage(ctx);
  if (!args->plant.empty()) base::set_planted_bug(args->plant);
  auto it = scenarios().find(args->scenario);
  if (it == scenarios().end()) {
    fmt::print(ctx.err, "unknown scenario {}\n", args->scenario);
    return 2;
  }
  return args->seed ? run_one(ctx, *args, it->second) : run_many(ctx, *args, it->second);
}

}  // namespace keel::sim
