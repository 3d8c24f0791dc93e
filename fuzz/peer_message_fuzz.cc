// Fuzzes decode_peer_message (cluster/node.h), the node's fast reader of a PeerMessage
// envelope, against protobuf's own parser: it must never crash; whatever it accepts, the
// generic parser (PeerMessage::ParseFromArray) must accept too, with the same partition and
// the same Raft message (compared by serialization); it may decline what the generic parser
// accepts (the node hands such bytes to that parser). The node reuses one message from frame
// to frame, so the decode also runs into a message reused across inputs, which must come out
// the same as a fresh one (no field left over from the previous input).
#include <cstddef>
#include <cstdint>

#include "base/check.h"
#include "cluster/cluster.pb.h"
#include "cluster/node.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keel;
  static raft::Message* reused = new raft::Message();
  const ByteView bytes(data, size);

  raft::Message fresh;
  uint32_t partition = 0;
  const bool fast = cluster::decode_peer_message(bytes, partition, fresh);
  uint32_t partition_reused = 0;
  KEEL_CHECK(cluster::decode_peer_message(bytes, partition_reused, *reused) == fast);
  if (!fast) return 0;

  cluster::PeerMessage generic;
  KEEL_CHECK(generic.ParseFromArray(data, int(size)), "fast path accepted what protobuf rejects");
  KEEL_CHECK(generic.partition() == partition && partition_reused == partition);
  const std::string want = generic.message().SerializeAsString();
  KEEL_CHECK(fresh.SerializeAsString() == want, "fast path decoded another message");
  KEEL_CHECK(reused->SerializeAsString() == want, "a reused message kept a field");
  return 0;
}
