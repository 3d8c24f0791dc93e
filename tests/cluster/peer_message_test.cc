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

}  // namespace
}  // namespace keel::cluster
