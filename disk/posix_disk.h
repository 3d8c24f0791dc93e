// PosixDisk: env::Disk on real POSIX files under one data directory.
//
// What it adds to env::Disk's contract (see env/disk.h):
// - Paths are relative to the data directory: '/'-separated components, none empty, "." or
//   "..", no leading '/', no NUL, at most kPathBytesMax bytes. Anything else is
//   InvalidArgument, so no path can name a file outside the directory (symbolic links
//   planted inside it by someone else are not guarded against).
// - read/write/truncate/rename/remove/make_dir/list are plain syscalls on the calling (loop)
//   thread: they touch the page cache only. pread/pwrite loop over EINTR and short transfers.
// - File::sync (fdatasync) and sync_dir (fsync of the directory) run on a background sync
//   thread; their callbacks are posted back to the loop, so a slow disk never stalls it.
//   Syncs of one file queued behind each other are merged into one fdatasync (group commit),
//   and syncs of one file or directory complete in the order they were requested.
// - Once an fdatasync of a file fails, or a write to it fails with EIO, every later sync of
//   that open file fails too: after a failed fsync Linux may drop the dirty pages and report
//   success next time ("fsyncgate"), so nothing written before can be trusted as durable.
// - Errors carry the errno text: ENOENT -> NotFound, ENOSPC/EDQUOT -> ResourceExhausted,
//   EIO -> DataLoss, others as in net::errno_status.
// - A File keeps its descriptor alive until the sync thread is done with it, so destroying a
//   File with a sync in flight is safe (the sync completes; its callback is dropped).
//   Destroying the PosixDisk drops pending sync_dir callbacks likewise.
// - The EventLoop must outlive the PosixDisk and every File it opened; the sync thread is
//   joined when the disk and all its files are gone (after the queued syncs complete).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "env/disk.h"
#include "net/event_loop.h"

namespace keel::disk {

namespace internal {
class SyncWorker;
}

struct PosixDiskOptions {
  // Sync jobs (distinct files or directories) waiting for the sync thread. Beyond it, a sync
  // fails with ResourceExhausted rather than queueing without bound.
  size_t sync_jobs_queued_max = 4096;
  // Test hook: the sync thread sleeps this long before each fsync, to model a slow disk.
  std::chrono::nanoseconds sync_delay_for_test{0};
  // Create the data directory (and its parents) if it does not exist.
  bool create_root = true;
  // Hold an exclusive flock on the data directory while the disk lives: a second PosixDisk
  // on the same directory (another process, or this one) fails with FailedPrecondition.
  bool lock_root = true;
};

class PosixDisk final : public env::Disk {
 public:
  static constexpr size_t kPathBytesMax = 1024;
  static constexpr size_t kListEntriesMax = 1 << 20;

  static absl::StatusOr<std::unique_ptr<PosixDisk>> open(net::EventLoop& loop,
                                                         const std::string& root,
                                                         PosixDiskOptions options = {});
  ~PosixDisk() override;
  PosixDisk(const PosixDisk&) = delete;
  PosixDisk& operator=(const PosixDisk&) = delete;

  absl::StatusOr<std::unique_ptr<env::File>> open(std::string_view path,
                                                  env::OpenMode mode) override;
  absl::Status rename(std::string_view from, std::string_view to) override;
  // Removes a file, or an empty directory.
  absl::Status remove(std::string_view path) override;
  absl::Status make_dir(std::string_view path) override;
  absl::StatusOr<std::vector<std::string>> list(std::string_view dir) override;
  void sync_dir(std::string_view dir, env::DoneFn done) override;

  const std::string& root() const { return root_; }
  // Syncs requested and not yet completed on the sync thread (callbacks may still be queued
  // on the loop).
  size_t syncs_in_flight() const;
  // fsync/fdatasync calls the sync thread has made (syncs merged into one count once).
  uint64_t syncs_run() const;

 private:
  PosixDisk(net::EventLoop& loop, std::string root, int root_fd,
            std::shared_ptr<internal::SyncWorker> worker);

  net::EventLoop* loop_;
  std::string root_;
  int root_fd_;
  std::shared_ptr<internal::SyncWorker> worker_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace keel::disk
