#include "cluster/node.h"

#include <fmt/format.h>

#include <cstring>

#include "base/check.h"

namespace keel::cluster {
namespace {

// Appends `v` as a protobuf varint at `p`; returns the byte after it.
uint8_t* put_varint(uint64_t v, uint8_t* p) {
  for (; v >= 0x80; v >>= 7) *p++ = uint8_t((v & 0x7f) | 0x80);
  *p++ = uint8_t(v);
  return p;
}

// Reads a varint of at most 5 bytes whose value fits 32 bits; null if there is none.
const uint8_t* get_varint32(const uint8_t* p, const uint8_t* end, uint32_t& v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 35 && p < end; shift += 7) {
    const uint8_t b = *p++;
    x |= uint64_t(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      if (x > UINT32_MAX) return nullptr;
      v = uint32_t(x);
      return p;
    }
  }
  return nullptr;
}

}  // namespace

bool decode_peer_message(ByteView bytes, uint32_t& partition, raft::Message& m) {
  const uint8_t* p = bytes.data();
  const uint8_t* const end = p + bytes.size();
  partition = 0;
  if (p < end && *p == uint8_t(PeerMessage::kPartitionFieldNumber << 3)) {
    p = get_varint32(p + 1, end, partition);
    if (p == nullptr) return false;
  }
  if (p == end || *p != uint8_t((PeerMessage::kMessageFieldNumber << 3) | 2)) return false;
  uint32_t size = 0;
  p = get_varint32(p + 1, end, size);
  if (p == nullptr || size != size_t(end - p)) return false;
  return m.ParseFromArray(p, int(size));
}

ByteView encode_peer_message(uint32_t partition, const raft::Message& m, Bytes& buffer, size_t at) {
  // Field by field, so that `m` (entries and all) is not copied into a wrapper first: what
  // PeerMessage::SerializeAsString would produce (proto3 omits a zero partition).
  uint8_t header[1 + 5 + 1 + 10];
  uint8_t* p = header;
  if (partition != 0) {
    *p++ = uint8_t(PeerMessage::kPartitionFieldNumber << 3);  // varint
    p = put_varint(partition, p);
  }
  *p++ = uint8_t((PeerMessage::kMessageFieldNumber << 3) | 2);  // length-delimited
  // ByteSizeLong caches the sizes the serialization below relies on; one pass each.
  const size_t size = m.ByteSizeLong();
  p = put_varint(size, p);
  const size_t header_bytes = size_t(p - header);
  // Grown, never shrunk: growing zero-fills what the serialization then overwrites.
  if (buffer.size() < at + header_bytes + size) buffer.resize(at + header_bytes + size);
  std::memcpy(buffer.data() + at, header, header_bytes);
  m.SerializeWithCachedSizesToArray(buffer.data() + at + header_bytes);
  return ByteView(buffer.data() + at, header_bytes + size);
}

Node::Node(env::Env& env, NodeConfig config)
    : env_(env), config_(std::move(config)), reaper_(env.clock()) {
  KEEL_CHECK(config_.members.contains(config_.id), "node {} not a member", config_.id);
  std::map<std::string, env::Address> peers;
  std::map<std::string, uint64_t> ids;  // member name -> id
  std::vector<uint64_t> voters;
  for (auto& [id, m] : config_.members) {
    ids[m.name] = id;
    peers[m.name] = m.peer_address;
    voters.push_back(id);
  }
  const Member& self = config_.members.at(config_.id);
  transport_ = std::make_unique<PeerTransport>(
      env_, self.name, peers, [this](const std::string& from, size_t peer, ByteView payload) {
        on_peer_message(from, peer, payload);
      });
  // Peers by number, both ways, so that messages need no lookup by name.
  for (auto& [id, m] : config_.members) peers_[id] = {m.name, transport_->peer(m.name)};
  for (auto& [name, id] : ids) {
    if (auto number = transport_->peer(name)) {
      if (peer_ids_.size() <= *number) peer_ids_.resize(*number + 1);
      peer_ids_[*number] = id;
    }
  }
  transport_->set_unreachable_handler([this](size_t peer) {
    if (replica_ != nullptr && peer < peer_ids_.size())
      replica_->report_unreachable(peer_ids_[peer]);
  });

  ReplicaOptions options = config_.replica;
  options.id = config_.id;
  options.voters = voters;
  auto replica = Replica::open(
      env_, options, [this](const raft::Message& m) { send_raft(m); }, config_.observer);
  if (replica.ok()) {
    replica_ = *std::move(replica);
  } else {
    open_status_ = replica.status();
    env_.trace().event("node.replica_open_failed", open_status_.ToString());
  }
  if (auto st = transport_->start(self.peer_address); !st.ok()) {
    env_.trace().event("node.listen_failed", st.ToString());
    if (open_status_.ok()) open_status_ = st;
  }
  auto listener = env_.network().listen(
      self.client_address, [this](std::unique_ptr<env::Stream> s) { accept_client(std::move(s)); });
  if (listener.ok()) {
    client_listener_ = *std::move(listener);
  } else {
    env_.trace().event("node.listen_failed", listener.status().ToString());
    if (open_status_.ok()) open_status_ = listener.status();
  }
}

Node::~Node() { *alive_ = false; }

const absl::Status& Node::health() const {
  if (!open_status_.ok() || replica_ == nullptr) return open_status_;
  return replica_->health();
}

