#!/usr/bin/env python3
"""Determinism lint for src/: forbids every way around the Env.

Code in src/ must reach time, threads, files, sockets and randomness only through
src/env/ (see docs/architecture.md), and must not include sim/, net/ or disk/. This lint
scans C++ sources for calls, types and includes that break that rule, and prints each as

    path:line: [family] what was found: why, and what to use instead

Families: clock, thread, sleep, io, random, unordered, process, layering. Exit status: 0 clean,
1 violations found, 2 usage error (no such path, no sources found).

Comments and the contents of string literals are ignored, so prose such as "never call
std::thread here" does not trip it. Member calls (disk.open(...), stream->close()) and
declarations (`absl::Status open(std::string_view path)`) are not raw syscalls and pass;
for names that are also common method names (open, connect, read, ...) an unqualified
call is flagged only when it has the syscall's number of arguments.

Unordered containers iterate in an order that depends on the hash function and the
standard library (absl's hash maps even reseed per process), which silently breaks the
same-seed-same-run property if the order reaches behaviour. A file may use them only if
one of its lines carries the marker `// lint: unordered-ok (reason)`, stating why order
never reaches behaviour there.

Usage: lint_determinism.py [PATH...]   (default: the src/ directory of this repository)
"""

import os
import re
import sys

SOURCE_SUFFIXES = (".h", ".hh", ".hpp", ".cc", ".cpp", ".cxx", ".inc", ".ipp")
UNORDERED_MARKER = re.compile(r"//\s*lint:\s*unordered-ok\s*\(\s*[^)\s][^)]*\)")

WHY = {
    "clock": "real clocks are forbidden in src/; use env::Clock (now(), wall_time_ms())",
    "thread": "threads are forbidden in src/: one node is one single-threaded event loop",
    "sleep": "sleeping is forbidden in src/; use a timer from env::Clock",
    "io": "raw files and sockets are forbidden in src/; use env::Disk / env::Network",
    "random": "randomness only via env::Random (own algorithm and range mapping)",
    "unordered": ("unordered containers iterate in an unspecified order; use an ordered "
                  "container, or mark a line `// lint: unordered-ok (reason)`"),
    "process": ("the process environment differs between runs; pass configuration in from "
                "main/ (the composition root)"),
    "layering": ("src/ must not include sim/, net/, disk/ or other layers, nor climb with "
                 "../; only the composition root wires them in"),
}

# --- Includes: (family, regex on the header name inside <> or ""). -------------------------
INCLUDE_RULES = [
    ("thread", r"(thread|future|mutex|shared_mutex|condition_variable|semaphore|latch|"
               r"barrier|stop_token|pthread\.h|threads\.h)"),
    ("io", r"(fstream|filesystem|unistd\.h|fcntl\.h|sys/.*|dirent\.h|poll\.h|netdb\.h|"
           r"netinet/.*|arpa/.*|linux/.*|liburing\.h|aio\.h|ifaddrs\.h)"),
    ("clock", r"(sys/time\.h|x86intrin\.h|ia32intrin\.h|absl/time/clock\.h)"),
    ("thread", r"absl/synchronization/.*"),
    ("random", r"(random|absl/random/.*)"),
    ("unordered", r"(unordered_map|unordered_set|absl/container/(flat|node)_hash_(map|set)\.h)"),
    ("layering", r"((sim|net|disk|main|tests|bench|fuzz)/.*|\.\./.*|\./.*|/.*)"),
]

