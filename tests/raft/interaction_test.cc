// Scripted interaction tests in the etcd style: tests/raft/testdata/*.txt hold commands, each
// followed by `----` and the expected output (up to a blank line). Run with
// KEEL_RAFT_REWRITE=1 to rewrite the expectations from the actual output, then read the diff.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "raft/describe.h"
#include "tests/raft/cluster.h"

namespace keel::raft::testing {
namespace {

namespace fs = std::filesystem;

fs::path testdata_dir() { return fs::path(KEEL_SOURCE_DIR) / "tests/raft/testdata"; }

struct Command {
  std::string name;
  std::vector<std::string> args;            // positional
  std::map<std::string, std::string> opts;  // key=value
  int line = 0;
};

Command parse_command(const std::string& text, int line) {
  Command c;
  c.line = line;
  for (absl::string_view tok : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (c.name.empty()) {
      c.name = std::string(tok);
    } else if (auto eq = tok.find('='); eq != absl::string_view::npos) {
      c.opts[std::string(tok.substr(0, eq))] = std::string(tok.substr(eq + 1));
    } else {
      c.args.emplace_back(tok);
    }
  }
  return c;
}

uint64_t to_u64(const std::string& s) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(s, &v)) ADD_FAILURE() << "not a number: " << s;
  return v;
}

class Interpreter {
 public:
  Interpreter() : cluster_(/*seed=*/1) {}

  std::string run(const Command& c) {
    std::string out = dispatch(c);
    cluster_.check();
    for (const std::string& v : cluster_.violations().found) out += "VIOLATION: " + v + "\n";
    if (!cluster_.violations().empty()) {
      ADD_FAILURE() << "line " << c.line << ": safety violation";
      cluster_.violations().found.clear();
    }
    // Expectations end at a blank line: keep the output free of them.
    std::string clean;
    for (absl::string_view l : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
      clean += std::string(l) + "\n";
    }
    return clean.empty() ? "ok\n" : clean;
  }

 private:
  uint64_t arg(const Command& c, size_t i) {
    if (i >= c.args.size()) {
      ADD_FAILURE() << "line " << c.line << ": " << c.name << " needs argument " << i + 1;
      return 0;
    }
    return to_u64(c.args[i]);
  }
  std::vector<uint64_t> ids_or_all(const Command& c) {
    if (c.args.empty()) return cluster_.ids();
    std::vector<uint64_t> ids;
    for (const auto& a : c.args) ids.push_back(to_u64(a));
    return ids;
  }
  bool opt_bool(const Command& c, const std::string& key, bool dflt) {
    auto it = c.opts.find(key);
    return it == c.opts.end() ? dflt : it->second == "true";
  }
  uint64_t opt_u64(const Command& c, const std::string& key, uint64_t dflt) {
    auto it = c.opts.find(key);
    return it == c.opts.end() ? dflt : to_u64(it->second);
  }
  Raft& raft(uint64_t id) {
    Node& n = cluster_.node(id);
    if (!n.raft) ADD_FAILURE() << "node " << id << " is down";
    return *n.raft;
  }

  std::string dispatch(const Command& c);
  std::string add_nodes(const Command& c);
  std::string tick_election(uint64_t id);
  std::string status(uint64_t id);
  std::string raft_log(uint64_t id);
  std::string raft_state();

  Cluster cluster_;
};

