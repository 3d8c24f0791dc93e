#include "net/tcp_network.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <string>

#include "base/check.h"

namespace keel::net {
namespace internal {

// Bytes accepted by send() and not yet written, as a queue of chunks. Small sends share a
// chunk, so many tiny messages become one writev.
class SendQueue {
 public:
  static constexpr size_t kChunkBytes = 64 << 10;
  static constexpr int kIovecsPerWriteMax = 64;

  size_t bytes() const { return bytes_; }
  bool empty() const { return bytes_ == 0; }

  void append(ByteView data) {
    if (data.empty()) return;
    if (!chunks_.empty() && chunks_.back().size() + data.size() <= kChunkBytes) {
      chunks_.back().insert(chunks_.back().end(), data.begin(), data.end());
    } else {
      Bytes chunk;
      chunk.reserve(std::max(data.size(), data.size() < kChunkBytes ? kChunkBytes : 0));
      chunk.assign(data.begin(), data.end());
      chunks_.push_back(std::move(chunk));
    }
    bytes_ += data.size();
  }

  // Writes as much as the socket takes. Returns OK when the queue is empty or the socket
  // would block, an errno status on a socket error.
  absl::Status write_to(int fd) {
    while (!empty()) {
      iovec iov[kIovecsPerWriteMax];
      int count = 0;
      size_t offset = front_offset_;
      for (auto it = chunks_.begin(); it != chunks_.end() && count < kIovecsPerWriteMax; ++it) {
        iov[count].iov_base = it->data() + offset;
        iov[count].iov_len = it->size() - offset;
        offset = 0;
        count++;
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = size_t(count);
      // MSG_NOSIGNAL: a reset peer must be an error value, not SIGPIPE.
      const ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return absl::OkStatus();
        return errno_status(errno, "send");
      }
      consume(size_t(n));
    }
    return absl::OkStatus();
  }

  void clear() {
    chunks_.clear();
    front_offset_ = 0;
    bytes_ = 0;
  }

 private:
  void consume(size_t n) {
    KEEL_CHECK_LE(n, bytes_);
    bytes_ -= n;
    while (n > 0) {
      const size_t in_front = chunks_.front().size() - front_offset_;
      if (n < in_front) {
        front_offset_ += n;
        return;
      }
      n -= in_front;
      chunks_.pop_front();
      front_offset_ = 0;
    }
    if (chunks_.empty()) KEEL_CHECK_EQ(bytes_, size_t(0));
  }

  std::deque<Bytes> chunks_;
  size_t front_offset_ = 0;
  size_t bytes_ = 0;
};

class Lingerer;

// What streams, listeners and lingering sockets share; it outlives the TcpNetwork for as
// long as any of them lives.
struct NetCore {
  static constexpr size_t kReadChunkBytes = 64 << 10;

  NetCore(EventLoop& l, const TcpOptions& o) : loop(&l), options(o), read_buffer(kReadChunkBytes) {}
  ~NetCore();

  // Takes over a closed stream's socket: flushes `queue`, sends FIN, waits for the peer's FIN
  // (unless `peer_eof_seen`), then closes.
  void linger(int fd, SendQueue queue, bool peer_eof_seen);
  void finish_lingering(uint64_t id);

  EventLoop* loop;
  TcpOptions options;
  // One read buffer per network: on_data's view is valid only during the call, and no
  // callback runs inside another.
  Bytes read_buffer;
  uint64_t next_linger_id = 1;
  std::map<uint64_t, std::unique_ptr<Lingerer>> lingering;
};

namespace {

void close_fd(int fd) {
  // close() may report EINTR/EIO, but the descriptor is released either way on Linux;
  // retrying could close a reused number.
  if (fd >= 0) (void)::close(fd);
}

absl::Status set_nodelay(int fd) {
  const int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return errno_status(errno, "setsockopt(TCP_NODELAY)");
  }
  return absl::OkStatus();
}

struct SockAddr {
  sockaddr_storage storage{};
  socklen_t len = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
};

absl::StatusOr<SockAddr> to_sockaddr(const env::Address& address, bool for_listen) {
  std::string host = address.host;
  if (host == "localhost") host = "127.0.0.1";
  if (host.empty() && for_listen) host = "0.0.0.0";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  SockAddr out;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(address.port);
    out.len = sizeof(sockaddr_in);
    return out;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(address.port);
    out.len = sizeof(sockaddr_in6);
    return out;
  }
  return absl::InvalidArgumentError("not a numeric IP address: '" + address.host + "'");
}

env::Address from_sockaddr(const sockaddr_storage& storage) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (storage.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&storage);
    if (inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text)) == nullptr) return {};
    return env::Address{text, ntohs(v4->sin_port)};
  }
  if (storage.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage);
    if (inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text)) == nullptr) return {};
    return env::Address{text, ntohs(v6->sin6_port)};
  }
  return {};
}

