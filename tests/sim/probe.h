// A scriptable Process for simulator tests: it listens, connects, sends, sets timers and
// syncs files on command, and logs every callback it gets (with its incarnation) into a log
// owned by the test, so a test can see exactly which callbacks ran, and when.
#pragma once

#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/check.h"
#include "env/env.h"
#include "sim/world.h"

namespace keel::sim::testing {

constexpr uint16_t kProbePort = 7000;

struct ProbeLog {
  std::vector<std::string> lines;
  bool contains(const std::string& s) const {
    for (const auto& l : lines) {
      if (l == s) return true;
    }
    return false;
  }
};

class Probe final : public env::Process {
 public:
  Probe(env::Env& env, ProbeLog* log, uint64_t incarnation)
      : env_(env), log_(log), tag_(fmt::format("{}#{}", env.node(), incarnation)) {
    auto listener = env_.network().listen(
        env::Address{std::string(env_.node()), kProbePort},
        [this](std::unique_ptr<env::Stream> s) { adopt(std::move(s), "in"); });
    if (listener.ok()) listener_ = std::move(*listener);
  }

  // Opens a stream to `node`; returns its id.
  int connect(const std::string& node) {
    return adopt(env_.network().connect(env::Address{node, kProbePort}), "out:" + node);
  }
  absl::Status send(int id, const std::string& text) {
    return streams_.at(id)->send(as_bytes(text));
  }
  void close(int id) { streams_.at(id)->close(); }
  // Ids of inbound streams accepted so far.
  std::vector<int> inbound() const { return inbound_; }
  void timer(int64_t delay_ns, const std::string& name) {
    env_.clock().start_timer(env::Nanos(delay_ns), [this, name] { log("timer " + name); });
  }
  // Writes `text` at `offset` of file `path` (created if needed) and, if `sync`, syncs it.
  void write(const std::string& path, uint64_t offset, const std::string& text, bool sync) {
    auto& file = files_[path];
    if (file == nullptr) {
      auto opened = env_.disk().open(path, env::OpenMode::kCreate);
      KEEL_CHECK(opened.ok());
      file = std::move(*opened);
    }
    KEEL_CHECK(file->write(offset, as_bytes(text)).ok());
    if (sync)
      file->sync([this, path](absl::Status s) { log("synced " + path + " " + s.ToString()); });
  }
  void sync_dir() {
    env_.disk().sync_dir("", [this](absl::Status s) { log("dirsynced " + s.ToString()); });
  }
  env::Env& env() { return env_; }

 private:
  int adopt(std::unique_ptr<env::Stream> stream, const std::string& what) {
    const int id = int(streams_.size());
    env::Stream::Handlers h;
    h.on_open = [this, id] { log(fmt::format("open {}", id)); };
    h.on_data = [this, id](ByteView data) {
      log(fmt::format("data {} {}", id, std::string(as_chars(data))));
    };
    h.on_close = [this, id](absl::Status s) {
      log(fmt::format("close {} {}", id, s.ok() ? "ok" : "error"));
    };
    stream->set_handlers(std::move(h));
    streams_.push_back(std::move(stream));
    if (what == "in") inbound_.push_back(id);
    return id;
  }
  void log(const std::string& line) { log_->lines.push_back(tag_ + " " + line); }

  env::Env& env_;
  ProbeLog* log_;
  std::string tag_;
  std::unique_ptr<env::Listener> listener_;
  std::vector<std::unique_ptr<env::Stream>> streams_;
  std::vector<int> inbound_;
  std::map<std::string, std::unique_ptr<env::File>> files_;
};

// A world of `n` probes named n1..nn, all started.
inline std::unique_ptr<World> probe_world(uint64_t seed, int n, ProbeLog* log,
                                          bool shuffle = true) {
  std::vector<std::string> names;
  for (int i = 1; i <= n; i++) names.push_back(fmt::format("n{}", i));
  auto world = std::make_unique<World>(WorldOptions{seed, names, shuffle});
  World* w = world.get();
  for (int id = 0; id < n; id++) {
    w->set_factory(id, [w, log, id](env::Env& env) {
      return std::make_unique<Probe>(env, log, w->node(id).incarnations());
    });
  }
  w->start_all();
  return world;
}

inline Probe& probe(World& world, int id) { return *static_cast<Probe*>(world.node(id).process()); }

}  // namespace keel::sim::testing