void Node::on_peer_message(const std::string& from, size_t peer, ByteView payload) {
  // The message is reused from frame to frame, so that parsing finds its entry objects
  // allocated already (taken, so that a nested call would just use a fresh one).
  std::unique_ptr<raft::Message> m = std::move(peer_message_);
  if (m == nullptr) m = std::make_unique<raft::Message>();
  uint32_t partition = 0;
  bool ok = decode_peer_message(payload, partition, *m);
  if (!ok) {
    // Another layout of a PeerMessage (or none): the general parser decides.
    PeerMessage pm;
    ok = pm.ParseFromArray(payload.data(), int(payload.size()));
    partition = pm.partition();
    m->Swap(pm.mutable_message());
  }
  handle_peer_message(from, peer, ok && partition == config_.replica.partition, *m);
  peer_message_ = std::move(m);
}

void Node::handle_peer_message(const std::string& from, size_t peer, bool ok, raft::Message& m) {
  if (!ok) {
    env_.trace().event("node.bad_peer_message", from);
    return;
  }
  // The sender must be who the stream's hello said it was.
  if (peer >= peer_ids_.size() || m.from() != peer_ids_[peer]) {
    env_.trace().event("node.bad_peer_message", fmt::format("{} claims {}", from, m.from()));
    return;
  }
  if (replica_ != nullptr) replica_->step(std::move(m));
}

void Node::send_raft(const raft::Message& m) {
  auto it = peers_.find(m.to());
  KEEL_CHECK(it != peers_.end(), "message to unknown node {}", m.to());
  // The buffer is reused from send to send (taken, so that a nested send would just use a
  // fresh one).
  Bytes buffer = std::move(send_buffer_);
  // After room for the frame header: the transport frames it in place.
  const ByteView bytes =
      encode_peer_message(config_.replica.partition, m, buffer, kFrameHeaderBytes);
  if (it->second.number) {
    transport_->send_frame(*it->second.number,
                           std::span<uint8_t>(buffer.data(), kFrameHeaderBytes + bytes.size()));
  } else {
    transport_->send(it->second.name, bytes);  // not a peer: fails there, as it should
  }
  send_buffer_ = std::move(buffer);
}

void Node::accept_client(std::unique_ptr<env::Stream> stream) {
  if (clients_.size() >= config_.client_connections_max) {
    stream->close();
    return;
  }
  const uint64_t id = next_client_++;
  ClientConn& c = clients_[id];
  c.stream = std::move(stream);
  c.stream->set_handlers({
      .on_open = [] {},
      .on_data = [this, id](ByteView bytes) { on_client_data(id, bytes); },
      .on_close = [this, id](absl::Status) { drop_client(id); },
  });
}

void Node::on_client_data(uint64_t conn, ByteView bytes) {
  auto it = clients_.find(conn);
  if (it == clients_.end()) return;
  it->second.decoder.feed_in_place(bytes);  // every early return below drops the decoder
  for (;;) {
    auto frame = it->second.decoder.next_view();
    if (!frame.ok() || (frame->has_value() && (*frame)->type != FrameType::kClient)) {
      env_.trace().event("node.bad_client_frame",
                         frame.ok() ? "unexpected frame type" : frame.status().ToString());
      return drop_client(conn);
    }
    if (!frame->has_value()) return;
    ClientRequest request;
    if (!request.ParseFromArray((*frame)->payload.data(), int((*frame)->payload.size()))) {
      env_.trace().event("node.bad_client_frame", "undecodable request");
      return drop_client(conn);
    }
    handle_client(conn, request);
    if (!clients_.contains(conn)) return;
  }
}

void Node::handle_client(uint64_t conn, const ClientRequest& request) {
  ClientResponse response;
  response.set_id(request.id());
  if (replica_ == nullptr) {
    response.set_error(UNAVAILABLE);
    response.set_error_message(open_status_.ToString());
    return reply(conn, response);
  }
  if (request.has_produce()) {
    std::weak_ptr<bool> alive = alive_;
    replica_->produce(as_bytes(request.produce().batch()), request.produce().acks_all(),
                      [this, alive, conn, id = request.id()](ProduceResult r) {
                        if (alive.expired()) return;
                        ClientResponse resp;
                        resp.set_id(id);
                        resp.set_error(r.error);
                        resp.set_error_message(r.message);
                        resp.set_leader_hint(r.leader_hint);
                        resp.set_base_offset(r.base_offset);
                        reply(conn, resp);
                      });
    return;
  }
  if (request.has_fetch()) {
    const size_t max_bytes = std::min<size_t>(request.fetch().max_bytes(), 4u << 20);
    FetchResult r = replica_->fetch(request.fetch().offset(), std::max<size_t>(max_bytes, 1));
    response.set_error(r.error);
    response.set_error_message(r.message);
    response.set_leader_hint(r.leader_hint);
    response.set_high_watermark(r.high_watermark);
    response.set_log_start(r.log_start);
    response.set_batches(std::string(as_chars(r.batches)));
    return reply(conn, response);
  }
  response.set_error(INVALID_REQUEST);
  response.set_error_message("empty request");
  reply(conn, response);
}

void Node::reply(uint64_t conn, const ClientResponse& response) {
  auto it = clients_.find(conn);
  if (it == clients_.end()) return;
  const std::string bytes = response.SerializeAsString();
  Bytes frame;
  encode_frame(FrameType::kClient, as_bytes(bytes), frame);
  if (!it->second.stream->send(frame).ok()) drop_client(conn);
}

void Node::drop_client(uint64_t conn) {
  auto it = clients_.find(conn);
  if (it == clients_.end()) return;
  // Possibly inside the stream's own callback: close now, destroy from a later event.
  it->second.stream->close();
  graveyard_.push_back(std::move(it->second.stream));
  clients_.erase(it);
  if (!reaper_.armed()) reaper_.start(env::Nanos(0), [this] { graveyard_.clear(); });
}

}  // namespace keel::cluster
