#!/usr/bin/env python3
"""Proves the determinism lint (scripts/lint_determinism.py) bites, one rule family per case.

Usage: lint_test.py CASE, where CASE is a rule family (clock, thread, sleep, io, random,
unordered, process, layering) or `clean` (legitimate code must pass: comments, strings, member calls,
declarations, the unordered-ok marker).

For a family: copies the real src/ to a temporary directory, checks the lint passes on the
copy, adds src/lint_probe/probe.cc with one forbidden line per snippet below, runs the lint
again and requires exit status 1 and, for every snippet, a report `probe.cc:<line>:
[<family>]`. Nothing else may be reported, so a finding is never a coincidence.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINT = os.path.join(REPO, "scripts", "lint_determinism.py")

# Each snippet must be reported on its own line with its family.
FORBIDDEN = {
    "clock": [
        "auto t = std::chrono::steady_clock::now();",
        "auto w = std::chrono::system_clock::now();",
        "auto h = std::chrono::high_resolution_clock::now();",
        "using C = std::chrono::steady_clock;",
        "clock_gettime(CLOCK_MONOTONIC, &ts);",
        "gettimeofday(&tv, nullptr);",
        "time_t now = time(nullptr);",
        "time_t now2 = ::time(NULL);",
        "auto t2 = std::time(0);",
        "auto ticks = std::clock();",
        "uint64_t c = __rdtsc();",
        "absl::Time now = absl::Now();",
        '#include "absl/time/clock.h"',
    ],
    "thread": [
        "std::thread worker([] {});",
        "std::jthread worker2([] {});",
        "auto f = std::async(std::launch::async, [] { return 1; });",
        "pthread_create(&tid, nullptr, run, nullptr);",
        "#include <thread>",
        "#include <pthread.h>",
        "#include <future>",
        "std::mutex mu;",
        "std::condition_variable cv;",
        "absl::Mutex amu;",
        '#include "absl/synchronization/mutex.h"',
    ],
    "sleep": [
        "std::this_thread::sleep_for(std::chrono::milliseconds(5));",
        "std::this_thread::sleep_until(deadline);",
        "usleep(100);",
        "nanosleep(&ts, nullptr);",
        "sleep(1);",
        "::sleep(1);",
        "absl::SleepFor(absl::Seconds(1));",
    ],
    "io": [
        'int fd = open("/tmp/x", O_RDONLY);',
        'int fd2 = ::open("/tmp/x", O_RDWR | O_CREAT, 0644);',
        'FILE* f = fopen("/tmp/x", "r");',
        'FILE* f2 = std::fopen("/tmp/x", "w");',
        "::read(fd, buf, sizeof(buf));",
        "::write(fd, buf, n);",
        "n = read(fd, buf, sizeof(buf));",
        "pread(fd, buf, n, 0);",
        "pwrite(fd, buf, n, 0);",
        "fsync(fd);",
        "fdatasync(fd);",
        "::close(fd);",
        "int s = socket(AF_INET, SOCK_STREAM, 0);",
        "connect(s, addr, len);",
        "int c = accept(s, nullptr, nullptr);",
        "::listen(s, 16);",
        "int ep = epoll_create1(0);",
        "epoll_wait(ep, events, 16, -1);",
        'std::ofstream out("/tmp/x");',
        'std::ifstream in("/tmp/x");',
        'std::filesystem::remove("/tmp/x");',
        "#include <fstream>",
        "#include <filesystem>",
        "#include <sys/socket.h>",
        "#include <unistd.h>",
        "#include <fcntl.h>",
        "#include <sys/epoll.h>",
    ],
    "random": [
        "std::random_device rd;",
        "std::uniform_int_distribution<int> dist(0, 9);",
        "std::normal_distribution<double> gauss(0, 1);",
        "std::bernoulli_distribution coin(0.5);",
        "int r = rand();",
        "srand(42);",
        "int r2 = std::rand();",
        "std::shuffle(v.begin(), v.end(), gen);",
        "absl::BitGen bitgen;",
        "#include <random>",
        '#include "absl/random/random.h"',
    ],
    "unordered": [
        "#include <unordered_map>",
        "#include <unordered_set>",
        '#include "absl/container/flat_hash_map.h"',
        "std::unordered_map<int, int> counts;",
        "std::unordered_set<int> seen;",
        "absl::flat_hash_map<int, int> index;",
        "#include <unordered_map>  // lint: unordered-ok",
        "#include <unordered_map>  // lint: unordered-ok ()",
    ],
    "process": [
        'const char* home = getenv("HOME");',
        'const char* home2 = std::getenv("HOME");',
        "int pid = getpid();",
    ],
    "layering": [
        '#include "sim/scheduler.h"',
        '#include "net/event_loop.h"',
        '#include "disk/posix_disk.h"',
        '#include "../../sim/scheduler.h"',
        '#include "../env/env.h"',
        "#include <sim/scheduler.h>",
    ],
}

# Legitimate code that must not be reported.
CLEAN = r'''
// Never call std::thread, fopen(), rand() or std::chrono::steady_clock::now() here.
/* A block comment about ::open(path, O_RDONLY) and sleep(1) and #include <thread>. */
#include <chrono>
#include <cstdio>
#include <map>
#include "absl/time/time.h"
#include "absl/container/btree_map.h"
#include <string>
#include "env/env.h"
#include "base/check.h"
namespace keel::probe {
const char* kDoc = "open(path, flags) connect(fd, addr, len) std::thread time(nullptr)";
const char* kRaw = R"(fsync(fd); #include <unistd.h>)";
char quote = '"'; int big = 1'000'000;
absl::StatusOr<std::unique_ptr<File>> open(std::string_view path, bool create);
File& open(int a, int b);
absl::Status Log::open(std::string_view dir, int flags) { return absl::OkStatus(); }
void f(env::Env& env, env::Disk& disk, env::Stream* stream, env::Network& net) {
  auto file = disk.open(path, true);
  auto file2 = env.disk().open(path, false);
  stream->close();
  auto s = net.connect(to);
  auto l = net.listen(at, std::move(on_accept));
  auto n = file->read(0, out);
  auto w = file->write(0, data);
  file->truncate(10);
  disk.rename(a, b);
  disk.remove(a);
  std::chrono::nanoseconds d = env.clock().now();
  int64_t wall = env.clock().wall_time_ms();
  uint64_t r = env.random().next_u64();
  auto end = std::remove(v.begin(), v.end(), 3);
  auto g = std::bind(h, 1);
  int open_files = 0; int time_ms = 5; int sleep_budget = 3;
  close();
  connect();
  random();
  clock();
  time();
  int epoll_fd_count = 0;
  absl::Duration d2 = absl::Seconds(1);
  absl::btree_map<int, int> ordered2;
  auto v = env.getenv_like();
  std::sort(v.begin(), v.end());
}
int64_t time() const;
Clock& clock() const;
Random& random() const;
void close() override;
std::unique_ptr<Stream> connect(const Address& to) override;
std::map<int, int> ordered;
}  // namespace keel::probe
#include <unordered_map>  // lint: unordered-ok (lookup by id only; never iterated)
std::unordered_map<int, int> lookup_only;
'''


def run_lint(root):
    p = subprocess.run([sys.executable, LINT, root], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def fail(msg, output=""):
    print(f"FAIL: {msg}")
    if output:
        print("--- lint output ---")
        print(output)
    sys.exit(1)


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in list(FORBIDDEN) + ["clean"]:
        print(f"usage: {sys.argv[0]} {{{'|'.join(list(FORBIDDEN) + ['clean'])}}}")
        return 2
    case = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="keel-lint-") as tmp:
        src = os.path.join(tmp, "src")
        shutil.copytree(os.path.join(REPO, "src"), src)
        rc, out = run_lint(src)
        if rc != 0:
            fail("the lint must pass on an unmodified copy of src/ first", out)
        probe_dir = os.path.join(src, "lint_probe")
        os.mkdir(probe_dir)
        probe = os.path.join(probe_dir, "probe.cc")
        if case == "clean":
            with open(probe, "w") as f:
                f.write(CLEAN)
            rc, out = run_lint(src)
            if rc != 0:
                fail("legitimate code was reported", out)
            print("ok: legitimate code passes the lint")
            return 0
        snippets = FORBIDDEN[case]
        with open(probe, "w") as f:
            f.write("// probe: one forbidden line each\n")
            f.write("\n".join(snippets) + "\n")
        rc, out = run_lint(src)
        if rc != 1:
            fail(f"expected exit status 1, got {rc}", out)
        reported = set()
        for line in out.splitlines():
            m = re.match(r"(.*):(\d+): \[(\w+)\] ", line)
            if not m:
                continue
            if not m.group(1).endswith(os.path.join("lint_probe", "probe.cc")):
                fail(f"a file other than the probe was reported: {line}", out)
            reported.add((int(m.group(2)), m.group(3)))
        missed = [s for no, s in enumerate(snippets, start=2) if (no, case) not in reported]
        if missed:
            fail(f"[{case}] not reported for: {missed}", out)
        print(f"ok: all {len(snippets)} forbidden [{case}] lines reported, exit status 1")
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
