#include "sim/cli.h"

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string_view>

#include "sim/scenario.h"

namespace keel::sim {
namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr uint64_t kSeedsMax = 100'000'000;
constexpr int64_t kSecondsMax = 24 * 3600;
// Every kRecheckEvery-th seed of a multi-seed run is run twice and must give the same hash.
constexpr uint64_t kRecheckEvery = 20;

struct Args {
  std::optional<uint64_t> seed;
  std::optional<uint64_t> seeds;
  uint64_t seed_start = 1;
  std::optional<int64_t> seconds;
  std::string trace;
  std::string scenario = "world";
};

int usage(const CliContext& ctx) {
  fmt::print(ctx.err,
             "usage: keel sim --seed S [--trace FILE] [--seconds N] [--scenario NAME]\n"
             "       keel sim --seeds N [--seed-start S] [--seconds N] [--scenario NAME]\n"
             "       keel sim diff A.jsonl B.jsonl\n"
             "  --seconds N   simulated seconds under faults per seed (default 10, or 3 with "
             "--seeds)\n");
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
    } else {
      return std::nullopt;
    }
    i++;
  }
  if (args.seed.has_value() == args.seeds.has_value()) return std::nullopt;
  if (args.seeds && !args.trace.empty()) return std::nullopt;
  return args;
}

std::string reproduce(const CliContext& ctx, const Args& args, uint64_t seed, int64_t seconds) {
  return fmt::format("{} sim --seed {} --seconds {} --scenario {}", ctx.binary, seed, seconds,
                     args.scenario);
}

double now_s(const CliContext& ctx) { return ctx.wall_seconds ? ctx.wall_seconds() : 0.0; }

int run_one(const CliContext& ctx, const Args& args, const Scenario& scenario) {
  const int64_t seconds = args.seconds.value_or(10);
  fmt::print(ctx.out, "keel sim seed={} build={} scenario={} seconds={}\n", *args.seed,
             ctx.build_id, args.scenario, seconds);
  std::fflush(ctx.out);
  RunOptions options;
  options.seed = *args.seed;
  options.safety_ns = seconds * kNanosPerSecond;
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
  return r.ok ? 0 : 1;
}

int run_many(const CliContext& ctx, const Args& args, const Scenario& scenario) {
  const int64_t seconds = args.seconds.value_or(3);
  const uint64_t first = args.seed_start;
  const uint64_t last = first + *args.seeds - 1;
  fmt::print(ctx.out, "keel sim seeds={}..{} build={} scenario={} seconds={}\n", first, last,
             ctx.build_id, args.scenario, seconds);
  std::fflush(ctx.out);
  uint64_t failures = 0, rechecks = 0, events = 0;
  int64_t simulated_ns = 0;
  std::map<std::string, uint64_t> totals;
  const double t0 = now_s(ctx);
  for (uint64_t seed = first; seed <= last; seed++) {
    RunOptions options;
    options.seed = seed;
    options.safety_ns = seconds * kNanosPerSecond;
    const RunResult r = scenario(options);
    events += r.events;
    simulated_ns += r.simulated_ns;
    for (const auto& [k, v] : r.counts) totals[k] += v;
    bool ok = r.ok;
    if ((seed - first) % kRecheckEvery == 0) {
      rechecks++;
      const RunResult again = scenario(options);
      if (again.trace_hash != r.trace_hash) {
        ok = false;
        fmt::print(ctx.out, "FAIL seed={}: nondeterminism: hash {:016x} then {:016x}\n", seed,
                   r.trace_hash, again.trace_hash);
      }
    }
    if (!r.ok) {
      fmt::print(ctx.out, "FAIL seed={} ({}): {}\n", seed, r.fault_mix,
                 r.violations.empty() ? "?" : r.violations.front());
    }
    if (!ok) {
      failures++;
      fmt::print(ctx.out, "  reproduce: {}\n", reproduce(ctx, args, seed, seconds));
      std::fflush(ctx.out);
    }
  }
  const double wall = now_s(ctx) - t0;
  std::string faults;
  for (const auto& [k, v] : totals) {
    if (k.starts_with("nemesis.")) faults += fmt::format(" {}={}", k.substr(8), v);
  }
  uint64_t buggify = 0, sites = 0;
  for (const auto& [k, v] : totals) {
    if (k.starts_with("buggify.")) {
      buggify += v;
      sites++;
    }
  }
  fmt::print(ctx.out, "verdict: {} {}/{} seeds passed ({} re-run for determinism)\n",
             failures == 0 ? "PASS" : "FAIL", *args.seeds - failures, *args.seeds, rechecks);
  fmt::print(ctx.out, "summary: {:.1f} simulated s, {} events", double(simulated_ns) / 1e9, events);
  if (wall > 0) {
    fmt::print(ctx.out, " in {:.1f} wall s ({:.0f}x, {:.2f}M events/s)", wall,
               double(simulated_ns) / 1e9 / wall, double(events) / wall / 1e6);
  }
  fmt::print(ctx.out, "\nfaults:{}\n", faults.empty() ? " none" : faults);
  fmt::print(ctx.out,
             "effects: acked={} recoveries={} duplicates={} net.resets={} torn_sectors={} "
             "corruptions={} buggify_fires={} at {} sites\n",
             totals["workload.acked"], totals["workload.recoveries"], totals["workload.duplicates"],
             totals["net.resets"], totals["disk.crash_sectors_torn"], totals["disk.corruptions"],
             buggify, sites);
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
  auto it = scenarios().find(args->scenario);
  if (it == scenarios().end()) {
    fmt::print(ctx.err, "unknown scenario {}\n", args->scenario);
    return 2;
  }
  return args->seed ? run_one(ctx, *args, it->second) : run_many(ctx, *args, it->second);
}

}  // namespace keel::sim
