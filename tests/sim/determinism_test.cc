// Determinism: the same seed gives the same trace, in-process and across processes; different
// seeds give different traces; a trace diff finds the first differing event. And the
// world-proof workload passes its checker under the nemesis for many seeds.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>

#include "sim/cli.h"
#include "sim/scenario.h"

namespace keel::sim {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

RunOptions short_run(uint64_t seed) {
  RunOptions o;
  o.seed = seed;
  o.safety_ns = 2 * kSecond;
  o.liveness_ns = 3 * kSecond;
  return o;
}

TEST(Determinism, SameSeedSameHashDifferentSeedsDifferentTraces) {
  const RunResult a = run_world_scenario(short_run(11));
  const RunResult b = run_world_scenario(short_run(11));
  const RunResult c = run_world_scenario(short_run(12));
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.trace_events, b.trace_events);
  EXPECT_EQ(a.events, b.events);
  EXPECT_NE(a.trace_hash, c.trace_hash);
  EXPECT_GT(a.trace_events, 1000u);
}

TEST(Determinism, TraceDiffFindsTheFirstDifferingEvent) {
  const std::string dir = ::testing::TempDir();
  RunOptions o = short_run(21);
  o.trace_path = dir + "/a.jsonl";
  const RunResult a = run_world_scenario(o);
  o.trace_path = dir + "/b.jsonl";
  run_world_scenario(o);
  o.seed = 22;
  o.trace_path = dir + "/c.jsonl";
  run_world_scenario(o);

  std::FILE* out = std::tmpfile();
  EXPECT_EQ(diff_traces(dir + "/a.jsonl", dir + "/b.jsonl", out), 0);
  EXPECT_EQ(diff_traces(dir + "/a.jsonl", dir + "/c.jsonl", out), 1);
  std::rewind(out);
  std::string text(4096, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), out));
  std::fclose(out);
  EXPECT_NE(text.find("identical: " + std::to_string(a.trace_events) + " events"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("first difference at event"), std::string::npos) << text;

  // The trace file holds exactly the events folded into the hash; the last line's running
  // hash is the run's hash.
  std::ifstream f(dir + "/a.jsonl");
  std::string line, last;
  uint64_t lines = 0;
  while (std::getline(f, line)) {
    last = line;
    lines++;
  }
  EXPECT_EQ(lines, a.trace_events);
  EXPECT_NE(last.find(fmt::format("\"h\":\"{:016x}\"", a.trace_hash)), std::string::npos);
}

TEST(Workload, PassesItsCheckerUnderTheNemesisForManySeeds) {
  std::map<std::string, uint64_t> faults;
  for (uint64_t seed = 1; seed <= 60; seed++) {
    const RunResult r = run_world_scenario(short_run(seed));
    EXPECT_TRUE(r.ok) << "seed " << seed << " (" << r.fault_mix
                      << "): " << (r.violations.empty() ? "" : r.violations.front());
    EXPECT_GT(r.counts.at("workload.acked"), 0u) << seed;
    for (const auto& [k, v] : r.counts) faults[k] += v;
  }
  // Across the seeds the nemesis used every kind of fault.
  for (const char* kind :
       {"nemesis.crash", "nemesis.restart", "nemesis.partition.symmetric",
        "nemesis.partition.asymmetric", "nemesis.partition.bridge", "nemesis.heal", "nemesis.reset",
        "nemesis.stall", "nemesis.slow-link", "nemesis.drift", "nemesis.clock.jump",
        "nemesis.clock.wall-step", "nemesis.disk.write-eio", "nemesis.disk.sync-eio",
        "nemesis.disk.enospc", "nemesis.disk.corrupt"}) {
    EXPECT_GT(faults[kind], 0u) << kind;
  }
  EXPECT_GT(faults["disk.crash_sectors_torn"], 0u);
  EXPECT_GT(faults["workload.duplicates"], 0u);
}

// Runs a command and returns its stdout lines.
std::vector<std::string> run(const std::string& command) {
  std::vector<std::string> lines;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return lines;
  std::array<char, 4096> buf;
  std::string current;
  while (std::fgets(buf.data(), int(buf.size()), pipe.get()) != nullptr) {
    current += buf.data();
    if (!current.empty() && current.back() == '\n') {
      current.pop_back();
      lines.push_back(std::move(current));
      current.clear();
    }
  }
  return lines;
}

TEST(Cli, KeelSimSameSeedSameHashAcrossProcesses) {
  const std::string keel = KEEL_BINARY_DIR "/main/keel";
  const auto a = run(keel + " sim --seed 42");
  const auto b = run(keel + " sim --seed 42");
  const auto c = run(keel + " sim --seed 43");
  ASSERT_GE(a.size(), 3u);
  ASSERT_GE(b.size(), 3u);
  ASSERT_GE(c.size(), 3u);
  EXPECT_NE(a.front().find("seed=42"), std::string::npos) << a.front();
  EXPECT_NE(a.front().find("build="), std::string::npos) << a.front();
  EXPECT_TRUE(a.back().starts_with("trace hash: ")) << a.back();
  EXPECT_EQ(a.back(), b.back());
  EXPECT_NE(a.back(), c.back());
}

TEST(Cli, ManySeedsPrintAVerdict) {
  const std::string keel = KEEL_BINARY_DIR "/main/keel";
  const auto out = run(keel + " sim --seeds 3 --seconds 1");
  bool verdict = false;
  for (const auto& line : out) verdict |= line.starts_with("verdict: PASS 3/3 seeds passed");
  EXPECT_TRUE(verdict);
}

}  // namespace
}  // namespace keel::sim
