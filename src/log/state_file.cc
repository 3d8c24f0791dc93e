#include "log/state_file.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/crc32c.h"

namespace keel::log {
namespace {
constexpr uint8_t kMagic[4] = {'K', 'S', 'F', '1'};
}  // namespace

Bytes encode_state(ByteView payload) {
  KEEL_CHECK(payload.size() + kStateFileOverheadBytes <= kStateFileBytesMax, "state too big: {}",
             payload.size());
  Bytes out(8 + payload.size() + 4);
  std::memcpy(out.data(), kMagic, 4);
  put_be32(&out[4], uint32_t(payload.size()));
  if (!payload.empty()) std::memcpy(&out[8], payload.data(), payload.size());
  put_be32(&out[8 + payload.size()], crc32c(ByteView(out).first(8 + payload.size())));
  return out;
}

absl::StatusOr<Bytes> decode_state(ByteView file) {
  if (file.size() < kStateFileOverheadBytes || file.size() > kStateFileBytesMax) {
    return absl::DataLossError(absl::StrCat("state file: bad size ", file.size()));
  }
  if (std::memcmp(file.data(), kMagic, 4) != 0) return absl::DataLossError("state file: magic");
  uint32_t len = get_be32(&file[4]);
  if (uint64_t(len) + kStateFileOverheadBytes != file.size()) {
    return absl::DataLossError("state file: length mismatch");
  }
  if (crc32c(file.first(8 + len)) != get_be32(&file[8 + len])) {
    return absl::DataLossError("state file: CRC mismatch");
  }
  return Bytes(file.begin() + 8, file.begin() + 8 + len);
}

std::string join_path(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string path(dir);
  path += "/";
  path += name;
  return path;
}

StateFile::StateFile(env::Disk& disk, std::string dir, std::string name)
    : disk_(disk),
      dir_(std::move(dir)),
      path_(join_path(dir_, name)),
      tmp_path_(path_ + ".tmp"),
      alive_(std::make_shared<bool>(true)) {}

StateFile::~StateFile() { *alive_ = false; }

absl::StatusOr<Bytes> StateFile::read() {
  auto file = disk_.open(path_, env::OpenMode::kExisting);
  if (!file.ok()) return file.status();
  uint64_t size = (*file)->size();
  if (size > kStateFileBytesMax) return absl::DataLossError("state file: too large");
  Bytes buf(size);
  auto n = (*file)->read(0, buf);
  if (!n.ok()) return n.status();
  if (*n != size) return absl::DataLossError("state file: short read");
  return decode_state(buf);
}

void StateFile::replace(ByteView payload, env::DoneFn done) {
  next_payload_ = Bytes(payload.begin(), payload.end());
  next_waiters_.push_back(std::move(done));
  if (!in_flight_) start();
}

void StateFile::start() {
  KEEL_CHECK(!in_flight_ && next_payload_.has_value());
  in_flight_ = true;
  Bytes encoded = encode_state(*next_payload_);
  next_payload_.reset();
  running_ = std::move(next_waiters_);
  next_waiters_.clear();
  retired_ = std::move(tmp_);
  auto file = disk_.open(tmp_path_, env::OpenMode::kCreate);
  if (!file.ok()) return finish(file.status());
  tmp_ = std::move(*file);
  absl::Status s = tmp_->truncate(0);
  if (s.ok()) s = tmp_->write(0, encoded);
  if (!s.ok()) return finish(s);
  std::weak_ptr<bool> alive = alive_;
  tmp_->sync([this, alive](absl::Status s) {
    if (alive.expired()) return;
    if (!s.ok()) return finish(s);
    s = disk_.rename(tmp_path_, path_);
    if (!s.ok()) return finish(s);
    disk_.sync_dir(dir_, [this, alive](absl::Status s) {
      if (alive.expired()) return;
      finish(s);
    });
  });
}

void StateFile::finish(absl::Status status) {
  in_flight_ = false;
  std::vector<env::DoneFn> waiters = std::move(running_);
  running_.clear();
  // Start the next replacement before running callbacks, which may queue more.
  if (next_payload_.has_value()) start();
  for (auto& w : waiters) w(status);
}

}  // namespace keel::log