# --- Names and types anywhere in code (family, regex). ------------------------------------
TOKEN_RULES = [
    ("clock", r"\b(system_clock|steady_clock|high_resolution_clock|utc_clock|tai_clock|"
              r"gps_clock|file_clock)\b"),
    ("clock", r"\b(__rdtsc|__rdtscp|__builtin_ia32_rdtsc|__builtin_readcyclecounter)\b"),
    ("thread", r"\bstd\s*::\s*(thread|jthread|async|this_thread\s*::\s*(yield|get_id)|mutex|"
               r"timed_mutex|recursive_mutex|recursive_timed_mutex|shared_mutex|"
               r"shared_timed_mutex|condition_variable|condition_variable_any|"
               r"counting_semaphore|binary_semaphore|latch|barrier|stop_source)\b"),
    ("thread", r"\bpthread_\w+"),
    ("thread", r"\babsl\s*::\s*(Mutex|MutexLock|ReaderMutexLock|WriterMutexLock|CondVar|"
               r"Notification|Barrier|BlockingCounter)\b"),
    ("clock", r"\babsl\s*::\s*(Now|GetCurrentTimeNanos)\b"),
    ("sleep", r"\babsl\s*::\s*SleepFor\b"),
    ("sleep", r"\b(sleep_for|sleep_until)\b"),
    ("io", r"\bstd\s*::\s*(basic_)?(i|o)?fstream\b"),
    ("io", r"\bstd\s*::\s*(basic_)?filebuf\b"),
    ("io", r"\bstd\s*::\s*filesystem\b"),
    ("io", r"\b(epoll_(create1?|ctl|p?wait2?|event)|io_uring_\w+|inotify_(init1?|add_watch)|"
           r"timerfd_(create|settime|gettime)|eventfd|signalfd)\b"),
    ("random", r"\brandom_device\b"),
    ("random", r"\b(uniform_int|uniform_real|bernoulli|binomial|geometric|negative_binomial|"
               r"poisson|exponential|gamma|weibull|extreme_value|normal|lognormal|"
               r"chi_squared|cauchy|fisher_f|student_t|discrete|piecewise_constant|"
               r"piecewise_linear)_distribution\b"),
    ("random", r"\bstd\s*::\s*\w+_distribution\b"),
    ("random", r"\bstd\s*::\s*(ranges\s*::\s*)?(shuffle|sample|random_shuffle)\b"),
    ("random", r"\babsl\s*::\s*(\w*BitGen\w*|Uniform|Bernoulli|Beta|Exponential|Gaussian|"
               r"LogUniform|Poisson|Zipf)\b"),
    ("unordered", r"\bstd\s*::\s*unordered_(multi)?(map|set)\b"),
    ("unordered", r"\babsl\s*::\s*(flat|node)_hash_(map|set)\b"),
]