std::string Interpreter::dispatch(const Command& c) {
  const std::string& n = c.name;
  if (n == "add-nodes") return add_nodes(c);
  if (n == "log-level") {
    cluster_.set_logging(!c.args.empty() && c.args[0] != "none");
    return "";
  }
  if (n == "campaign") {
    raft(arg(c, 0)).campaign();
    return cluster_.take_log();
  }
  if (n == "propose") {
    const uint64_t id = arg(c, 0);
    const std::string data = c.args.size() > 1 ? c.args[1] : "";
    const uint64_t times = opt_u64(c, "times", 1);
    std::string out;
    for (uint64_t i = 0; i < times; i++) {
      const std::string d = times > 1 ? fmt::format("{}{}", data, i + 1) : data;
      auto r = raft(id).propose(d, uint32_t(opt_u64(c, "count", 1)));
      if (!r.ok()) {
        out += "error: " + std::string(r.status().message()) + "\n";
      } else if (times == 1) {
        out += fmt::format("proposed at {}/{}\n", r->term, r->index);
      }
    }
    return out + cluster_.take_log();
  }
  if (n == "tick") {
    const uint64_t id = arg(c, 0);
    const uint64_t times = c.args.size() > 1 ? arg(c, 1) : 1;
    for (uint64_t i = 0; i < times; i++) raft(id).tick();
    return cluster_.take_log();
  }
  if (n == "tick-election") {
    std::string out;
    for (uint64_t id : ids_or_all(c)) out += tick_election(id);
    return out;
  }
  if (n == "tick-heartbeat") {
    const uint64_t id = arg(c, 0);
    for (int i = 0; i < cluster_.node(id).options.heartbeat_tick; i++) raft(id).tick();
    return cluster_.take_log();
  }
  if (n == "process-ready") {
    std::string out;
    for (uint64_t id : ids_or_all(c)) out += cluster_.process_ready(id, opt_bool(c, "sync", true));
    return out;
  }
  if (n == "sync") {
    std::string out;
    for (uint64_t id : ids_or_all(c)) out += cluster_.sync(id);
    return out;
  }
  if (n == "deliver-msgs") {
    int type = -1;
    if (auto it = c.opts.find("type"); it != c.opts.end()) {
      for (int t = MSG_APP; t <= MSG_TIMEOUT_NOW; t++) {
        if (message_type_name(MessageType(t)) == it->second) type = t;
      }
    }
    std::string out;
    for (uint64_t id : ids_or_all(c)) out += cluster_.deliver(id, opt_bool(c, "drop", false), type);
    return out;
  }
  if (n == "stabilize") return cluster_.stabilize(ids_or_all(c));
  if (n == "isolate") {
    cluster_.isolate(arg(c, 0));
    return "";
  }
  if (n == "cut") {
    cluster_.cut(arg(c, 0), arg(c, 1));
    return "";
  }
  if (n == "heal") {
    cluster_.heal();
    return "";
  }
  if (n == "crash") {
    cluster_.crash(arg(c, 0));
    return "";
  }
  if (n == "restart") {
    cluster_.restart(arg(c, 0));
    return cluster_.take_log() + status(arg(c, 0));
  }
  if (n == "raft-log") return raft_log(arg(c, 0));
  if (n == "raft-state") return raft_state();
  if (n == "status") return status(arg(c, 0));
  if (n == "transfer-leadership") {
    raft(opt_u64(c, "from", 0)).transfer_leadership(opt_u64(c, "to", 0));
    return cluster_.take_log();
  }
  if (n == "report-unreachable") {
    raft(arg(c, 0)).report_unreachable(arg(c, 1));
    return cluster_.take_log();
  }
  if (n == "report-fault") {
    // The replica's own log is truncated at lo (an entry start) first, as the caller does.
    const uint64_t id = arg(c, 0);
    const uint64_t lo = arg(c, 1);
    Node& node = cluster_.node(id);
    node.written->truncate_from(lo);
    *node.durable = *node.written;
    raft(id).report_storage_fault(lo, arg(c, 2));
    return cluster_.take_log();
  }
  if (n == "report-repaired") {
    raft(arg(c, 0)).report_storage_repaired();
    return cluster_.take_log();
  }
  if (n == "compact") {
    // Retention removes only applied entries (as the replica and the property test do).
    if (arg(c, 1) > raft(arg(c, 0)).applied()) {
      ADD_FAILURE() << "line " << c.line << ": node " << arg(c, 0) << " applied only "
                    << raft(arg(c, 0)).applied() << ", cannot remove through " << arg(c, 1);
      return "";
    }
    Node& node = cluster_.node(arg(c, 0));
    node.written->compact(arg(c, 1));
    node.durable->compact(arg(c, 1));
    return raft_log(arg(c, 0));
  }
  ADD_FAILURE() << "line " << c.line << ": unknown command " << n;
  return "";
}

std::string Interpreter::add_nodes(const Command& c) {
  NodeOptions o;
  o.pre_vote = opt_bool(c, "pre-vote", false);
  o.check_quorum = opt_bool(c, "check-quorum", false);
  o.election_tick = int(opt_u64(c, "election", 10));
  o.heartbeat_tick = int(opt_u64(c, "heartbeat", 1));
  o.max_inflight_msgs = uint32_t(opt_u64(c, "max-inflight", 256));
  o.max_msg_bytes = opt_u64(c, "max-msg-bytes", 1 << 20);
  o.max_inflight_bytes = opt_u64(c, "max-inflight-bytes", 32 << 20);
  o.snapshot_index = opt_u64(c, "index", 0);
  o.snapshot_term = opt_u64(c, "term", 0);
  cluster_.add_nodes(int(arg(c, 0)), o);
  return cluster_.take_log();
}

