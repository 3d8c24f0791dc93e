#include "disk/posix_disk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "base/check.h"

namespace keel::disk {
namespace internal {

// A descriptor shared by a File and the sync jobs still using it: closed when both are done.
struct OwnedFd {
  explicit OwnedFd(int f) : fd(f) {}
  ~OwnedFd() {
    // Linux releases the descriptor even when close() reports an error; never retry.
    (void)::close(fd);
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;

  // Sticky failure: once set, every later sync reports it (see the header).
  void poison(const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu);
    if (poisoned.ok()) poisoned = status;
  }
  absl::Status poison_status() {
    std::lock_guard<std::mutex> lock(mu);
    return poisoned;
  }

  const int fd;
  std::mutex mu;
  absl::Status poisoned;  // guarded by mu
};

// One background thread running fsync/fdatasync jobs in FIFO order and posting their
// completions to the loop. Shared by a PosixDisk and its Files; joined (after draining its
// queue, because a requested sync must still happen) when the last of them is gone.
class SyncWorker {
 public:
  using Completion = absl::AnyInvocable<void(absl::Status)>;

  SyncWorker(net::EventLoop& loop, PosixDiskOptions options)
      : loop_(&loop), options_(options), thread_([this] { run(); }) {}

  ~SyncWorker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Queues a sync of `fd` (fdatasync if data_only, else fsync); `done` is posted to the loop
  // with the result. A sync of the same key still waiting in the queue absorbs this one: its
  // fsync starts later, so it covers everything written before this call too. Never runs
  // `done` inside the call.
  void submit(const std::string& key, std::shared_ptr<OwnedFd> fd, bool data_only, std::string what,
              Completion done) {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto it = queued_by_key_.find(key); it != queued_by_key_.end()) {
      it->second->completions.push_back(std::move(done));
      in_flight_++;
      return;
    }
    if (queue_.size() >= options_.sync_jobs_queued_max) {
      lock.unlock();
      loop_->post([done = std::move(done), what]() mutable {
        done(absl::ResourceExhaustedError("sync queue full: " + what));
      });
      return;
    }
    auto job = std::make_shared<Job>();
    job->key = key;
    job->fd = std::move(fd);
    job->data_only = data_only;
    job->what = std::move(what);
    job->completions.push_back(std::move(done));
    queued_by_key_.emplace(key, job.get());
    queue_.push_back(std::move(job));
    in_flight_++;
    lock.unlock();
    cv_.notify_one();
  }

  size_t in_flight() const {
    std::lock_guard<std::mutex> lock(mu_);
    return in_flight_;
  }
  uint64_t syncs_run() const {
    std::lock_guard<std::mutex> lock(mu_);
    return syncs_run_;
  }

 private:
  struct Job {
    std::string key;
    std::shared_ptr<OwnedFd> fd;
    bool data_only = true;
    std::string what;
    std::vector<Completion> completions;  // appended under mu_ while queued
  };

  void run() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and every requested sync has been done
        job = std::move(queue_.front());
        queue_.pop_front();
        queued_by_key_.erase(job->key);  // from now on, no completion joins this job
      }
      if (options_.sync_delay_for_test > std::chrono::nanoseconds(0)) {
        std::this_thread::sleep_for(options_.sync_delay_for_test);
      }
      const absl::Status status = sync(*job);
      std::vector<Completion> completions = std::move(job->completions);  // none join now
      job.reset();  // releases the descriptor on this thread, not the loop's
      {
        // Counted as done before the callbacks can run: once the last callback has run,
        // syncs_in_flight() is 0 (it was decremented after the post, racing the loop).
        std::lock_guard<std::mutex> lock(mu_);
        in_flight_ -= completions.size();
        syncs_run_++;
      }
      loop_->post([completions = std::move(completions), status]() mutable {
        for (Completion& done : completions) done(status);
      });
    }
  }

  static absl::Status sync(Job& job) {
    if (absl::Status poisoned = job.fd->poison_status(); !poisoned.ok()) return poisoned;
    int rc;
    do {
      rc = job.data_only ? ::fdatasync(job.fd->fd) : ::fsync(job.fd->fd);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) return absl::OkStatus();
    absl::Status status =
        net::errno_status(errno, (job.data_only ? "fdatasync " : "fsync ") + job.what);
    job.fd->poison(status);
    return status;
  }

  net::EventLoop* loop_;
  const PosixDiskOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;     // guarded by mu_
  std::map<std::string, Job*> queued_by_key_;  // guarded by mu_
  size_t in_flight_ = 0;                       // guarded by mu_
  uint64_t syncs_run_ = 0;                     // guarded by mu_
  bool stopping_ = false;                      // guarded by mu_
  std::thread thread_;  // last member: starts after everything it uses is constructed
};

}  // namespace internal

