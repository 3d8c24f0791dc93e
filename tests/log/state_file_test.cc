// The state file: codec, and atomic replacement cut by a crash at every step.
#include "log/state_file.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "tests/log/log_util.h"

namespace keel::log {
namespace {

using testing::SimRig;

TEST(StateFileCodec, RoundTripAndRejects) {
  Bytes payload = to_bytes("term=5 vote=n2");
  Bytes enc = encode_state(payload);
  EXPECT_EQ(*decode_state(enc), payload);
  EXPECT_EQ(decode_state(encode_state(ByteView()))->size(), 0u);
  for (size_t i = 0; i < enc.size(); i++) {
    for (int bit = 0; bit < 8; bit++) {
      Bytes bad = enc;
      bad[i] ^= uint8_t(1 << bit);
      EXPECT_TRUE(absl::IsDataLoss(decode_state(bad).status())) << i << ":" << bit;
    }
  }
  for (size_t n = 0; n < enc.size(); n++) {
    EXPECT_FALSE(decode_state(ByteView(enc).first(n)).ok());
  }
  Bytes longer = enc;
  longer.push_back(0);
  EXPECT_FALSE(decode_state(longer).ok());
}

TEST(StateFile, ReplaceAndRead) {
  SimRig rig(1);
  ASSERT_TRUE(rig.disk.make_dir("raft").ok());
  StateFile f(rig.disk, "raft", "state");
  EXPECT_TRUE(absl::IsNotFound(f.read().status()));
  std::optional<absl::Status> done;
  f.replace(as_bytes("one"), [&](absl::Status s) { done = s; });
  EXPECT_TRUE(f.busy());
  rig.run();
  ASSERT_TRUE(done.has_value() && done->ok());
  EXPECT_EQ(as_chars(*f.read()), "one");
  // Queued replacements coalesce: only the newest is written, every callback runs.
  int calls = 0;
  f.replace(as_bytes("two"), [&](absl::Status s) { calls += s.ok(); });
  f.replace(as_bytes("three"), [&](absl::Status s) { calls += s.ok(); });
  f.replace(as_bytes("four"), [&](absl::Status s) { calls += s.ok(); });
  rig.run();
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(as_chars(*f.read()), "four");
}

// Crash after every number of scheduler events during a replacement (and with the disk's
// crash model tearing or dropping whatever was pending): the file then holds exactly the old
// or exactly the new payload. Once the replacement reported success, always the new one.
TEST(StateFile, CrashAtEveryStep) {
  size_t saw_old = 0, saw_new = 0;
  for (uint64_t seed = 1; seed <= 40; seed++) {
    for (int cut = 0; cut < 12; cut++) {
      SimRig rig(seed);
      Bytes old_payload(3000, uint8_t(seed));
      Bytes new_payload(5000 + seed, uint8_t(seed + 1));
      {
        StateFile f(rig.disk, "", "state");
        f.replace(old_payload, [](absl::Status s) { ASSERT_TRUE(s.ok()); });
        rig.run();
        bool reported = false;
        f.replace(new_payload, [&](absl::Status s) { reported = s.ok(); });
        for (int i = 0; i < cut; i++) rig.scheduler.step();
        rig.disk.crash();
        StateFile after(rig.disk, "", "state");
        auto got = after.read();
        ASSERT_TRUE(got.ok()) << got.status() << " seed " << seed << " cut " << cut;
        if (reported) {
          EXPECT_EQ(*got, new_payload);
        } else {
          EXPECT_TRUE(*got == old_payload || *got == new_payload);
        }
        (*got == new_payload ? saw_new : saw_old)++;
        // And a replacement after the crash works.
        std::optional<absl::Status> again;
        after.replace(as_bytes("after"), [&](absl::Status s) { again = s; });
        rig.run();
        ASSERT_TRUE(again.has_value() && again->ok());
        EXPECT_EQ(as_chars(*after.read()), "after");
      }
    }
  }
  // Both outcomes happen, or the test would not show anything.
  EXPECT_GT(saw_old, 0u);
  EXPECT_GT(saw_new, 0u);
}

TEST(StateFile, CorruptionIsReportedNotReturned) {
  SimRig rig(3);
  StateFile f(rig.disk, "", "state");
  f.replace(as_bytes("payload-payload"), [](absl::Status) {});
  rig.run();
  ASSERT_TRUE(rig.disk.flip_bit("state", 10, 3).ok());
  EXPECT_TRUE(absl::IsDataLoss(f.read().status()));
}

}  // namespace
}  // namespace keel::log
