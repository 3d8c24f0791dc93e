// Node: one Keel broker process (env::Process). It hosts the replica of a partition, talks to
// its peers through a PeerTransport, and serves clients on a second port with a small framed
// protocol (cluster.proto ClientRequest/ClientResponse; the Kafka protocol comes on top of
// the same Replica calls).
//
// A node whose replica cannot open (e.g. both state copies damaged) or failed on an IO error
// stays up but answers UNAVAILABLE and takes no part in Raft: health() says why. The
// operator (or the simulator) restarts it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/frame.h"
#include "cluster/replica.h"
#include "cluster/transport.h"
#include "env/env.h"

namespace keel::cluster {

struct Member {
  std::string name;
  env::Address peer_address;
  env::Address client_address;
};

struct NodeConfig {
  uint64_t id = 0;
  std::map<uint64_t, Member> members;  // every voter, this node included
  ReplicaOptions replica;              // id and voters are filled in from the above
  ReplicaObserver* observer = nullptr;
  size_t client_connections_max = 256;
};

// Encodes PeerMessage {partition, m} at `buffer[at]` (grown as needed, never shrunk), byte for byte
// as PeerMessage::SerializeAsString would, without copying `m` into a wrapper. Returns the encoding
// (valid until `buffer` changes).
ByteView encode_peer_message(uint32_t partition, const raft::Message& m, Bytes& buffer,
                             size_t at = 0);
// Decodes what encode_peer_message encodes, parsing the Raft message into `m` (which may be
// reused: its entry objects stay allocated). False for anything else, including a
// PeerMessage laid out otherwise (PeerMessage::ParseFromArray decides those).
bool decode_peer_message(ByteView bytes, uint32_t& partition, raft::Message& m);

class Node final : public env::Process {
 public:
  Node(env::Env& env, NodeConfig config);
  ~Node() override;

  const absl::Status& health() const;
  // Null when the replica failed to open.
  Replica* replica() { return replica_.get(); }
  const PeerTransport& transport() const { return *transport_; }

 private:
  struct ClientConn {
    std::unique_ptr<env::Stream> stream;
    FrameDecoder decoder;
  };

  void on_peer_message(const std::string& from, size_t peer, ByteView payload);
  // `ok`: the payload decoded, for this partition.
  void handle_peer_message(const std::string& from, size_t peer, bool ok, raft::Message& m);
  void send_raft(const raft::Message& m);
  void accept_client(std::unique_ptr<env::Stream> stream);
  void on_client_data(uint64_t conn, ByteView bytes);
  void handle_client(uint64_t conn, const ClientRequest& request);
  void reply(uint64_t conn, const ClientResponse& response);
  void drop_client(uint64_t conn);

  env::Env& env_;
  NodeConfig config_;
  struct Peer {
    std::string name;
    std::optional<size_t> number;  // in transport_, when it is a peer there
  };
  std::map<uint64_t, Peer> peers_;  // id -> member name and peer number
  std::vector<uint64_t> peer_ids_;  // peer number -> member id
  std::unique_ptr<PeerTransport> transport_;
  std::unique_ptr<Replica> replica_;
  absl::Status open_status_;
  std::unique_ptr<env::Listener> client_listener_;
  std::map<uint64_t, ClientConn> clients_;
  uint64_t next_client_ = 0;
  std::vector<std::unique_ptr<env::Stream>> graveyard_;
  env::Timer reaper_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  Bytes send_buffer_;  // send_raft's encoding, kept to reuse its allocation
  std::unique_ptr<raft::Message> peer_message_;  // on_peer_message's, kept likewise
};

}  // namespace keel::cluster