namespace {

using internal::OwnedFd;
using internal::SyncWorker;

absl::Status check_path(std::string_view path, bool allow_root) {
  if (path.empty()) {
    return allow_root ? absl::OkStatus() : absl::InvalidArgumentError("empty path");
  }
  if (path.size() > PosixDisk::kPathBytesMax) {
    return absl::InvalidArgumentError("path too long");
  }
  if (path.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("path contains NUL");
  }
  if (path.front() == '/') {
    return absl::InvalidArgumentError("absolute path: " + std::string(path));
  }
  size_t start = 0;
  for (;;) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string_view component = path.substr(start, end - start);
    if (component.empty() || component == "." || component == "..") {
      return absl::InvalidArgumentError("bad path component in '" + std::string(path) + "'");
    }
    if (end == path.size()) return absl::OkStatus();
    start = end + 1;
  }
}

// Retries a syscall returning -1/errno on EINTR.
template <typename F>
auto retry_eintr(F&& f) {
  for (;;) {
    auto rc = f();
    if (!(rc < 0 && errno == EINTR)) return rc;
  }
}

absl::Status check_range(uint64_t offset, size_t size) {
  constexpr uint64_t kMax = uint64_t(std::numeric_limits<off_t>::max());
  if (offset > kMax || size > kMax - offset) {
    return absl::InvalidArgumentError("offset beyond the largest file size");
  }
  return absl::OkStatus();
}

// mkdir -p: creates `path` and its missing parents.
absl::Status make_dirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); pos++) {
    if (pos < path.size() && path[pos] != '/') continue;
    const std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
      return net::errno_status(errno, "mkdir " + prefix);
    }
  }
  return absl::OkStatus();
}

class PosixFile final : public env::File {
 public:
  PosixFile(std::shared_ptr<SyncWorker> worker, std::shared_ptr<OwnedFd> fd, std::string path)
      : worker_(std::move(worker)), fd_(std::move(fd)), path_(std::move(path)) {}

  ~PosixFile() override = default;  // alive_ dies: pending sync callbacks are dropped

  absl::StatusOr<size_t> read(uint64_t offset, std::span<uint8_t> out) override {
    if (auto s = check_range(offset, out.size()); !s.ok()) return s;
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = retry_eintr([&] {
        return ::pread(fd_->fd, out.data() + done, out.size() - done, off_t(offset + done));
      });
      if (n < 0) return net::errno_status(errno, "pread " + path_);
      if (n == 0) break;  // end of file
      done += size_t(n);
    }
    return done;
  }

  absl::Status write(uint64_t offset, ByteView data) override {
    if (auto s = check_range(offset, data.size()); !s.ok()) return s;
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = retry_eintr([&] {
        return ::pwrite(fd_->fd, data.data() + done, data.size() - done, off_t(offset + done));
      });
      if (n < 0) {
        absl::Status status = net::errno_status(errno, "pwrite " + path_);
        if (errno == EIO) fd_->poison(status);
        return status;
      }
      // pwrite of a non-empty buffer returning 0 would loop forever; POSIX leaves it
      // unspecified, so treat it as an IO error.
      if (n == 0) return absl::DataLossError("pwrite " + path_ + ": wrote nothing");
      done += size_t(n);
    }
    return absl::OkStatus();
  }

  absl::Status truncate(uint64_t size) override {
    if (auto s = check_range(size, 0); !s.ok()) return s;
    if (retry_eintr([&] { return ::ftruncate(fd_->fd, off_t(size)); }) != 0) {
      return net::errno_status(errno, "ftruncate " + path_);
    }
    return absl::OkStatus();
  }

  uint64_t size() const override {
    struct stat st;
    // fstat of an open descriptor fails only on a broken process (EBADF, EFAULT).
    KEEL_CHECK(::fstat(fd_->fd, &st) == 0, "fstat {}: {}", path_, std::strerror(errno));
    return uint64_t(st.st_size);
  }

  void sync(env::DoneFn done) override {
    KEEL_CHECK(done != nullptr);
    worker_->submit(
        "f:" + std::to_string(fd_->fd), fd_, /*data_only=*/true, path_,
        [alive = std::weak_ptr<bool>(alive_), done = std::move(done)](absl::Status status) mutable {
          if (!alive.expired()) done(std::move(status));
        });
  }

 private:
  std::shared_ptr<SyncWorker> worker_;
  std::shared_ptr<OwnedFd> fd_;
  std::string path_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

