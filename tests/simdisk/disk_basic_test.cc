// Plain behaviour of the simulated disk without faults: the env::Disk contract.
#include <gtest/gtest.h>

#include "tests/simdisk/simdisk_util.h"

namespace keel::sim::testing {
namespace {

using env::kSectorBytes;
using env::OpenMode;

TEST(SimDiskBasic, WriteReadTruncateSize) {
  Rig rig(1);
  auto f = rig.open("a");
  EXPECT_EQ(f->size(), 0u);
  ASSERT_TRUE(f->write(10, as_bytes("hello")).ok());
  EXPECT_EQ(f->size(), 15u);
  Bytes buf(20, 0xff);
  auto n = f->read(0, buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 15u);
  EXPECT_EQ(Bytes(buf.begin(), buf.begin() + 10), Bytes(10, 0));  // the gap reads as zeros
  EXPECT_EQ(as_chars(ByteView(buf.data() + 10, 5)), "hello");
  ASSERT_TRUE(f->append(as_bytes("!")).ok());
  EXPECT_EQ(f->size(), 16u);
  ASSERT_TRUE(f->truncate(12).ok());
  EXPECT_EQ(f->size(), 12u);
  ASSERT_TRUE(f->truncate(20).ok());
  auto all = rig.read_all("a");
  ASSERT_TRUE(all.has_value());
  Bytes want(20, 0);
  want[10] = 'h';
  want[11] = 'e';
  EXPECT_EQ(*all, want);
  auto past = f->read(100, buf);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, 0u);
}

TEST(SimDiskBasic, NamespaceOperations) {
  Rig rig(2);
  EXPECT_TRUE(absl::IsNotFound(rig.disk.open("x", OpenMode::kExisting).status()));
  EXPECT_TRUE(absl::IsNotFound(rig.disk.open("d/x", OpenMode::kCreate).status()));
  ASSERT_TRUE(rig.disk.make_dir("d").ok());
  ASSERT_TRUE(rig.disk.make_dir("d").ok());  // OK if it exists
  rig.open("d/b");
  rig.open("d/a");
  rig.open("top");
  EXPECT_EQ(*rig.disk.list("d"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(*rig.disk.list(""), (std::vector<std::string>{"d", "top"}));
  EXPECT_TRUE(absl::IsNotFound(rig.disk.list("nope").status()));
  EXPECT_FALSE(rig.disk.remove("d").ok());  // not empty
  ASSERT_TRUE(rig.disk.rename("d/a", "d/c").ok());
  EXPECT_EQ(*rig.disk.list("d"), (std::vector<std::string>{"b", "c"}));
  EXPECT_TRUE(absl::IsNotFound(rig.disk.rename("d/a", "d/z")));
  ASSERT_TRUE(rig.disk.remove("d/b").ok());
  ASSERT_TRUE(rig.disk.remove("d/c").ok());
  ASSERT_TRUE(rig.disk.remove("d").ok());
  EXPECT_EQ(*rig.disk.list(""), (std::vector<std::string>{"top"}));
  EXPECT_TRUE(absl::IsInvalidArgument(rig.disk.make_dir("../x")));
  EXPECT_TRUE(absl::IsInvalidArgument(rig.disk.open("/abs", OpenMode::kCreate).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(rig.disk.open("a//b", OpenMode::kCreate).status()));
  EXPECT_TRUE(absl::IsAlreadyExists(rig.disk.make_dir("top")));
}

TEST(SimDiskBasic, RenameReplacesTarget) {
  Rig rig(3);
  auto a = rig.open("a");
  ASSERT_TRUE(a->write(0, as_bytes("new")).ok());
  auto b = rig.open("b");
  ASSERT_TRUE(b->write(0, as_bytes("old")).ok());
  ASSERT_TRUE(rig.disk.rename("a", "b").ok());
  EXPECT_EQ(*rig.read_all("b"), to_bytes("new"));
  EXPECT_FALSE(rig.read_all("a").has_value());
  // The replaced file's handle still works on the unlinked file.
  ASSERT_TRUE(b->write(3, as_bytes("er")).ok());
  EXPECT_EQ(b->size(), 5u);
  EXPECT_EQ(*rig.read_all("b"), to_bytes("new"));
}

TEST(SimDiskBasic, SyncCompletesAfterLatencyAsAnEvent) {
  DiskFaults faults;
  faults.sync_latency_min_ns = 1'000;
  faults.sync_latency_max_ns = 1'000;
  Rig rig(4, faults);
  auto f = rig.open("a");
  ASSERT_TRUE(f->write(0, as_bytes("x")).ok());
  bool done = false;
  f->sync([&](absl::Status s) {
    EXPECT_TRUE(s.ok());
    done = true;
  });
  EXPECT_FALSE(done);  // never inside the call
  EXPECT_EQ(*rig.disk.durable_size("a"), 0u);
  ASSERT_TRUE(rig.scheduler.step());
  EXPECT_TRUE(done);
  EXPECT_EQ(rig.scheduler.now_ns(), 1'000);
  EXPECT_EQ(*rig.disk.durable_size("a"), 1u);
  EXPECT_EQ(*rig.disk.pending_sectors("a"), 0u);
  EXPECT_EQ(rig.disk.stats().syncs_completed, 1u);
}

TEST(SimDiskBasic, DestroyingAFileDropsItsCallbacksButTheSyncHappens) {
  Rig rig(5);
  auto f = rig.open("a");
  ASSERT_TRUE(f->write(0, as_bytes("abc")).ok());
  bool called = false;
  f->sync([&](absl::Status) { called = true; });
  f.reset();
  while (rig.scheduler.step()) {
  }
  EXPECT_FALSE(called);
  EXPECT_EQ(*rig.disk.durable_size("a"), 3u);
}

TEST(SimDiskBasic, SyncDirOnMissingDirectoryFailsAsAnEvent) {
  Rig rig(6);
  EXPECT_TRUE(absl::IsNotFound(rig.sync_dir("missing")));
  EXPECT_TRUE(rig.sync_dir("").ok());
}

TEST(SimDiskBasic, SyncsOfOneFileCompleteInCallOrder) {
  DiskFaults faults;
  faults.sync_latency_min_ns = 1;
  faults.sync_latency_max_ns = 1'000'000;
  Rig rig(7, faults);
  auto f = rig.open("a");
  std::vector<int> order;
  for (int i = 0; i < 50; i++) {
    ASSERT_TRUE(f->write(uint64_t(i) * 10, pattern(10, uint8_t(i))).ok());
    f->sync([&order, i](absl::Status s) {
      EXPECT_TRUE(s.ok());
      order.push_back(i);
    });
  }
  while (rig.scheduler.step()) {
  }
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; i++) EXPECT_EQ(order[size_t(i)], i);
  EXPECT_EQ(*rig.disk.durable_size("a"), 500u);
}

TEST(SimDiskBasic, StatsCount) {
  Rig rig(8);
  auto f = rig.open("a");
  ASSERT_TRUE(f->write(0, pattern(5000, 1)).ok());
  ASSERT_TRUE(rig.sync(*f).ok());
  const DiskStats& s = rig.disk.stats();
  EXPECT_EQ(s.writes, 1u);
  EXPECT_EQ(s.bytes_written, 5000u);
  EXPECT_EQ(s.syncs, 1u);
  EXPECT_EQ(s.bytes_synced, 5000u);
  EXPECT_EQ(s.dir_ops, 1u);
  DiskStats sum;
  sum += s;
  sum += s;
  EXPECT_EQ(sum.bytes_written, 10000u);
  EXPECT_NE(s.summary().find("bytes_synced=5000"), std::string::npos);
}

}  // namespace
}  // namespace keel::sim::testing
