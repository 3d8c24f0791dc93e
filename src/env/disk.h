// Disk: the node's files, with explicit durability.
//
// Model (what both implementations promise, and what the simulator's faults stay within):
// - Paths are relative to the node's data directory, '/'-separated, without "." or "..".
// - read/write/truncate/rename/remove/make_dir act at once on the node's view of its files
//   (like pwrite into the page cache) and report errors as values: EIO, ENOSPC, not found.
//   They are NOT durable. A crash may drop any write not yet covered by a completed sync,
//   and may tear the last ones at sector granularity (kSectorBytes): each unsynced sector is
//   kept, dropped, or torn (its bytes that unsynced writes changed may be garbage; bytes of
//   the sector that were already durable and not rewritten stay as they were).
// - File::sync(done) makes every write and truncate issued on that file before the call
//   durable, then calls done(OkStatus) on the event loop. It is the one slow operation, so
//   its completion is an event: a crash may fall between a write and its sync, or during
//   the sync. done(error) means nothing may be assumed durable: the caller must not go on as
//   if it were (retrying the sync does not make earlier data safe; Keel treats it as fatal
//   for that file).
// - A created, renamed or removed name is durable only after sync_dir of its parent.
// - Durable data may still be corrupted (beyond the caller's control): reads may return
//   flipped bits, stale or misdirected sectors, or EIO for an unreadable sector. Such
//   corruption is stable: reading again returns the same bytes. Callers verify checksums.
// - Destroying a File drops its pending sync callbacks (the sync itself still happens).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/bytes.h"

namespace keel::env {

inline constexpr size_t kSectorBytes = 4096;

using DoneFn = absl::AnyInvocable<void(absl::Status)>;

class File {
 public:
  virtual ~File() = default;

  // Reads up to out.size() bytes at `offset`; returns how many were read (fewer only at the
  // end of the file).
  [[nodiscard]] virtual absl::StatusOr<size_t> read(uint64_t offset, std::span<uint8_t> out) = 0;

  // Writes `data` at `offset`, extending the file if needed (a gap reads as zeros).
  [[nodiscard]] virtual absl::Status write(uint64_t offset, ByteView data) = 0;

  // Sets the size (drops a suffix, or extends with zeros).
  [[nodiscard]] virtual absl::Status truncate(uint64_t size) = 0;

  // The size as seen by this node now (including unsynced writes).
  virtual uint64_t size() const = 0;

  // See the model above.
  virtual void sync(DoneFn done) = 0;

  [[nodiscard]] absl::Status append(ByteView data) { return write(size(), data); }
};

enum class OpenMode {
  kExisting,  // fail with NotFound if missing
  kCreate,    // create if missing
};

class Disk {
 public:
  virtual ~Disk() = default;

  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<File>> open(std::string_view path,
                                                                   OpenMode mode) = 0;
  // Atomically replaces `to` with `from` (both in one directory in Keel's use).
  [[nodiscard]] virtual absl::Status rename(std::string_view from, std::string_view to) = 0;
  [[nodiscard]] virtual absl::Status remove(std::string_view path) = 0;
  // Creates a directory; OK if it already exists.
  [[nodiscard]] virtual absl::Status make_dir(std::string_view path) = 0;
  // The names (not paths) in directory `dir` ("" is the data directory), sorted.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> list(std::string_view dir) = 0;
  // Makes creations, renames and removals in `dir` durable; see the model above.
  virtual void sync_dir(std::string_view dir, DoneFn done) = 0;
};

}  // namespace keel::env