// The pending error of a socket (SO_ERROR), as a Status; OK if none.
absl::Status socket_error(int fd, std::string_view what) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    return errno_status(errno, "getsockopt(SO_ERROR)");
  }
  if (err != 0) return errno_status(err, what);
  return absl::OkStatus();
}

}  // namespace

// A closed stream's socket finishing its orderly close in the background.
class Lingerer final : public EventLoop::Watcher {
 public:
  Lingerer(NetCore* core, uint64_t id, int fd, SendQueue queue, bool peer_eof_seen)
      : core_(core), id_(id), fd_(fd), queue_(std::move(queue)), peer_eof_seen_(peer_eof_seen) {}

  ~Lingerer() override {
    if (watch_) core_->loop->unwatch(*watch_);
    if (timer_) core_->loop->cancel_timer(*timer_);
    close_fd(fd_);
  }

  // Returns false if the socket should simply be closed now.
  bool start() {
    if (queue_.empty() && peer_eof_seen_) return false;  // nothing to send, nothing to wait for
    if (queue_.empty()) shutdown_write();
    auto watch = core_->loop->watch(fd_, interest(), this);
    if (!watch.ok()) return false;
    watch_ = *watch;
    timer_ = core_->loop->add_timer(monotonic_now() + core_->options.linger_timeout, [this] {
      timer_.reset();
      core_->finish_lingering(id_);  // destroys this
    });
    return true;
  }

  void on_ready(uint32_t events) override {
    if (!queue_.empty() && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      if (!queue_.write_to(fd_).ok()) return core_->finish_lingering(id_);
      if (queue_.empty()) {
        if (peer_eof_seen_) return core_->finish_lingering(id_);
        shutdown_write();
      }
      if (!core_->loop->rewatch(*watch_, interest()).ok()) return core_->finish_lingering(id_);
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      // Discards what the peer still sends, until its FIN (done) or an error (done).
      size_t read_total = 0;
      while (read_total < core_->options.read_bytes_per_event_max) {
        const ssize_t n = ::read(fd_, core_->read_buffer.data(), core_->read_buffer.size());
        if (n > 0) {
          read_total += size_t(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        return core_->finish_lingering(id_);  // EOF or error
      }
    }
  }

 private:
  uint32_t interest() const { return queue_.empty() ? EPOLLIN : (EPOLLIN | EPOLLOUT); }
  void shutdown_write() {
    // ENOTCONN etc. only mean the connection is already gone; the read side will notice.
    (void)::shutdown(fd_, SHUT_WR);
  }

  NetCore* core_;
  uint64_t id_;
  int fd_;
  SendQueue queue_;
  bool peer_eof_seen_;
  std::optional<EventLoop::WatchId> watch_;
  std::optional<EventLoop::TimerId> timer_;
};

NetCore::~NetCore() { lingering.clear(); }

void NetCore::linger(int fd, SendQueue queue, bool peer_eof_seen) {
  if (lingering.size() >= options.lingering_sockets_max) {
    close_fd(fd);  // over the limit: an abrupt close rather than unbounded growth
    return;
  }
  const uint64_t id = next_linger_id++;
  auto lingerer = std::make_unique<Lingerer>(this, id, fd, std::move(queue), peer_eof_seen);
  if (!lingerer->start()) return;  // its destructor closes the fd
  lingering.emplace(id, std::move(lingerer));
}

void NetCore::finish_lingering(uint64_t id) { lingering.erase(id); }

}  // namespace internal

namespace {

using internal::NetCore;
using internal::SendQueue;

class TcpStream final : public env::Stream, public EventLoop::Watcher {
 public:
  enum class State { kConnecting, kOpen, kClosed };

  // `slot` (accepted streams only) counts this stream against its listener's limit.
  TcpStream(std::shared_ptr<NetCore> core, env::Address peer, std::shared_ptr<void> slot)
      : core_(std::move(core)), peer_(std::move(peer)), slot_(std::move(slot)) {}

