// Env: everything nondeterministic a node may touch, bundled. Code in src/ receives an Env
// and reaches time, network, disk and randomness only through it. Two implementations wire
// it: real IO (net/, disk/) in `keel serve`, and the simulator (sim/) in `keel sim`.
//
// Threading: one node = one single-threaded event loop. Every callback of every part of the
// Env runs on that loop, one at a time; the node never blocks.
#pragma once

#include <string>
#include <string_view>

#include "env/clock.h"
#include "env/disk.h"
#include "env/network.h"
#include "env/random.h"

namespace keel::env {

// BUGGIFY-style fault points (after FoundationDB): code under simulation marks places where
// a rare but legal behaviour can be forced (a short read, an early timeout, a tiny batch).
// In the simulator each site is enabled or not per seed, then fires with some probability;
// in the real build it never fires.
class FaultPoints {
 public:
  virtual ~FaultPoints() = default;
  // `site` is the site's name, a string literal; see KEEL_BUGGIFY.
  virtual bool fire(const char* site) = 0;
};

// Structured events for humans and for the simulator's trace (which folds every event into
// its determinism hash). Real IO prints them as log lines.
class Trace {
 public:
  virtual ~Trace() = default;
  virtual void event(std::string_view kind, std::string_view detail) = 0;
};

class Env {
 public:
  Env(std::string_view node, Clock& clock, Network& network, Disk& disk, Random& random,
      FaultPoints& faults, Trace& trace)
      : node_(node),
        clock_(&clock),
        network_(&network),
        disk_(&disk),
        random_(&random),
        faults_(&faults),
        trace_(&trace) {}

  std::string_view node() const { return node_; }
  Clock& clock() const { return *clock_; }
  Network& network() const { return *network_; }
  Disk& disk() const { return *disk_; }
  Random& random() const { return *random_; }
  FaultPoints& faults() const { return *faults_; }
  Trace& trace() const { return *trace_; }

 private:
  std::string node_;
  Clock* clock_;
  Network* network_;
  Disk* disk_;
  Random* random_;
  FaultPoints* faults_;
  Trace* trace_;
};

// A node's running program: created with the node's Env when the node starts or restarts,
// destroyed when it stops or crashes (the simulator drops all its memory; the disk keeps
// what its model says).
class Process {
 public:
  virtual ~Process() = default;
};

}  // namespace keel::env

// if (KEEL_BUGGIFY(env, "module.what")) { ...rare but legal behaviour... }
// A site is named, not keyed by file and line, so that editing a file does not change which
// sites a seed enables (and with them every trace hash): a refactoring that changes no
// behaviour leaves the traces bit-for-bit the same. Give each site its own name: sites that
// share one are enabled together.
#define KEEL_BUGGIFY(env, name) ((env).faults().fire("" name))