# --- Calls of C library / POSIX functions. --------------------------------------------------
# name -> (family, arities). A call is flagged when it is global (::name), std::name, or an
# unqualified free call whose argument count is in `arities` (None: any count). Member calls,
# calls qualified by another scope (Disk::open) and declarations never are.
ANY = None
CALL_RULES = {
    # clock
    "clock_gettime": ("clock", ANY), "gettimeofday": ("clock", ANY),
    "timespec_get": ("clock", ANY), "ftime": ("clock", ANY),
    # sleep
    "usleep": ("sleep", ANY), "nanosleep": ("sleep", ANY), "clock_nanosleep": ("sleep", ANY),
    "sleep": ("sleep", {1}),
    # io: names no one uses for anything else
    "fopen": ("io", ANY), "freopen": ("io", ANY), "fdopen": ("io", ANY),
    "tmpfile": ("io", ANY), "popen": ("io", ANY), "openat": ("io", ANY), "creat": ("io", ANY),
    "pread": ("io", ANY), "pwrite": ("io", ANY), "preadv": ("io", ANY), "pwritev": ("io", ANY),
    "pread64": ("io", ANY), "pwrite64": ("io", ANY), "readv": ("io", ANY),
    "writev": ("io", ANY), "fsync": ("io", ANY), "fdatasync": ("io", ANY), "syncfs": ("io", ANY),
    "sync_file_range": ("io", ANY), "ftruncate": ("io", ANY), "lseek": ("io", ANY),
    "mmap": ("io", ANY), "munmap": ("io", ANY), "msync": ("io", ANY), "opendir": ("io", ANY),
    "readdir": ("io", ANY), "closedir": ("io", ANY), "mkstemp": ("io", ANY),
    "mkdtemp": ("io", ANY), "socketpair": ("io", ANY), "accept4": ("io", ANY),
    "ioctl": ("io", ANY), "fcntl": ("io", ANY), "fallocate": ("io", ANY),
    "posix_fallocate": ("io", ANY), "sendfile": ("io", ANY), "splice": ("io", ANY),
    "getaddrinfo": ("io", ANY), "fstat": ("io", ANY), "lstat": ("io", ANY),
    "fstatat": ("io", ANY), "unlinkat": ("io", ANY), "renameat": ("io", ANY),
    "renameat2": ("io", ANY), "mkdirat": ("io", ANY), "recvfrom": ("io", ANY),
    "sendto": ("io", ANY), "recvmsg": ("io", ANY), "sendmsg": ("io", ANY),
    "setsockopt": ("io", ANY), "getsockopt": ("io", ANY), "dup2": ("io", ANY),
    "dup3": ("io", ANY), "fork": ("io", ANY), "execv": ("io", ANY), "execve": ("io", ANY),
    "execvp": ("io", ANY), "unlink": ("io", ANY), "rmdir": ("io", ANY),
    # io: names that are also ordinary method names; flagged unqualified only at the
    # syscall's arity (Network::connect(to) and Stream::close() pass)
    "open": ("io", {2, 3}), "socket": ("io", {3}), "connect": ("io", {3}),
    "accept": ("io", {3}), "listen": ("io", {2}), "bind": ("io", set()),
    "read": ("io", {3}), "write": ("io", {3}), "close": ("io", set()),
    "send": ("io", {4}), "recv": ("io", {4}), "poll": ("io", {3}), "select": ("io", {5}),
    "pipe": ("io", {1}), "pipe2": ("io", ANY), "dup": ("io", set()),
    "truncate": ("io", {2}), "rename": ("io", set()), "mkdir": ("io", {2}),
    "stat": ("io", {2}), "remove": ("io", set()), "system": ("io", set()),
    # process environment
    "getenv": ("process", ANY), "secure_getenv": ("process", ANY), "setenv": ("process", ANY),
    "putenv": ("process", ANY), "getpid": ("process", ANY), "gethostname": ("process", ANY),
    # random
    "rand": ("random", ANY), "srand": ("random", ANY), "rand_r": ("random", ANY),
    "srandom": ("random", ANY), "drand48": ("random", ANY), "erand48": ("random", ANY),
    "lrand48": ("random", ANY), "nrand48": ("random", ANY), "mrand48": ("random", ANY),
    "jrand48": ("random", ANY), "srand48": ("random", ANY), "arc4random": ("random", ANY),
    "arc4random_uniform": ("random", ANY), "getrandom": ("random", ANY),
    "getentropy": ("random", ANY), "random": ("random", set()),
    # clock, special: `time` and `clock` are common accessor names
    "time": ("clock", set()), "clock": ("clock", set()),
}
# std:: functions that share a name with a call rule but are not IO (std::bind, std::remove
# the algorithm): never flagged when written std::name.
STD_ALLOWED = {"bind", "remove", "select", "open", "close", "read", "write", "listen"}
# `time(nullptr)`, `time(NULL)`, `time(0)`, `time(&t)`: a wall-clock read even unqualified.
TIME_ARGS = re.compile(r"^\s*(nullptr|NULL|0|&\s*\w+)\s*$")
# Words after which `name(` is a call (return open(...)), not a declaration (int open(...)).
CALL_KEYWORDS = {"return", "co_return", "co_await", "co_yield", "else", "do", "case", "throw",
                 "not", "and", "or", "sizeof", "decltype", "noexcept"}

INCLUDE_LINE = re.compile(r"^\s*#\s*include\s*([<\"])([^>\"]*)[>\"]")
CALL_NAME = re.compile(r"\b(" + "|".join(sorted(CALL_RULES, key=len, reverse=True)) +
                       r")\s*\(")


def strip_code(text):
    """Returns text with comments blanked and string/char literal contents blanked.

    Every character keeps its position (blanked ones become spaces, newlines stay), so
    offsets and line numbers in the result match the original.
    """
    out = list(text)
    i, n = 0, len(text)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c == "R" and text.startswith('"', i + 1) and (i == 0 or not _ident(text[i - 1])):
            m = re.match(r'R"([^()\\ \n]{0,16})\(', text[i:])
            if not m:
                i += 1
                continue
            close = ")" + m.group(1) + '"'
            j = text.find(close, i + m.end())
            j = n if j < 0 else j + len(close)
            blank(i + 2, j - 1)
            i = j
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():  # digit separator: 1'000'000
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, min(j, n))
            i = j + 1
        else:
            i += 1
    return "".join(out)


def _ident(ch):
    return ch.isalnum() or ch == "_"


