// BUGGIFY: per seed on or off; each site enabled or not from the seed and its name alone;
// enabled sites fire with a probability; fires are counted and traced; inert when off.
#include "sim/buggify.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "sim/world.h"

namespace keel::sim {
namespace {

TEST(Buggify, SiteEnablementDependsOnlyOnSeedAndSiteName) {
  int enabled = 0;
  constexpr int kSites = 2000;
  for (int i = 0; i < kSites; i++) {
    Buggify a(env::Random(5).derive("buggify"));
    Buggify b(env::Random(5).derive("buggify"));
    const std::string site = fmt::format("file.cc:{}", i);
    b.site_enabled("other.cc:1");  // reaching other sites first changes nothing
    EXPECT_EQ(a.site_enabled(site), b.site_enabled(site));
    enabled += a.site_enabled(site);
  }
  // kSiteEnabledPercent = 25%, with a wide margin.
  EXPECT_GT(enabled, kSites * 20 / 100);
  EXPECT_LT(enabled, kSites * 30 / 100);
}

TEST(Buggify, RunEnabledInAboutEightyPercentOfSeeds) {
  int on = 0;
  for (uint64_t seed = 0; seed < 1000; seed++) on += Buggify(env::Random(seed)).run_enabled();
  EXPECT_GT(on, 740);
  EXPECT_LT(on, 860);
}

// An enabled and a disabled site name for `buggify`'s seed.
std::pair<std::string, std::string> enabled_and_disabled_site(Buggify& buggify) {
  std::string on, off;
  for (int i = 0; on.empty() || off.empty(); i++) {
    const std::string site = fmt::format("x.site{}", i);
    (buggify.site_enabled(site) ? on : off) = site;
  }
  return {on, off};
}

TEST(Buggify, EnabledSitesFireAtTheirRateAndAreCountedAndTraced) {
  Scheduler scheduler;
  Buggify buggify(env::Random(1));
  buggify.force_run_enabled(true);
  const auto [on, off] = enabled_and_disabled_site(buggify);
  SimFaultPoints points(buggify, scheduler, env::Random(2), "n1");
  int fired_on = 0, fired_off = 0;
  for (int i = 0; i < 4000; i++) {
    fired_on += points.fire(on.c_str());
    fired_off += points.fire(off.c_str());
  }
  EXPECT_EQ(fired_off, 0);
  EXPECT_GT(fired_on, 4000 * 20 / 100);  // kFirePercent = 25%
  EXPECT_LT(fired_on, 4000 * 30 / 100);
  EXPECT_EQ(buggify.fires().at(on), uint64_t(fired_on));
  EXPECT_EQ(scheduler.trace_events(), uint64_t(fired_on));

  buggify.set_active(false);
  for (int i = 0; i < 100; i++) EXPECT_FALSE(points.fire(on.c_str()));
}

// Fault points remember each call site's answer; one buffer reused for another name must
// get that name's answer, not the remembered one.
TEST(Buggify, AReusedSitePointerIsNotMistakenForTheOldSite) {
  Scheduler scheduler;
  Buggify buggify(env::Random(1));
  buggify.force_run_enabled(true);
  const auto [on, off] = enabled_and_disabled_site(buggify);
  SimFaultPoints points(buggify, scheduler, env::Random(2), "n1");
  char buffer[64] = {};
  ASSERT_LT(std::max(on.size(), off.size()), sizeof(buffer));
  std::memcpy(buffer, on.c_str(), on.size() + 1);
  int fired = 0;
  for (int i = 0; i < 400; i++) fired += points.fire(buffer);
  EXPECT_GT(fired, 0);
  std::memset(buffer, 0, sizeof(buffer));
  std::memcpy(buffer, off.c_str(), off.size() + 1);
  for (int i = 0; i < 400; i++) EXPECT_FALSE(points.fire(buffer));
}

TEST(Buggify, OffForTheRunMeansNeverFires) {
  Scheduler scheduler;
  Buggify buggify(env::Random(1));
  buggify.force_run_enabled(false);
  SimFaultPoints points(buggify, scheduler, env::Random(2), "n1");
  for (int i = 0; i < 1000; i++) EXPECT_FALSE(points.fire(fmt::format("y.site{}", i).c_str()));
  EXPECT_TRUE(buggify.fires().empty());
}

}  // namespace
}  // namespace keel::sim
