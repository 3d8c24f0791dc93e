#include "sim/buggify.h"

#include <cstring>

#include "base/bytes.h"

namespace keel::sim {

Buggify::Buggify(const env::Random& rng) : seed_(rng.seed()) {
  env::Random decide = rng.derive("run");
  run_enabled_ = decide.chance(kRunEnabledPercent, 100);
}

bool Buggify::site_enabled(std::string_view site) {
  auto it = sites_.find(site);
  if (it != sites_.end()) return it->second;
  env::Random decide(seed_ ^ fnv1a64(site));
  const bool enabled = decide.chance(kSiteEnabledPercent, 100);
  sites_.emplace(std::string(site), enabled);
  return enabled;
}

bool SimFaultPoints::site_enabled(const char* site) {
  for (const KnownSite& known : known_) {
    if (known.pointer == site && std::strcmp(known.name.c_str(), site) == 0) return known.enabled;
  }
  // Buggify::site_enabled records the site as reached; its answer never changes.
  const bool enabled = buggify_->site_enabled(site);
  if (known_.size() < kKnownSitesMax) known_.push_back(KnownSite{site, site, enabled});
  return enabled;
}

bool SimFaultPoints::fire(const char* site) {
  if (!buggify_->active()) return false;
  if (!site_enabled(site)) return false;
  if (!rng_.chance(Buggify::kFirePercent, 100)) return false;
  const std::string_view name(site);
  buggify_->count_fire(name);
  scheduler_->record(node_, "buggify", name);
  return true;
}

}  // namespace keel::sim