def call_context(code, start):
    """Classifies the call `name(` at `start`: member, global, std, qualified, decl or free."""
    i = start - 1
    while i >= 0 and code[i].isspace():
        i -= 1
    if i < 0:
        return "free"
    if code[i] == "." or (code[i] == ">" and i > 0 and code[i - 1] == "-"):
        return "member"
    if code[i] == ":" and i > 0 and code[i - 1] == ":":
        j = i - 2
        while j >= 0 and code[j].isspace():
            j -= 1
        end = j + 1
        while j >= 0 and _ident(code[j]):
            j -= 1
        qualifier = code[j + 1:end]
        if not qualifier:
            return "global"
        return "std" if qualifier == "std" else "qualified"
    if _ident(code[i]):
        j = i
        while j >= 0 and _ident(code[j]):
            j -= 1
        return "free" if code[j + 1:i + 1] in CALL_KEYWORDS else "decl"
    if code[i] in "&|" and i > 0 and code[i - 1] == code[i]:
        return "free"  # a && open(...), a || open(...)
    if code[i] in ">&*~":
        return "decl"  # unique_ptr<File> open(...), File& open(...), ~Stream()
    return "free"


def call_args(code, paren):
    """Returns the argument text of the call whose '(' is at `paren`, or None if unbalanced."""
    depth = 0
    for j in range(paren, min(len(code), paren + 4000)):
        ch = code[j]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return code[paren + 1:j]
    return None


def arity(args):
    if args is None:
        return None
    if not args.strip():
        return 0
    depth, count = 0, 1
    for ch in args:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            count += 1
    return count


def call_violation(code, m):
    name = m.group(1)
    family, arities = CALL_RULES[name]
    ctx = call_context(code, m.start(1))
    if ctx in ("member", "qualified", "decl"):
        return None
    paren = m.end() - 1
    args = call_args(code, paren)
    if name == "time":
        if ctx in ("global", "std") or (args is not None and TIME_ARGS.match(args)):
            return family, f"{name}(): reads the wall clock"
        return None
    if name == "clock":
        if ctx in ("global", "std"):
            return family, "clock(): reads the process clock"
        return None
    if ctx == "std" and name in STD_ALLOWED:
        return None
    if ctx in ("global", "std"):
        return family, f"call of {'::' if ctx == 'global' else 'std::'}{name}()"
    n = arity(args)
    if arities is None or n is None or n in arities:
        return family, f"call of {name}() with {n} argument(s)"
    return None


def lint_text(text):
    """Returns [(line, family, what)] for one file's text."""
    code = strip_code(text)
    found = []
    line_starts = [0]
    for k, ch in enumerate(code):
        if ch == "\n":
            line_starts.append(k + 1)

    def line_of(pos):
        lo, hi = 0, len(line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_starts[mid] <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1

    raw_lines = text.split("\n")
    code_lines = code.split("\n")
    for no, (raw, stripped) in enumerate(zip(raw_lines, code_lines), start=1):
        m = INCLUDE_LINE.match(stripped)
        if not m:
            continue
        header = raw[m.start(2):m.end(2)]
        for family, pattern in INCLUDE_RULES:
            if re.fullmatch(pattern, header):
                close = ">" if m.group(1) == "<" else '"'
                found.append((no, family, f"#include {m.group(1)}{header}{close}"))
    include_lines = {no for no, s in enumerate(code_lines, 1) if INCLUDE_LINE.match(s)}
    for family, pattern in TOKEN_RULES:
        for m in re.finditer(pattern, code):
            no = line_of(m.start())
            if no not in include_lines:
                found.append((no, family, re.sub(r"\s+", "", m.group(0))))
    for m in CALL_NAME.finditer(code):
        v = call_violation(code, m)
        if v:
            found.append((line_of(m.start()), v[0], v[1]))
    if any(UNORDERED_MARKER.search(line) for line in raw_lines):
        found = [f for f in found if f[1] != "unordered"]
    return sorted(set(found))


def sources(paths):
    for path in paths:
        if os.path.isfile(path):
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                if f.endswith(SOURCE_SUFFIXES):
                    yield os.path.join(root, f)


def main(argv):
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = argv or [os.path.join(repo, "src")]
    for p in paths:
        if not os.path.exists(p):
            print(f"lint_determinism: no such path: {p}", file=sys.stderr)
            return 2
    files = list(sources(paths))
    if not files:
        print(f"lint_determinism: no C++ sources under {' '.join(paths)}", file=sys.stderr)
        return 2
    bad_files = 0
    total = 0
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            found = lint_text(f.read())
        if found:
            bad_files += 1
        for no, family, what in found:
            total += 1
            shown = os.path.relpath(path)
            shown = path if shown.startswith("..") else shown
            print(f"{shown}:{no}: [{family}] {what}: {WHY[family]}")
    if total:
        print(f"lint_determinism: {total} violation(s) in {bad_files} file(s)", file=sys.stderr)
        return 1
    print(f"lint_determinism: {len(files)} file(s) clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
