// TcpNetwork: env::Network over real, non-blocking TCP sockets on an EventLoop.
//
// What it adds to env::Network's contract (see env/network.h):
// - Hosts are numeric IPv4 or IPv6 addresses ("127.0.0.1", "::1"); "localhost" means
//   127.0.0.1 and "" means every local address (listen only). No DNS: a lookup would block.
// - Every socket is non-blocking, close-on-exec, TCP_NODELAY. Sends made during one loop
//   iteration are written together at the end of it (one writev), then on EPOLLOUT as the
//   kernel buffer drains.
// - on_close(OkStatus) when the peer closed in order (EOF); on_close(Unavailable) for a
//   refused or failed connect, a reset, or any other socket error, with the errno text;
//   on_close(DeadlineExceeded) for a connect that got no answer within connect_timeout.
// - close() (and destroying a stream) is an orderly close: bytes already accepted by send()
//   are still written, then FIN, then the socket lingers reading (and discarding) until the
//   peer closes too or linger_timeout passes, so unread incoming bytes never turn the close
//   into a reset that could destroy data the peer has not read yet. No callback runs after
//   close(); the lingering is invisible to the caller.
// - Limits: accepted streams alive per listener, lingering sockets, bytes read per readiness
//   event (fairness), send queue (env::Stream::kSendBufferBytesMax).
//
// Streams and listeners may outlive the TcpNetwork that made them, but not the EventLoop.
#pragma once

#include <chrono>
#include <memory>

#include "env/network.h"
#include "net/event_loop.h"

namespace keel::net {

struct TcpOptions {
  // Beyond this many live accepted streams, a listener accepts and immediately closes.
  size_t accepted_streams_per_listener_max = 4096;
  // Closed streams still flushing or waiting for the peer's FIN; beyond it, closes are abrupt.
  size_t lingering_sockets_max = 1024;
  std::chrono::nanoseconds linger_timeout = std::chrono::seconds(10);
  // Bytes read from one socket per readiness event before the loop serves others.
  size_t read_bytes_per_event_max = 1 << 20;
  // After EMFILE/ENFILE on accept, the listener pauses this long instead of spinning.
  std::chrono::nanoseconds accept_pause = std::chrono::milliseconds(100);
  int listen_backlog = 1024;
  // An outgoing connect not established by then ends with on_close(DeadlineExceeded).
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(10);
};

namespace internal {
struct NetCore;
}

class TcpNetwork final : public env::Network {
 public:
  explicit TcpNetwork(EventLoop& loop, TcpOptions options = {});
  ~TcpNetwork() override;
  TcpNetwork(const TcpNetwork&) = delete;
  TcpNetwork& operator=(const TcpNetwork&) = delete;

  absl::StatusOr<std::unique_ptr<env::Listener>> listen(const env::Address& at,
                                                        AcceptFn on_accept) override;
  std::unique_ptr<env::Stream> connect(const env::Address& to) override;

  // Closed sockets still flushing or lingering for the peer's FIN (for tests and metrics).
  size_t lingering_sockets() const;

 private:
  std::shared_ptr<internal::NetCore> core_;
};

}  // namespace keel::net
