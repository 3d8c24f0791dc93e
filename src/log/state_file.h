// A small, checksummed state file replaced atomically: Raft's term, vote and configuration,
// the log's checkpoint, and similar state that must be either the old or the new value
// after any crash, never a mix and never garbage.
//
// Replacement protocol (each step can be cut by a crash; the simulator tests every cut):
//   1. write the encoded bytes to "<name>.tmp" (created or truncated),
//   2. File::sync the temp file,
//   3. rename "<name>.tmp" -> "<name>",
//   4. Disk::sync_dir(dir).
// Until step 4 completes a crash may leave the old or the new file; both decode. A stale
// temp file is ignored and overwritten by the next replacement.
//
// Encoding: "KSF1" | u32 payload length | payload | u32 CRC-32C of everything before it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/bytes.h"
#include "env/disk.h"

namespace keel::log {

inline constexpr size_t kStateFileBytesMax = 4u << 20;
inline constexpr size_t kStateFileOverheadBytes = 12;

Bytes encode_state(ByteView payload);
// DataLoss for a bad magic, a length that disagrees with the file, or a bad CRC.
[[nodiscard]] absl::StatusOr<Bytes> decode_state(ByteView file);

// "<dir>/<name>", or "<name>" when dir is the data directory ("").
std::string join_path(std::string_view dir, std::string_view name);

class StateFile {
 public:
  // The file is "<dir>/<name>". The Disk must outlive this object.
  StateFile(env::Disk& disk, std::string dir, std::string name);
  ~StateFile();
  StateFile(const StateFile&) = delete;
  StateFile& operator=(const StateFile&) = delete;

  // The current payload: NotFound if the file was never written, DataLoss if it is corrupt.
  [[nodiscard]] absl::StatusOr<Bytes> read();

  // Replaces the payload (at most kStateFileBytesMax - overhead bytes). `done` runs on the
  // event loop once the new payload is durable, or with the first error. If a replacement is
  // in flight, this one starts after it; replacements queued meanwhile are coalesced (only the
  // newest payload is written; every queued `done` runs when it is durable).
  void replace(ByteView payload, env::DoneFn done);

  bool busy() const { return in_flight_; }

 private:
  void start();
  void finish(absl::Status status);

  env::Disk& disk_;
  std::string dir_;
  std::string path_;
  std::string tmp_path_;
  bool in_flight_ = false;
  std::unique_ptr<env::File> tmp_;
  // The previous temp file, kept until the next replacement: a File is never destroyed
  // inside its own callback.
  std::unique_ptr<env::File> retired_;
  std::vector<env::DoneFn> running_;       // waiting for the replacement in flight
  std::optional<Bytes> next_payload_;      // the newest queued payload
  std::vector<env::DoneFn> next_waiters_;  // waiting for next_payload_
  std::shared_ptr<bool> alive_;            // guards callbacks that may outlive this object
};

}  // namespace keel::log
