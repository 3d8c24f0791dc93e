#include <gtest/gtest.h>

#include "cluster/node.h"

namespace keel::cluster {
namespace {

raft::Message sample_message() {
  raft::Message m;
  m.set_type(raft::MSG_APP);
  m.set_to(2);
  m.set_from(1);
  m.set_term(7);
  m.set_log_term(6);
  m.set_index(41);
  m.set_commit(40);
  m.set_leader_last(300);
  for (int i = 0; i < 3; i++) {
    raft::Entry* e = m.add_entries();
    e->set_index(42 + uint64_t(i));
    e->set_count(1);
    e->set_term(7);
    e->set_data(std::string(size_t(100 * i + 1), char('a' + i)));
  }
  return m;
}

TEST(PeerMessage, EncodingMatchesTheWrapper) {
  for (uint32_t partition : {0u, 1u, 127u, 128u, 300000u}) {
    for (const raft::Message& m : {raft::Message(), sample_message()}) {
      PeerMessage pm;
      pm.set_partition(partition);
      *pm.mutable_message() = m;
      Bytes buffer = to_bytes("stale contents");
      const ByteView got = encode_peer_message(partition, m, buffer);
      EXPECT_EQ(as_chars(got), pm.SerializeAsString()) << "partition " << partition;
    }
  }
}

TEST(PeerMessage, DecodeReadsTheEncoding) {
  for (uint32_t partition : {0u, 1u, 127u, 128u, 300000u}) {
    for (const raft::Message& m : {raft::Message(), sample_message()}) {
      Bytes buffer;
      const ByteView bytes = encode_peer_message(partition, m, buffer);
      raft::Message got = sample_message();  // reused: stale contents must go
      uint32_t got_partition = 7;
      ASSERT_TRUE(decode_peer_message(bytes, got_partition, got)) << "partition " << partition;
      EXPECT_EQ(got_partition, partition);
      EXPECT_EQ(got.SerializeAsString(), m.SerializeAsString());
    }
  }
}

TEST(PeerMessage, DecodeRefusesOtherLayouts) {
  raft::Message m;
  uint32_t partition = 0;
  PeerMessage no_message;
  no_message.set_partition(3);
  EXPECT_FALSE(decode_peer_message(as_bytes(no_message.SerializeAsString()), partition, m));
  EXPECT_FALSE(decode_peer_message(ByteView(), partition, m));
  // Message first, then partition: valid protobuf, but not what encode_peer_message writes.
  Bytes buffer;
  const ByteView bytes = encode_peer_message(0, sample_message(), buffer);
  Bytes swapped(bytes.begin(), bytes.end());
  swapped.push_back(uint8_t(PeerMessage::kPartitionFieldNumber << 3));
  swapped.push_back(5);
  EXPECT_FALSE(decode_peer_message(swapped, partition, m));
  // A length that does not reach the end.
  Bytes truncated(bytes.begin(), bytes.end() - 1);
  EXPECT_FALSE(decode_peer_message(truncated, partition, m));
}

}  // namespace
}  // namespace keel::cluster