absl::StatusOr<std::unique_ptr<PosixDisk>> PosixDisk::open(net::EventLoop& loop,
                                                           const std::string& root,
                                                           PosixDiskOptions options) {
  if (root.empty()) return absl::InvalidArgumentError("empty data directory");
  if (options.create_root) {
    if (auto s = make_dirs(root); !s.ok()) return s;
  }
  const int fd =
      retry_eintr([&] { return ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
  if (fd < 0) return net::errno_status(errno, "open data directory " + root);
  // Two nodes writing one directory would destroy each other's log; the lock goes away with
  // the descriptor, also when the process dies.
  if (options.lock_root && retry_eintr([&] { return ::flock(fd, LOCK_EX | LOCK_NB); }) != 0) {
    const int err = errno;
    (void)::close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError("data directory " + root + " is in use (locked)");
    }
    return net::errno_status(err, "flock " + root);
  }
  auto worker = std::make_shared<SyncWorker>(loop, options);
  return std::unique_ptr<PosixDisk>(new PosixDisk(loop, root, fd, std::move(worker)));
}

PosixDisk::PosixDisk(net::EventLoop& loop, std::string root, int root_fd,
                     std::shared_ptr<internal::SyncWorker> worker)
    : loop_(&loop), root_(std::move(root)), root_fd_(root_fd), worker_(std::move(worker)) {}

PosixDisk::~PosixDisk() {
  alive_.reset();
  (void)::close(root_fd_);
}

absl::StatusOr<std::unique_ptr<env::File>> PosixDisk::open(std::string_view path,
                                                           env::OpenMode mode) {
  if (auto s = check_path(path, /*allow_root=*/false); !s.ok()) return s;
  const std::string p(path);
  int flags = O_RDWR | O_CLOEXEC;
  if (mode == env::OpenMode::kCreate) flags |= O_CREAT;
  const int fd = retry_eintr([&] { return ::openat(root_fd_, p.c_str(), flags, 0644); });
  if (fd < 0) return net::errno_status(errno, "open " + p);
  auto owned = std::make_shared<OwnedFd>(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return net::errno_status(errno, "fstat " + p);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError("not a regular file: " + p);
  return std::unique_ptr<env::File>(new PosixFile(worker_, std::move(owned), p));
}

absl::Status PosixDisk::rename(std::string_view from, std::string_view to) {
  if (auto s = check_path(from, false); !s.ok()) return s;
  if (auto s = check_path(to, false); !s.ok()) return s;
  const std::string f(from), t(to);
  if (retry_eintr([&] { return ::renameat(root_fd_, f.c_str(), root_fd_, t.c_str()); }) != 0) {
    return net::errno_status(errno, "rename " + f + " -> " + t);
  }
  return absl::OkStatus();
}

absl::Status PosixDisk::remove(std::string_view path) {
  if (auto s = check_path(path, false); !s.ok()) return s;
  const std::string p(path);
  if (::unlinkat(root_fd_, p.c_str(), 0) == 0) return absl::OkStatus();
  if (errno != EISDIR) return net::errno_status(errno, "unlink " + p);
  if (::unlinkat(root_fd_, p.c_str(), AT_REMOVEDIR) == 0) return absl::OkStatus();
  return net::errno_status(errno, "rmdir " + p);
}

absl::Status PosixDisk::make_dir(std::string_view path) {
  if (auto s = check_path(path, false); !s.ok()) return s;
  const std::string p(path);
  if (::mkdirat(root_fd_, p.c_str(), 0755) == 0) return absl::OkStatus();
  if (errno != EEXIST) return net::errno_status(errno, "mkdir " + p);
  struct stat st;
  if (::fstatat(root_fd_, p.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return net::errno_status(errno, "stat " + p);
  }
  if (!S_ISDIR(st.st_mode)) return absl::AlreadyExistsError("not a directory: " + p);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> PosixDisk::list(std::string_view dir) {
  if (auto s = check_path(dir, /*allow_root=*/true); !s.ok()) return s;
  const std::string p = dir.empty() ? "." : std::string(dir);
  const int fd = retry_eintr(
      [&] { return ::openat(root_fd_, p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
  if (fd < 0) return net::errno_status(errno, "open directory " + p);
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    const int err = errno;
    (void)::close(fd);
    return net::errno_status(err, "fdopendir " + p);
  }
  std::vector<std::string> names;
  absl::Status status;
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(d);
    if (entry == nullptr) {
      if (errno != 0) status = net::errno_status(errno, "readdir " + p);
      break;
    }
    const std::string_view name(entry->d_name);
    if (name == "." || name == "..") continue;
    if (names.size() >= kListEntriesMax) {
      status = absl::ResourceExhaustedError("too many entries in " + p);
      break;
    }
    names.emplace_back(name);
  }
  (void)::closedir(d);  // closes fd
  if (!status.ok()) return status;
  std::sort(names.begin(), names.end());
  return names;
}

void PosixDisk::sync_dir(std::string_view dir, env::DoneFn done) {
  KEEL_CHECK(done != nullptr);
  auto completion = [alive = std::weak_ptr<bool>(alive_),
                     done = std::move(done)](absl::Status status) mutable {
    if (!alive.expired()) done(std::move(status));
  };
  absl::Status status = check_path(dir, /*allow_root=*/true);
  const std::string p = dir.empty() ? "." : std::string(dir);
  int fd = -1;
  if (status.ok()) {
    fd = retry_eintr(
        [&] { return ::openat(root_fd_, p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) status = net::errno_status(errno, "open directory " + p);
  }
  if (!status.ok()) {
    loop_->post([completion = std::move(completion), status]() mutable { completion(status); });
    return;
  }
  worker_->submit("d:" + p, std::make_shared<OwnedFd>(fd), /*data_only=*/false, p + "/",
                  std::move(completion));
}

size_t PosixDisk::syncs_in_flight() const { return worker_->in_flight(); }

uint64_t PosixDisk::syncs_run() const { return worker_->syncs_run(); }

}  // namespace keel::disk
