#include "tests/simdisk/simdisk_util.h"

#include <gtest/gtest.h>

#include "base/check.h"

namespace keel::sim::testing {

std::unique_ptr<env::File> Rig::open(std::string_view path, env::OpenMode mode) {
  auto file = disk.open(path, mode);
  KEEL_CHECK(file.ok(), "open {}: {}", path, file.status().ToString());
  return std::move(*file);
}

absl::Status Rig::sync(env::File& file) {
  std::optional<absl::Status> result;
  file.sync([&](absl::Status s) { result = std::move(s); });
  while (!result && scheduler.step()) {
  }
  KEEL_CHECK(result.has_value(), "sync never completed");
  return *result;
}

absl::Status Rig::sync_dir(std::string_view dir) {
  std::optional<absl::Status> result;
  disk.sync_dir(dir, [&](absl::Status s) { result = std::move(s); });
  while (!result && scheduler.step()) {
  }
  KEEL_CHECK(result.has_value(), "sync_dir never completed");
  return *result;
}

absl::StatusOr<Bytes> Rig::try_read_all(std::string_view path) {
  auto file = disk.open(path, env::OpenMode::kExisting);
  if (!file.ok()) return file.status();
  Bytes out((*file)->size());
  auto n = (*file)->read(0, out);
  if (!n.ok()) return n.status();
  KEEL_CHECK_EQ(*n, out.size());
  return out;
}

std::optional<Bytes> Rig::read_all(std::string_view path) {
  auto r = try_read_all(path);
  if (absl::IsNotFound(r.status())) return std::nullopt;
  KEEL_CHECK(r.ok(), "read {}: {}", path, r.status().ToString());
  return *r;
}

Bytes pattern(size_t n, uint8_t tag) {
  Bytes out(n);
  for (size_t i = 0; i < n; i++) out[i] = uint8_t(tag * 31 + i * 7 + (i >> 8));
  return out;
}

}  // namespace keel::sim::testing
