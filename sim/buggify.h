// BUGGIFY for the simulated world (after FoundationDB's Buggify.h), and the trace sink that
// nodes' env::Trace events go to.
//
// Per seed: buggify is on at all with kRunEnabledPercent; each site (named in its KEEL_BUGGIFY
// call: "transport.drop_message") is enabled with kSiteEnabledPercent, decided from the seed
// and the site's name alone (not from the order sites are first reached); an enabled site
// fires with kFirePercent on each call, drawn from the calling node's own stream. Fires are counted
// per site for the summary and recorded in the trace. The liveness phase switches it off with
// set_active(false).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "env/env.h"
#include "env/random.h"
#include "sim/scheduler.h"

namespace keel::sim {

class Buggify {
 public:
  static constexpr uint64_t kRunEnabledPercent = 80;
  static constexpr uint64_t kSiteEnabledPercent = 25;
  static constexpr uint64_t kFirePercent = 25;

  // `rng` is the world's "buggify" stream; only its seed is used.
  explicit Buggify(const env::Random& rng);

  bool run_enabled() const { return run_enabled_; }
  // Forces buggify on or off for this run (tests; the liveness phase turns it off).
  void set_active(bool active) { active_ = active; }
  bool active() const { return active_ && run_enabled_; }
  void force_run_enabled(bool enabled) { run_enabled_ = enabled; }

  // Whether `site` is enabled for this seed.
  bool site_enabled(std::string_view site);
  // Counts a fire of `site`.
  void count_fire(std::string_view site) { fires_[std::string(site)]++; }
  const std::map<std::string, uint64_t>& fires() const { return fires_; }
  // Sites reached at least once, with whether they are enabled.
  const std::map<std::string, bool, std::less<>>& sites() const { return sites_; }

 private:
  uint64_t seed_;
  bool run_enabled_;
  bool active_ = true;
  std::map<std::string, bool, std::less<>> sites_;
  std::map<std::string, uint64_t> fires_;
};

// One node's view of the world's Buggify, drawing from the node's own stream.
class SimFaultPoints final : public env::FaultPoints {
 public:
  SimFaultPoints(Buggify& buggify, Scheduler& scheduler, env::Random rng, std::string node)
      : buggify_(&buggify), scheduler_(&scheduler), rng_(rng), node_(std::move(node)) {}
  bool fire(const char* site) override;

 private:
  // Whether `site` is enabled, remembered per call site: sites are string literals, a
  // handful per build, and looking the name up in Buggify's map on every call was most of
  // fire()'s cost. The name is compared too, so a reused pointer cannot alias another site.
  static constexpr size_t kKnownSitesMax = 64;  // a bound for callers passing made-up names
  struct KnownSite {
    const char* pointer;
    std::string name;
    bool enabled;
  };
  bool site_enabled(const char* site);

  Buggify* buggify_;
  Scheduler* scheduler_;
  env::Random rng_;
  std::string node_;
  std::vector<KnownSite> known_;
};

// env::Trace for a simulated node: every event goes into the scheduler's trace and hash.
class SimTrace final : public env::Trace {
 public:
  SimTrace(Scheduler& scheduler, std::string node)
      : scheduler_(&scheduler), node_(std::move(node)) {}
  void event(std::string_view kind, std::string_view detail) override {
    scheduler_->record(node_, kind, detail);
  }

 private:
  Scheduler* scheduler_;
  std::string node_;
};

}  // namespace keel::sim
