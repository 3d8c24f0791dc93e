#include "cluster/transport.h"

#include <fmt/format.h>

#include "base/check.h"

namespace keel::cluster {

PeerTransport::PeerTransport(env::Env& env, std::string self,
                             std::map<std::string, env::Address> peers, Handler on_message)
    : env_(env), self_(std::move(self)), on_message_(std::move(on_message)), reaper_(env.clock()) {
  for (auto& [name, address] : peers) {
    if (name == self_) continue;
    Outgoing& out = outgoing_[name];
    out.address = address;
    out.retry = std::make_unique<env::Timer>(env_.clock());
  }
  for (auto& [name, out] : outgoing_) peers_.push_back(&out);
}

std::optional<size_t> PeerTransport::peer(const std::string& name) const {
  auto it = outgoing_.find(name);
  if (it == outgoing_.end()) return std::nullopt;
  return size_t(std::distance(outgoing_.begin(), it));
}

PeerTransport::~PeerTransport() = default;

absl::Status PeerTransport::start(const env::Address& at) {
  auto listener =
      env_.network().listen(at, [this](std::unique_ptr<env::Stream> s) { accept(std::move(s)); });
  if (!listener.ok()) return listener.status();
  listener_ = std::move(*listener);
  for (auto& [name, out] : outgoing_) dial(name);
  return absl::OkStatus();
}

void PeerTransport::dial(const std::string& peer) {
  Outgoing& out = outgoing_.at(peer);
  out.open = false;
  out.stream = env_.network().connect(out.address);
  Bytes hello;
  encode_frame(FrameType::kHello, as_bytes(self_), hello);
  // Queued before open: the stream sends it first once established.
  (void)out.stream->send(hello);
  out.stream->set_handlers({
      .on_open =
          [this, peer] {
            Outgoing& o = outgoing_.at(peer);
            o.open = true;
            o.backoff = kBackoffMin;
            stats_.connects++;
            env_.trace().event("peer.connected", peer);
            if (!o.pending.empty()) {
              if (!o.stream->send(o.pending).ok()) stats_.dropped++;
              o.pending.clear();
            }
          },
      .on_data = [](ByteView) {},  // outgoing streams only send
      .on_close = [this, peer](absl::Status status) { on_outgoing_closed(peer, status); },
  });
}

void PeerTransport::on_outgoing_closed(const std::string& peer, absl::Status status) {
  Outgoing& out = outgoing_.at(peer);
  if (out.open)
    env_.trace().event("peer.disconnected", fmt::format("{} {}", peer, status.ToString()));
  out.open = false;
  out.pending.clear();  // stale by the time a new stream opens; Raft resends what matters
  if (on_unreachable_) on_unreachable_(*this->peer(peer));
  // Jittered exponential backoff: [backoff/2, backoff].
  const int64_t ns = out.backoff.count();
  const env::Nanos delay(env_.random().range(ns / 2, ns));
  out.backoff = std::min(out.backoff * 2, kBackoffMax);
  // The closed stream stays in `out.stream` (we are inside its callback) and is replaced,
  // hence destroyed, when the retry fires.
  out.retry->start(delay, [this, peer] { dial(peer); });
}

void PeerTransport::send(const std::string& to, ByteView payload) {
  auto it = outgoing_.find(to);
  KEEL_CHECK(it != outgoing_.end(), "send to unknown peer {}", to);
  send(it->second, payload);
}

void PeerTransport::send(size_t to, ByteView payload) {
  KEEL_CHECK(to < peers_.size(), "send to unknown peer number {}", to);
  send(*peers_[to], payload);
}

void PeerTransport::send(Outgoing& out, ByteView payload) {
  // Rare but legal: the transport is best-effort, so a message may simply be lost.
  if (KEEL_BUGGIFY(env_, "transport.drop_message")) {
    stats_.dropped++;
    return;
  }
  // Encoded into a buffer kept from send to send (taken, so that a nested send would just use
  // a fresh one): the stream copies what it is given.
  Bytes frame = std::move(frame_buffer_);
  frame.clear();
  encode_frame(FrameType::kRaft, payload, frame);
  write_frame(out, frame);
  frame_buffer_ = std::move(frame);
}

void PeerTransport::send_frame(size_t to, std::span<uint8_t> frame) {
  KEEL_CHECK(to < peers_.size(), "send to unknown peer number {}", to);
  Outgoing& out = *peers_[to];
  // As in send().
  if (KEEL_BUGGIFY(env_, "transport.drop_message")) {
    stats_.dropped++;
    return;
  }
  seal_frame(FrameType::kRaft, frame);
  write_frame(out, frame);
}

void PeerTransport::write_frame(Outgoing& out, ByteView frame) {
  if (!out.open) {
    if (out.pending.size() + frame.size() > kQueueBytesMax) {
      stats_.dropped++;
    } else {
      out.pending.insert(out.pending.end(), frame.begin(), frame.end());
      stats_.sent++;
    }
  } else if (out.stream->send_queue_bytes() + frame.size() > kQueueBytesMax ||
             !out.stream->send(frame).ok()) {
    stats_.dropped++;
  } else {
    stats_.sent++;
  }
}

void PeerTransport::accept(std::unique_ptr<env::Stream> stream) {
  if (incoming_.size() >= kIncomingStreamsMax) {
    env_.trace().event("peer.refused", "too many incoming streams");
    stream->close();
    return;
  }
  const uint64_t id = next_incoming_id_++;
  Incoming& in = incoming_[id];
  in.stream = std::move(stream);
  in.stream->set_handlers({
      .on_open = [] {},
      .on_data = [this, id](ByteView bytes) { on_incoming_data(id, bytes); },
      .on_close = [this, id](absl::Status status) { drop_incoming(id, status); },
  });
}

void PeerTransport::on_incoming_data(uint64_t id, ByteView bytes) {
  Incoming& in = incoming_.at(id);
  in.decoder.feed_in_place(bytes);  // every early return below drops the decoder
  for (;;) {
    auto frame = in.decoder.next_view();
    if (!frame.ok()) {
      stats_.bad_frames++;
      drop_incoming(id, frame.status());
      return;
    }
    if (!frame->has_value()) return;
    const FrameView& f = **frame;
    if (in.from.empty()) {
      std::string from(as_chars(f.payload));
      if (f.type != FrameType::kHello || !outgoing_.contains(from)) {
        stats_.bad_frames++;
        drop_incoming(id, absl::InvalidArgumentError("peer stream: bad hello"));
        return;
      }
      in.peer = *peer(from);
      in.from = std::move(from);
      continue;
    }
    if (f.type != FrameType::kRaft) {
      stats_.bad_frames++;
      drop_incoming(id, absl::InvalidArgumentError("peer stream: unexpected frame"));
      return;
    }
    stats_.received++;
    // The handler may not destroy this transport; it may send.
    const std::string from = in.from;
    on_message_(from, in.peer, f.payload);
    if (!incoming_.contains(id)) return;
  }
}

void PeerTransport::drop_incoming(uint64_t id, const absl::Status& why) {
  auto it = incoming_.find(id);
  if (it == incoming_.end()) return;
  if (!why.ok()) {
    env_.trace().event("peer.stream_closed", fmt::format("{} {}", it->second.from, why.ToString()));
  }
  // We may be inside this stream's own callback: close it now (no more callbacks), but
  // destroy it only from a later event.
  it->second.stream->close();
  graveyard_.push_back(std::move(it->second.stream));
  incoming_.erase(it);
  if (!reaper_.armed()) reaper_.start(env::Nanos(0), [this] { graveyard_.clear(); });
}

}  // namespace keel::cluster