std::string Interpreter::tick_election(uint64_t id) {
  Raft& r = raft(id);
  const int e = cluster_.node(id).options.election_tick;
  if (r.role() == Role::kLeader) {
    for (int i = 0; i < e; i++) r.tick();
  } else {
    // Until the randomized timeout fires: the role or term changes (at most 2e ticks).
    const Role role = r.role();
    const uint64_t term = r.term();
    for (int i = 0; i < 2 * e && r.role() == role && r.term() == term; i++) r.tick();
  }
  return cluster_.take_log();
}

std::string Interpreter::status(uint64_t id) {
  Node& node = cluster_.node(id);
  if (!node.raft) return fmt::format("{}: down\n", id);
  const Raft& r = *node.raft;
  std::string out =
      fmt::format("{}: {} Term:{} Vote:{} Lead:{} Log:[{}, {}] Durable:{} Commit:{} Applied:{}{}\n",
                  id, role_name(r.role()), r.term(), r.vote(), r.leader(), r.first_index(),
                  r.last_index(), r.durable_last(), r.committed(), r.applied(),
                  !r.storage_faulted() ? ""
                  : r.repair_target().has_value()
                      ? fmt::format(" Faulted(repair through {}, leader's last {})",
                                    r.repair_through(), *r.repair_target())
                      : fmt::format(" Faulted(repair through {})", r.repair_through()));
  if (r.role() == Role::kLeader) {
    for (uint64_t v : r.voters()) {
      const Progress* p = r.progress(v);
      out += fmt::format("  {}: {} match={} next={}{} inflight={}\n", v, p->state_name(), p->match,
                         p->next, p->probe_sent ? " paused" : "", p->inflight.count());
    }
  }
  return out;
}

std::string Interpreter::raft_log(uint64_t id) {
  Raft& r = raft(id);
  std::string out;
  for (const Entry& e : r.log_entries()) out += describe_entry(e) + "\n";
  return out.empty() ? fmt::format("log is empty: first index={}, last index={}\n", r.first_index(),
                                   r.last_index())
                     : out;
}

std::string Interpreter::raft_state() {
  std::string out;
  for (uint64_t id : cluster_.ids()) {
    Node& n = cluster_.node(id);
    if (!n.raft) {
      out += fmt::format("{}: down\n", id);
      continue;
    }
    out += fmt::format("{}: {} Term:{} Lead:{}\n", id, role_name(n.raft->role()), n.raft->term(),
                       n.raft->leader());
  }
  return out;
}

// Runs one file; returns the rewritten text.
std::string run_file(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  Interpreter interp;
  std::string rewritten;
  size_t i = 0;
  while (i < lines.size()) {
    const std::string& line = lines[i];
    if (line.empty() || line[0] == '#') {
      rewritten += line + "\n";
      i++;
      continue;
    }
    const Command cmd = parse_command(line, int(i + 1));
    i++;
    if (i >= lines.size() || lines[i] != "----") {
      ADD_FAILURE() << path << ":" << cmd.line << ": expected ---- after the command";
      return rewritten;
    }
    i++;
    std::string expected;
    while (i < lines.size() && !lines[i].empty()) expected += lines[i++] + "\n";
    const std::string actual = interp.run(cmd);
    if (std::getenv("KEEL_RAFT_REWRITE") == nullptr) {
      EXPECT_EQ(expected, actual) << path.filename() << ":" << cmd.line << ": " << line;
    }
    rewritten += line + "\n----\n" + actual;
  }
  return rewritten;
}

class Interaction : public ::testing::TestWithParam<std::string> {};

TEST_P(Interaction, Script) {
  const fs::path path = testdata_dir() / (GetParam() + ".txt");
  ASSERT_TRUE(fs::exists(path)) << path;
  const std::string rewritten = run_file(path);
  if (std::getenv("KEEL_RAFT_REWRITE") != nullptr) {
    std::ofstream(path) << rewritten;
  }
}

std::vector<std::string> scripts() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(testdata_dir())) {
    if (e.path().extension() == ".txt") out.push_back(e.path().stem().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

INSTANTIATE_TEST_SUITE_P(Raft, Interaction, ::testing::ValuesIn(scripts()),
                         [](const auto& info) { return info.param; });

TEST(Interaction, AllScriptsPresent) {
  const auto found = scripts();
  for (const char* want :
       {"election", "prevote", "checkquorum", "transfer", "replication", "conflict", "snapshot",
        "storage_fault", "storage_fault_unknown", "commit_via_heartbeat"}) {
    EXPECT_NE(std::find(found.begin(), found.end(), want), found.end()) << want;
  }
}

}  // namespace
}  // namespace keel::raft::testing
