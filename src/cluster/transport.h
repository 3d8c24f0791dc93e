// PeerTransport: best-effort message passing between the nodes of a cluster, over
// env::Network streams, with framing (cluster/frame.h), reconnection and backoff.
//
// Contract:
// - send(to, payload) never blocks and never fails loudly: messages are delivered in order
//   per connection, at most once, or dropped (peer down, connection reset, queue full).
//   Raft tolerates loss, duplication across reconnections and reordering across
//   connections; nothing above this layer may assume more.
// - Each node dials each peer for its own sends; accepted streams only receive. A stream's
//   first frame names the sender (kHello); a stream that sends anything else first, a bad
//   frame, or a name that is not a peer is closed, and only that stream is affected.
// - Reconnects back off exponentially (kBackoffMin..kBackoffMax) with seeded jitter.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "cluster/frame.h"
#include "env/env.h"

namespace keel::cluster {

class PeerTransport {
 public:
  // `from` is the sender's name and `peer` its number (see peer()). `payload` points into the
  // receiving stream's buffer: it is valid during the call, as long as the handler drops no
  // stream before it is done reading it.
  using Handler = absl::AnyInvocable<void(const std::string& from, size_t peer, ByteView payload)>;

  static constexpr env::Nanos kBackoffMin = std::chrono::milliseconds(10);
  static constexpr env::Nanos kBackoffMax = std::chrono::milliseconds(500);
  // Bytes queued for one peer while not connected or while its stream is backed up; beyond
  // it, new messages to that peer are dropped.
  static constexpr size_t kQueueBytesMax = 8u << 20;
  static constexpr size_t kIncomingStreamsMax = 64;

  PeerTransport(env::Env& env, std::string self, std::map<std::string, env::Address> peers,
                Handler on_message);
  ~PeerTransport();
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // Listens for peers at `at`.
  [[nodiscard]] absl::Status start(const env::Address& at);

  void send(const std::string& to, ByteView payload);
  // The number of peer `name` (peers are numbered from 0 in name order), if it is one: send
  // to it by number without looking the name up.
  std::optional<size_t> peer(const std::string& name) const;
  void send(size_t to, ByteView payload);
  // The same, with the payload already in place in a frame: `frame` is kFrameHeaderBytes of
  // room, then the payload (seal_frame writes the header there). Saves copying the payload.
  void send_frame(size_t to, std::span<uint8_t> frame);
  // Called with a peer's number when its outgoing stream closes or fails to open: whatever
  // was sent to it and not yet delivered may be lost (Raft's report_unreachable).
  void set_unreachable_handler(absl::AnyInvocable<void(size_t peer)> fn) {
    on_unreachable_ = std::move(fn);
  }

  struct Stats {
    uint64_t sent = 0, dropped = 0, received = 0, connects = 0, bad_frames = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Outgoing {
    env::Address address;
    std::unique_ptr<env::Stream> stream;
    bool open = false;
    Bytes pending;  // frames waiting for the stream to open
    env::Nanos backoff = kBackoffMin;
    std::unique_ptr<env::Timer> retry;
  };
  struct Incoming {
    std::unique_ptr<env::Stream> stream;
    FrameDecoder decoder;
    std::string from;  // empty until the hello frame arrived
    size_t peer = 0;   // from's number
  };

  void send(Outgoing& out, ByteView payload);
  void write_frame(Outgoing& out, ByteView frame);
  void dial(const std::string& peer);
  void on_outgoing_closed(const std::string& peer, absl::Status status);
  void accept(std::unique_ptr<env::Stream> stream);
  void on_incoming_data(uint64_t id, ByteView bytes);
  void drop_incoming(uint64_t id, const absl::Status& why);

  env::Env& env_;
  std::string self_;
  Handler on_message_;
  absl::AnyInvocable<void(size_t peer)> on_unreachable_;
  std::unique_ptr<env::Listener> listener_;
  std::map<std::string, Outgoing> outgoing_;
  std::vector<Outgoing*> peers_;  // outgoing_ by peer number (its nodes never move)
  std::map<uint64_t, Incoming> incoming_;
  std::vector<std::unique_ptr<env::Stream>> graveyard_;  // closed, destroyed by reaper_
  env::Timer reaper_;
  uint64_t next_incoming_id_ = 0;
  Stats stats_;
  Bytes frame_buffer_;  // send()'s encoding, kept to reuse its allocation
};

}  // namespace keel::cluster