  ~TcpStream() override { close(); }

  // Outgoing: starts a non-blocking connect. Failures are reported later via on_close.
  void start_connect() {
    auto addr = internal::to_sockaddr(peer_, /*for_listen=*/false);
    if (!addr.ok()) return fail_later(addr.status());
    fd_ = socket(addr->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail_later(errno_status(errno, "socket"));
    if (auto s = internal::set_nodelay(fd_); !s.ok()) return fail_later(s);
    int rc;
    do {
      rc = ::connect(fd_, addr->get(), addr->len);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno != EINPROGRESS) {
      return fail_later(errno_status(errno, "connect to " + peer_.to_string()));
    }
    state_ = State::kConnecting;
    if (auto s = watch(EPOLLOUT); !s.ok()) return fail_later(s);
    // rc == 0 (connected at once) is reported through EPOLLOUT like the usual case.
    // Without a deadline, a silently dropped SYN would keep us connecting for minutes.
    // Every way out of kConnecting cancels the timer (see unwatch()), so `this` is valid.
    const Nanos timeout = core_->options.connect_timeout;
    connect_timer_ = core_->loop->add_timer(monotonic_now() + timeout, [this, timeout] {
      connect_timer_.reset();
      fail(absl::DeadlineExceededError(
          fmt::format("connect to {}: no answer within {} ms", peer_.to_string(),
                      std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count())));
    });
  }

  // Accepted: the socket is connected already.
  absl::Status start_accepted(int fd) {
    fd_ = fd;
    state_ = State::kOpen;
    return watch(EPOLLIN);
  }

  void set_handlers(Handlers handlers) override {
    handlers_ = std::move(handlers);
    handlers_set_ = true;
  }

  absl::Status send(ByteView bytes) override {
    if (state_ == State::kClosed) {
      return absl::FailedPreconditionError("send on closed stream to " + peer_.to_string());
    }
    if (queue_.bytes() + bytes.size() > kSendBufferBytesMax) {
      return absl::ResourceExhaustedError("send buffer full for stream to " + peer_.to_string());
    }
    queue_.append(bytes);
    if (state_ == State::kOpen && !flush_scheduled_ && !want_write_ && !queue_.empty()) {
      // Written at the end of this loop iteration, together with whatever else is sent.
      flush_scheduled_ = true;
      core_->loop->run_soon([alive = std::weak_ptr<bool>(alive_), this] {
        if (alive.expired()) return;
        flush_scheduled_ = false;
        if (state_ == State::kOpen) flush();
      });
    }
    return absl::OkStatus();
  }

  size_t send_queue_bytes() const override { return queue_.bytes(); }

  void close() override {
    if (!alive_) return;
    alive_.reset();  // every pending callback sees this and does nothing
    const State state = state_;
    state_ = State::kClosed;
    unwatch();
    if (fd_ < 0) return;
    const int fd = std::exchange(fd_, -1);
    if (state == State::kConnecting && queue_.empty()) {
      internal::close_fd(fd);
      return;
    }
    core_->linger(fd, std::move(queue_), /*peer_eof_seen=*/false);
    queue_.clear();
  }

  const env::Address& peer() const override { return peer_; }

  void on_ready(uint32_t events) override {
    std::weak_ptr<bool> alive = alive_;
    if (state_ == State::kConnecting) return on_connect_ready();
    if (state_ != State::kOpen) return;
    if (events & EPOLLOUT) {
      flush();
      if (alive.expired() || state_ != State::kOpen) return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable();
  }

 private:
  // Calls a handler; returns whether the stream may go on (not closed or destroyed by it).
  template <typename F>
  bool deliver(F&& call) {
    KEEL_CHECK(handlers_set_,
               "stream to {} has no handlers (set them in the callback that "
               "produced it)",
               peer_.to_string());
    std::weak_ptr<bool> alive = alive_;
    call();
    return !alive.expired() && state_ == State::kOpen;
  }

  void on_connect_ready() {
    cancel_connect_timer();
    absl::Status error = internal::socket_error(fd_, "connect to " + peer_.to_string());
    if (!error.ok()) return fail(error);
    state_ = State::kOpen;
    if (auto s = rewatch(); !s.ok()) return fail(s);
    if (!deliver([&] {
          if (handlers_.on_open) handlers_.on_open();
        })) {
      return;
    }
    if (!queue_.empty()) flush();
  }

  void on_readable() {
    size_t read_total = 0;
    while (read_total < core_->options.read_bytes_per_event_max) {
      Bytes& buffer = core_->read_buffer;
      const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
      if (n > 0) {
        read_total += size_t(n);
        if (!deliver([&] { handlers_.on_data(ByteView(buffer.data(), size_t(n))); })) return;
        continue;
      }
      if (n == 0) return end_of_stream();
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return fail(errno_status(errno, "read from " + peer_.to_string()));
    }
  }

  // Writes what the socket takes; asks for EPOLLOUT while bytes remain.
  void flush() {
    if (auto s = queue_.write_to(fd_); !s.ok()) {
      return fail(absl::Status(s.code(), peer_.to_string() + ": " + std::string(s.message())));
    }
    const bool want_write = !queue_.empty();
    if (want_write != want_write_) {
      want_write_ = want_write;
      if (auto s = rewatch(); !s.ok()) return fail(s);
    }
  }

  // The peer closed in order. Whatever we still queued is flushed in the background (the
  // peer may only have closed its sending side).
  void end_of_stream() {
    alive_.reset();
    state_ = State::kClosed;
    unwatch();
    core_->linger(std::exchange(fd_, -1), std::move(queue_), /*peer_eof_seen=*/true);
    queue_.clear();
    KEEL_CHECK(handlers_set_);
    auto on_close = std::move(handlers_.on_close);
    if (on_close) on_close(absl::OkStatus());
  }

  // Ends the stream with an error: the socket is closed at once, queued bytes dropped.
  void fail(absl::Status status) {
    KEEL_CHECK(!status.ok());
    alive_.reset();
    state_ = State::kClosed;
    unwatch();
    internal::close_fd(std::exchange(fd_, -1));
    queue_.clear();
    KEEL_CHECK(handlers_set_);
    auto on_close = std::move(handlers_.on_close);
    if (on_close) on_close(std::move(status));  // may destroy this: nothing after
  }

  // For failures inside a call (connect): on_close must not run inside it.
  void fail_later(absl::Status status) {
    unwatch();
    internal::close_fd(std::exchange(fd_, -1));
    state_ = State::kClosed;
    core_->loop->run_soon([alive = std::weak_ptr<bool>(alive_), this, status] {
      if (alive.expired()) return;
      alive_.reset();
      KEEL_CHECK(handlers_set_);
      auto on_close = std::move(handlers_.on_close);
      if (on_close) on_close(status);
    });
  }

  uint32_t interest() const {
    if (state_ == State::kConnecting) return EPOLLOUT;
    return want_write_ ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  }
  absl::Status watch(uint32_t events) {
    auto id = core_->loop->watch(fd_, events, this);
    if (!id.ok()) return id.status();
    watch_ = *id;
    return absl::OkStatus();
  }
  absl::Status rewatch() { return core_->loop->rewatch(*watch_, interest()); }
  // Every path that ends the stream comes through here.
  void unwatch() {
    if (watch_) core_->loop->unwatch(*watch_);
    watch_.reset();
    cancel_connect_timer();
  }
  void cancel_connect_timer() {
    if (connect_timer_) core_->loop->cancel_timer(*connect_timer_);
    connect_timer_.reset();
  }

  std::shared_ptr<NetCore> core_;
  env::Address peer_;
  std::shared_ptr<void> slot_;
  int fd_ = -1;
  State state_ = State::kClosed;
  std::optional<EventLoop::WatchId> watch_;
  std::optional<EventLoop::TimerId> connect_timer_;
  Handlers handlers_;
  bool handlers_set_ = false;
  SendQueue queue_;
  bool flush_scheduled_ = false;
  bool want_write_ = false;
  // Reset when the stream is closed (by us, the peer, or an error) or destroyed; callbacks
  // queued on the loop hold a weak reference and do nothing once it is gone.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class TcpListener final : public env::Listener, public EventLoop::Watcher {
 public:
  static constexpr int kAcceptsPerEventMax = 64;

  TcpListener(std::shared_ptr<NetCore> core, env::Network::AcceptFn on_accept)
      : core_(std::move(core)), on_accept_(std::move(on_accept)) {}

  ~TcpListener() override {
    alive_.reset();
    if (watch_) core_->loop->unwatch(*watch_);
    if (pause_timer_) core_->loop->cancel_timer(*pause_timer_);
    internal::close_fd(fd_);
  }

  absl::Status start(const env::Address& at) {
    auto addr = internal::to_sockaddr(at, /*for_listen=*/true);
    if (!addr.ok()) return addr.status();
    fd_ = socket(addr->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return errno_status(errno, "socket");
    const int one = 1;
    if (setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
      return errno_status(errno, "setsockopt(SO_REUSEADDR)");
    }
    if (bind(fd_, addr->get(), addr->len) != 0) {
      return errno_status(errno, "bind " + at.to_string());
    }
    if (::listen(fd_, core_->options.listen_backlog) != 0) {
      return errno_status(errno, "listen " + at.to_string());
    }
    internal::SockAddr bound;
    bound.len = sizeof(bound.storage);
    if (getsockname(fd_, reinterpret_cast<sockaddr*>(&bound.storage), &bound.len) != 0) {
      return errno_status(errno, "getsockname");
    }
    local_ = internal::from_sockaddr(bound.storage);
    auto id = core_->loop->watch(fd_, EPOLLIN, this);
    if (!id.ok()) return id.status();
    watch_ = *id;
    return absl::OkStatus();
  }

  env::Address local_address() const override { return local_; }

  void on_ready(uint32_t events) override {
    std::weak_ptr<bool> alive = alive_;
    for (int i = 0; i < kAcceptsPerEventMax; i++) {
      sockaddr_storage from{};
      socklen_t from_len = sizeof(from);
      const int fd =
          accept4(fd_, reinterpret_cast<sockaddr*>(&from), &from_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          return pause();
        }
        return;  // EAGAIN, or an error that the next readiness event will retry
      }
      accept_one(fd, from);
      if (alive.expired()) return;  // on_accept destroyed the listener
    }
  }

 private:
  void accept_one(int fd, const sockaddr_storage& from) {
    // The slot's use count is the number of live accepted streams (plus ours).
    if (size_t(slot_.use_count() - 1) >= core_->options.accepted_streams_per_listener_max) {
      internal::close_fd(fd);
      return;
    }
    if (!internal::set_nodelay(fd).ok()) {
      internal::close_fd(fd);
      return;
    }
    auto stream = std::make_unique<TcpStream>(core_, internal::from_sockaddr(from), slot_);
    if (!stream->start_accepted(fd).ok()) return;  // the stream's destructor closes fd
    on_accept_(std::move(stream));
  }

  // Out of descriptors: stop accepting for a while instead of spinning on a level-triggered
  // readable listener.
  void pause() {
    if (pause_timer_ || !core_->loop->rewatch(*watch_, 0).ok()) return;
    pause_timer_ = core_->loop->add_timer(monotonic_now() + core_->options.accept_pause, [this] {
      pause_timer_.reset();
      (void)core_->loop->rewatch(*watch_, EPOLLIN);
    });
  }

  std::shared_ptr<NetCore> core_;
  env::Network::AcceptFn on_accept_;
  int fd_ = -1;
  env::Address local_;
  std::optional<EventLoop::WatchId> watch_;
  std::optional<EventLoop::TimerId> pause_timer_;
  std::shared_ptr<void> slot_ = std::make_shared<int>(0);
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

TcpNetwork::TcpNetwork(EventLoop& loop, TcpOptions options)
    : core_(std::make_shared<NetCore>(loop, options)) {
  KEEL_CHECK(options.read_bytes_per_event_max > 0);
  KEEL_CHECK(options.listen_backlog > 0);
}

TcpNetwork::~TcpNetwork() = default;

absl::StatusOr<std::unique_ptr<env::Listener>> TcpNetwork::listen(const env::Address& at,
                                                                  AcceptFn on_accept) {
  KEEL_CHECK(on_accept != nullptr);
  auto listener = std::make_unique<TcpListener>(core_, std::move(on_accept));
  if (auto s = listener->start(at); !s.ok()) return s;
  return listener;
}

std::unique_ptr<env::Stream> TcpNetwork::connect(const env::Address& to) {
  auto stream = std::make_unique<TcpStream>(core_, to, nullptr);
  stream->start_connect();
  return stream;
}

size_t TcpNetwork::lingering_sockets() const { return core_->lingering.size(); }

}  // namespace keel::net
