// Network: listen / accept / connect, and ordered, reliable byte streams between endpoints.
// Peer-to-peer and client connections both go through it.
//
// Contract:
// - Every callback runs later, on the node's event loop; never inside the call that caused
//   it. Destroying a Stream or Listener guarantees none of its callbacks runs afterwards.
//   A Stream must not be destroyed inside one of its own callbacks: close() it there, and
//   destroy it from a later event.
// - Streams are TCP-like: bytes arrive in order, without gaps or duplicates, for as long as
//   the stream lives. Across streams there is no ordering: a message sent on an old stream
//   may arrive after one sent on a newer stream to the same peer. A stream may be reset at
//   any time (on_close with an error); bytes sent but not yet delivered are then lost.
// - on_data may deliver any split of the byte sequence (one byte, many frames, a partial
//   frame). Receivers must frame the bytes themselves.
// - Errors are values: send() on a closed stream, or beyond the send buffer limit, returns
//   an error; it never blocks.
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/bytes.h"

namespace keel::env {

struct Address {
  std::string host;  // "127.0.0.1" on real IO; a node name such as "n1" in simulation
  uint16_t port = 0;

  std::string to_string() const { return host + ":" + std::to_string(port); }
  auto operator<=>(const Address&) const = default;
};

class Stream {
 public:
  struct Handlers {
    // Outgoing streams only: the connection is established; send() may be called before.
    absl::AnyInvocable<void()> on_open;
    // Bytes arrived, in order.
    absl::AnyInvocable<void(ByteView)> on_data;
    // The stream ended: OkStatus for an orderly close by the peer, an error for a failed
    // connect or a reset. No callback follows it.
    absl::AnyInvocable<void(absl::Status)> on_close;
  };

  // Maximum bytes queued by send() and not yet handed to the network.
  static constexpr size_t kSendBufferBytesMax = 64 << 20;

  virtual ~Stream() = default;  // closes the stream if still open

  // Must be called before returning to the event loop from the callback or call that
  // produced this stream; nothing is delivered until then.
  virtual void set_handlers(Handlers handlers) = 0;

  // Queues bytes for delivery in order. Fails if the stream is closed or if the queued
  // bytes would exceed kSendBufferBytesMax.
  [[nodiscard]] virtual absl::Status send(ByteView bytes) = 0;

  // Bytes accepted by send() and not yet written to the network: a backpressure signal.
  virtual size_t send_queue_bytes() const = 0;

  // Closes the stream: the peer sees an orderly close after the bytes already sent. No
  // callback runs afterwards. Idempotent.
  virtual void close() = 0;

  virtual const Address& peer() const = 0;
};

class Listener {
 public:
  virtual ~Listener() = default;  // stops listening
  virtual Address local_address() const = 0;
};

class Network {
 public:
  using AcceptFn = absl::AnyInvocable<void(std::unique_ptr<Stream>)>;

  virtual ~Network() = default;

  // Listens at `at` (port 0: any free port; see Listener::local_address). Each accepted
  // stream is handed to `on_accept`, which must set its handlers.
  virtual absl::StatusOr<std::unique_ptr<Listener>> listen(const Address& at,
                                                           AcceptFn on_accept) = 0;

  // Starts connecting to `to` and returns the stream at once; set its handlers. It reports
  // on_open when established, or on_close with an error if the connection fails.
  virtual std::unique_ptr<Stream> connect(const Address& to) = 0;
};

}  // namespace keel::env
