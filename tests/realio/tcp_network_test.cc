// TcpNetwork over real loopback sockets: port 0, both directions, large and tiny sends,
// arbitrary splits, orderly close versus reset, refused connects, the send buffer limit,
// destroying streams inside the loop, and a misbehaving or excessive peer.
#include "net/tcp_network.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "net/event_loop.h"
#include "net/real_clock.h"
#include "tests/realio/realio_util.h"

namespace keel::net {
namespace {

using realio_test::raw_accept;
using realio_test::raw_connect;
using realio_test::raw_listen;
using realio_test::raw_reset;
using realio_test::raw_write_all;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Everything a stream reported, recorded outside the stream, so calls after its death are
// visible instead of being use-after-free.
struct Recorder {
  std::string data;
  int data_calls = 0;
  bool opened = false;
  std::optional<absl::Status> closed;
  int after_close = 0;  // callbacks after on_close: always a bug
  bool dead = false;    // set by the test when it destroys the stream
  int after_death = 0;  // callbacks after destruction: always a bug

  env::Stream::Handlers handlers() {
    env::Stream::Handlers h;
    h.on_open = [this] {
      note();
      opened = true;
    };
    h.on_data = [this](ByteView bytes) {
      note();
      data.append(as_chars(bytes));
      data_calls++;
    };
    h.on_close = [this](absl::Status status) {
      note();
      closed = status;
    };
    return h;
  }
  void note() {
    if (closed) after_close++;
    if (dead) after_death++;
  }
};

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return out;
}

class TcpNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override { make_network({}); }
  void TearDown() override {
    accepted_.clear();
    listener_.reset();
    network_.reset();
  }

  void make_network(TcpOptions options) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    network_ = std::make_unique<TcpNetwork>(*loop_, options);
  }

  // Listens on 127.0.0.1:0; accepted streams go to accepted_ with their recorders.
  env::Address listen(const std::string& host = "127.0.0.1") {
    auto listener = network_->listen(env::Address{host, 0}, [this](auto stream) {
      auto rec = std::make_unique<Recorder>();
      stream->set_handlers(rec->handlers());
      accepted_.push_back({std::move(stream), std::move(rec)});
    });
    EXPECT_TRUE(listener.ok()) << listener.status();
    if (!listener.ok()) return {};
    listener_ = std::move(*listener);
    return listener_->local_address();
  }

  std::unique_ptr<env::Stream> connect(const env::Address& to, Recorder& rec) {
    auto stream = network_->connect(to);
    stream->set_handlers(rec.handlers());
    return stream;
  }

  bool run(absl::FunctionRef<bool()> done, Nanos timeout = seconds(20)) {
    return loop_->run_until(done, timeout);
  }
  void run_for(Nanos duration) {
    loop_->run_until([] { return false; }, duration);
  }

  struct Accepted {
    std::unique_ptr<env::Stream> stream;
    std::unique_ptr<Recorder> rec;
  };

  std::unique_ptr<EventLoop> loop_;  // first: destroyed last
  std::unique_ptr<TcpNetwork> network_;
  std::unique_ptr<env::Listener> listener_;
  std::vector<Accepted> accepted_;
};

TEST_F(TcpNetworkTest, ListenOnPortZeroReportsTheRealPort) {
  const env::Address at = listen();
  EXPECT_EQ(at.host, "127.0.0.1");
  EXPECT_NE(at.port, 0);
  // A second listener gets another port.
  auto other = network_->listen(env::Address{"127.0.0.1", 0}, [](auto) {});
  ASSERT_TRUE(other.ok());
  EXPECT_NE((*other)->local_address().port, at.port);
  // The same port again is refused while the first listens.
  auto clash = network_->listen(at, [](auto) {});
  EXPECT_FALSE(clash.ok());
}

TEST_F(TcpNetworkTest, ExchangesBytesBothWaysWithSendBeforeOpen) {
  const env::Address at = listen();
  Recorder client;
  auto stream = connect(at, client);
  // Allowed before on_open; delivered once connected.
  ASSERT_TRUE(stream->send(as_bytes("hello ")).ok());
  ASSERT_TRUE(stream->send(as_bytes("server")).ok());
  EXPECT_FALSE(client.opened);  // never inside connect()
  ASSERT_TRUE(run([&] { return !accepted_.empty() && accepted_[0].rec->data.size() == 12; }));
  EXPECT_TRUE(client.opened);
  EXPECT_EQ(accepted_[0].rec->data, "hello server");
  EXPECT_FALSE(accepted_[0].rec->opened);  // on_open is for outgoing streams only
  EXPECT_EQ(accepted_[0].stream->peer().host, "127.0.0.1");
  ASSERT_TRUE(accepted_[0].stream->send(as_bytes("hello client")).ok());
  ASSERT_TRUE(run([&] { return client.data.size() == 12; }));
  EXPECT_EQ(client.data, "hello client");
  EXPECT_EQ(stream->peer(), at);
  EXPECT_FALSE(client.closed);
}

TEST_F(TcpNetworkTest, LargeTransfersBothWaysSurviveBackpressure) {
  const env::Address at = listen();
  Recorder client;
  auto stream = connect(at, client);
  ASSERT_TRUE(run([&] { return !accepted_.empty(); }));
  constexpr size_t kBytes = 24 << 20;  // far beyond the kernel's socket buffers
  const std::string up = random_bytes(kBytes, 1);
  const std::string down = random_bytes(kBytes, 2);
  // In pieces of uneven size, so chunk boundaries fall everywhere.
  for (size_t off = 0; off < kBytes;) {
    const size_t n = std::min(kBytes - off, size_t(1 + (off * 7919) % 300'000));
    ASSERT_TRUE(stream->send(ByteView(as_bytes(up).subspan(off, n))).ok());
    off += n;
  }
  ASSERT_TRUE(accepted_[0].stream->send(as_bytes(down)).ok());
  EXPECT_EQ(stream->send_queue_bytes(), kBytes);  // nothing is written inside send()
  size_t max_queue_seen = 0;
  ASSERT_TRUE(run([&] {
    max_queue_seen = std::max(max_queue_seen, stream->send_queue_bytes());
    return accepted_[0].rec->data.size() == kBytes && client.data.size() == kBytes;
  }));
  EXPECT_TRUE(accepted_[0].rec->data == up);
  EXPECT_TRUE(client.data == down);
  EXPECT_EQ(stream->send_queue_bytes(), 0u);
  EXPECT_EQ(accepted_[0].stream->send_queue_bytes(), 0u);
  EXPECT_GT(client.data_calls, 1);  // delivered in many pieces
}

TEST_F(TcpNetworkTest, ManySmallSendsArriveInOrder) {
  const env::Address at = listen();
  Recorder client;
  auto stream = connect(at, client);
  ASSERT_TRUE(run([&] { return client.opened; }));
  constexpr uint64_t kMessages = 100'000;
  uint8_t buf[8];
  for (uint64_t i = 0; i < kMessages; i++) {
    put_be64(buf, i);
    ASSERT_TRUE(stream->send(ByteView(buf, 8)).ok());
    // Spread over loop iterations now and then.
    if (i % 10'000 == 0) loop_->run_once(Nanos(0));
  }
  ASSERT_TRUE(
      run([&] { return !accepted_.empty() && accepted_[0].rec->data.size() == 8 * kMessages; }));
  const std::string& got = accepted_[0].rec->data;
  for (uint64_t i = 0; i < kMessages; i++) {
    ASSERT_EQ(get_be64(reinterpret_cast<const uint8_t*>(got.data()) + 8 * i), i);
  }
}

// Length-prefixed frames sent one byte per loop iteration, then many frames in one send:
// the receiver must handle any split.
TEST_F(TcpNetworkTest, ReceiverSeesPartialFramesAndReassemblesThem) {
  const env::Address at = listen();
  RealClock clock(*loop_);
  Recorder client;
  auto stream = connect(at, client);
  ASSERT_TRUE(run([&] { return client.opened && !accepted_.empty(); }));

  std::string wire;
  std::vector<std::string> frames;
  for (int i = 0; i < 20; i++) {
    frames.push_back(random_bytes(size_t(i * 37 % 200), uint64_t(100 + i)));
    uint8_t len[4];
    put_be32(len, uint32_t(frames.back().size()));
    wire.append(reinterpret_cast<char*>(len), 4);
    wire += frames.back();
  }
  // The first 300 bytes trickle one byte per timer tick; the rest goes in one send.
  size_t sent = 0;
  std::function<void()> trickle = [&] {
    if (sent == 300) {
      ASSERT_TRUE(stream->send(ByteView(as_bytes(wire).subspan(300))).ok());
      sent = wire.size();
      return;
    }
    ASSERT_TRUE(stream->send(ByteView(as_bytes(wire).subspan(sent, 1))).ok());
    sent++;
    clock.start_timer(Nanos(0), trickle);
  };
  trickle();
  Recorder& server = *accepted_[0].rec;
  ASSERT_TRUE(run([&] { return server.data.size() == wire.size(); }));
  EXPECT_GE(server.data_calls, 300);  // saw byte-sized pieces: frames arrived split
  // Decode the reassembled bytes.
  std::vector<std::string> decoded;
  size_t pos = 0;
  while (pos + 4 <= server.data.size()) {
    const uint32_t len = get_be32(reinterpret_cast<const uint8_t*>(server.data.data() + pos));
    ASSERT_LE(pos + 4 + len, server.data.size());
    decoded.push_back(server.data.substr(pos + 4, len));
    pos += 4 + len;
  }
  EXPECT_EQ(pos, server.data.size());
  EXPECT_EQ(decoded, frames);
}

TEST_F(TcpNetworkTest, OrderlyCloseDeliversQueuedBytesThenOk) {
  const env::Address at = listen();
  Recorder client;
  auto stream = connect(at, client);
  ASSERT_TRUE(run([&] { return !accepted_.empty(); }));
  constexpr size_t kBytes = 8 << 20;
  const std::string payload = random_bytes(kBytes, 7);
  ASSERT_TRUE(stream->send(as_bytes(payload)).ok());
  stream->close();
  stream->close();  // idempotent
  EXPECT_FALSE(stream->send(as_bytes("x")).ok());
  client.dead = true;
  stream.reset();  // the queued 8 MiB is still delivered: close is orderly
  Recorder& server = *accepted_[0].rec;
  ASSERT_TRUE(run([&] { return server.closed.has_value(); }));
  EXPECT_TRUE(server.closed->ok()) << *server.closed;
  EXPECT_TRUE(server.data == payload);
  EXPECT_EQ(server.after_close, 0);
  EXPECT_EQ(client.after_death, 0);
  // The server side is closed too (on_close came), and sending there now fails.
  EXPECT_EQ(accepted_[0].stream->send(as_bytes("late")).code(),
            absl::StatusCode::kFailedPrecondition);
  // Both sockets finish lingering once each side has seen the other's FIN.
  accepted_.clear();
  ASSERT_TRUE(run([&] { return network_->lingering_sockets() == 0; }, seconds(5)));
}

TEST_F(TcpNetworkTest, ServerCloseIsSeenAsOkByClient) {
  const env::Address at = listen();
  Recorder client;
  auto stream = connect(at, client);
  ASSERT_TRUE(run([&] { return client.opened && !accepted_.empty(); }));
  ASSERT_TRUE(accepted_[0].stream->send(as_bytes("last words")).ok());
  accepted_[0].stream->close();
  ASSERT_TRUE(run([&] { return client.closed.has_value(); }));
  EXPECT_TRUE(client.closed->ok());
  EXPECT_EQ(client.data, "last words");
  EXPECT_EQ(accepted_[0].rec->after_close + accepted_[0].rec->data_calls, 0);
}

TEST_F(TcpNetworkTest, ResetByRawClientIsAnError) {
  const env::Address at = listen();
  const int fd = raw_connect(at.port);
  raw_write_all(fd, "garbage");
  ASSERT_TRUE(run([&] { return !accepted_.empty() && !accepted_[0].rec->data.empty(); }));
  raw_reset(fd);
  Recorder& server = *accepted_[0].rec;
  ASSERT_TRUE(run([&] { return server.closed.has_value(); }));
  EXPECT_FALSE(server.closed->ok());
  EXPECT_EQ(server.closed->code(), absl::StatusCode::kUnavailable) << *server.closed;
  EXPECT_EQ(server.after_close, 0);
}

TEST_F(TcpNetworkTest, ResetByRawServerIsAnErrorForTheClient) {
  uint16_t port = 0;
  const int listen_fd = raw_listen(&port);
  Recorder client;
  auto stream = connect(env::Address{"127.0.0.1", port}, client);
  ASSERT_TRUE(run([&] { return client.opened; }));
  const int fd = raw_accept(listen_fd);
  raw_reset(fd);
  ASSERT_TRUE(run([&] { return client.closed.has_value(); }));
  EXPECT_EQ(client.closed->code(), absl::StatusCode::kUnavailable) << *client.closed;
  EXPECT_EQ(stream->send(as_bytes("x")).code(), absl::StatusCode::kFailedPrecondition);
  close(listen_fd);
}

TEST_F(TcpNetworkTest, RawPeerHalfCloseIsAnOrderlyEnd) {
  const env::Address at = listen();
  const int fd = raw_connect(at.port);
  raw_write_all(fd, "request");
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
  ASSERT_TRUE(run([&] { return !accepted_.empty() && accepted_[0].rec->closed.has_value(); }));
  EXPECT_TRUE(accepted_[0].rec->closed->ok());
  EXPECT_EQ(accepted_[0].rec->data, "request");
  close(fd);
}

TEST_F(TcpNetworkTest, RefusedConnectIsReportedLaterAsError) {
  Recorder client;
  auto stream = connect(env::Address{"127.0.0.1", realio_test::unused_port()}, client);
  EXPECT_FALSE(client.closed.has_value());  // never inside connect()
  ASSERT_TRUE(run([&] { return client.closed.has_value(); }));
  EXPECT_EQ(client.closed->code(), absl::StatusCode::kUnavailable) << *client.closed;
  EXPECT_FALSE(client.opened);
  EXPECT_EQ(client.after_close, 0);
}

TEST_F(TcpNetworkTest, UnansweredConnectTimesOut) {
  TcpOptions options;
  options.connect_timeout = milliseconds(300);
  make_network(options);
  // A listener that never accepts, with the smallest backlog: once its queue is full the
  // kernel drops further SYNs, so a connect gets no answer at all.
  uint16_t port = 0;
  const int listen_fd = raw_listen(&port);
  ASSERT_EQ(::listen(listen_fd, 0), 0);
  std::vector<Recorder> recs(4);
  std::vector<std::unique_ptr<env::Stream>> streams;
  for (auto& rec : recs) streams.push_back(connect(env::Address{"127.0.0.1", port}, rec));
  ASSERT_TRUE(run([&] {
    for (auto& rec : recs) {
      if (!rec.opened && !rec.closed) return false;
    }
    return true;
  }));
  int timed_out = 0;
  for (auto& rec : recs) {
    if (rec.closed) {
      EXPECT_EQ(rec.closed->code(), absl::StatusCode::kDeadlineExceeded) << *rec.closed;
      EXPECT_FALSE(rec.opened);
      timed_out++;
    }
  }
  EXPECT_GE(timed_out, 1);  // those beyond the backlog; the queued ones opened
  EXPECT_LE(timed_out, 3);
  // Closing the listener resets the queued connections: every stream ends, exactly once.
  close(listen_fd);
  ASSERT_TRUE(run([&] {
    for (auto& rec : recs) {
      if (!rec.closed) return false;
    }
    return true;
  }));
  for (auto& rec : recs) EXPECT_EQ(rec.after_close, 0);
}

TEST_F(TcpNetworkTest, BadHostIsReportedLaterAsInvalidArgument) {
  Recorder client;
  auto stream = connect(env::Address{"not-an-address", 9}, client);
  EXPECT_FALSE(client.closed.has_value());
  ASSERT_TRUE(run([&] { return client.closed.has_value(); }));
  EXPECT_EQ(client.closed->code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(network_->listen(env::Address{"nope", 0}, [](auto) {}).ok());
}

TEST_F(TcpNetworkTest, SendBufferLimitIsEnforcedAndRecovers) {
  const env::Address at = listen();
  Recorder client;
  auto stream = connect(at, client);
  // Still connecting: nothing can be written yet, so the queue holds exactly what we sent.
  const Bytes chunk(1 << 20, 0xab);
  for (size_t i = 0; i < env::Stream::kSendBufferBytesMax / chunk.size(); i++) {
    ASSERT_TRUE(stream->send(chunk).ok());
  }
  EXPECT_EQ(stream->send_queue_bytes(), env::Stream::kSendBufferBytesMax);
  EXPECT_EQ(stream->send(as_bytes("x")).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(stream->send_queue_bytes(), env::Stream::kSendBufferBytesMax);
  ASSERT_TRUE(run([&] {
    return !accepted_.empty() && accepted_[0].rec->data.size() == env::Stream::kSendBufferBytesMax;
  }));
  EXPECT_EQ(stream->send_queue_bytes(), 0u);
  EXPECT_TRUE(stream->send(as_bytes("x")).ok());
}

TEST_F(TcpNetworkTest, DestroyedStreamGetsNoCallbacksEvenWithDataPending) {
  uint16_t port = 0;
  const int listen_fd = raw_listen(&port);
  Recorder client;
  auto stream = connect(env::Address{"127.0.0.1", port}, client);
  ASSERT_TRUE(run([&] { return client.opened; }));
  const int fd = raw_accept(listen_fd);
  // Written synchronously into the client's kernel buffer: readable, not yet read.
  raw_write_all(fd, "unread");
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);  // and an EOF behind it
  client.dead = true;
  stream.reset();
  run_for(milliseconds(50));
  EXPECT_EQ(client.after_death, 0);
  EXPECT_EQ(client.data_calls, 0);
  close(fd);
  close(listen_fd);
}

TEST_F(TcpNetworkTest, StreamDestroyedByAnotherCallbackInTheSameBatchStaysSilent) {
  const env::Address at = listen();
  Recorder c1, c2;
  auto s1 = connect(at, c1);
  auto s2 = connect(at, c2);
  ASSERT_TRUE(run([&] { return accepted_.size() == 2 && c1.opened && c2.opened; }));
  // Whichever accepted stream hears first destroys the other.
  for (int i = 0; i < 2; i++) {
    Accepted* other = &accepted_[1 - i];
    Recorder* self = accepted_[i].rec.get();
    accepted_[i].stream->set_handlers(
        env::Stream::Handlers{.on_open = nullptr,
                              .on_data =
                                  [self, other](ByteView bytes) {
                                    self->data.append(as_chars(bytes));
                                    if (other->stream) {
                                      other->rec->dead = true;
                                      other->stream.reset();
                                    }
                                  },
                              .on_close = [self](absl::Status s) { self->closed = s; }});
  }
  // Both sends are flushed in one iteration, so both sockets turn readable in one epoll batch.
  ASSERT_TRUE(s1->send(as_bytes("one")).ok());
  ASSERT_TRUE(s2->send(as_bytes("two")).ok());
  ASSERT_TRUE(run([&] { return !accepted_[0].stream || !accepted_[1].stream; }));
  run_for(milliseconds(50));
  const int survivors = (accepted_[0].stream ? 1 : 0) + (accepted_[1].stream ? 1 : 0);
  EXPECT_EQ(survivors, 1);
  for (auto& a : accepted_) {
    if (!a.stream) {
      EXPECT_EQ(a.rec->after_death, 0);
      EXPECT_TRUE(a.rec->data.empty());
    }
  }
}

TEST_F(TcpNetworkTest, CloseInsideOnDataStopsDelivery) {
  const env::Address at = listen();
  Recorder client;
  auto stream = connect(at, client);
  ASSERT_TRUE(run([&] { return !accepted_.empty(); }));
  int calls = 0;
  env::Stream* server = accepted_[0].stream.get();
  server->set_handlers(env::Stream::Handlers{.on_open = nullptr,
                                             .on_data =
                                                 [&](ByteView) {
                                                   calls++;
                                                   server->close();
                                                 },
                                             .on_close = [&](absl::Status) { calls += 1000; }});
  ASSERT_TRUE(stream->send(Bytes(4 << 20, 1)).ok());
  ASSERT_TRUE(run([&] { return calls > 0; }));
  run_for(milliseconds(100));
  EXPECT_EQ(calls, 1);
}

TEST_F(TcpNetworkTest, DestroyedListenerAcceptsNothing) {
  const env::Address at = listen();
  Recorder client;
  auto stream = connect(at, client);
  listener_.reset();  // before the loop ever ran: the pending connection is never accepted
  ASSERT_TRUE(run([&] { return client.closed.has_value(); }, seconds(10)));
  EXPECT_TRUE(accepted_.empty());
  Recorder again;
  auto stream2 = connect(at, again);
  ASSERT_TRUE(run([&] { return again.closed.has_value(); }));
  EXPECT_EQ(again.closed->code(), absl::StatusCode::kUnavailable);
}

TEST_F(TcpNetworkTest, AcceptLimitClosesExcessConnections) {
  TcpOptions options;
  options.accepted_streams_per_listener_max = 2;
  make_network(options);
  const env::Address at = listen();
  Recorder c[3];
  std::unique_ptr<env::Stream> s[3];
  for (int i = 0; i < 2; i++) s[i] = connect(at, c[i]);
  ASSERT_TRUE(run([&] { return accepted_.size() == 2; }));
  s[2] = connect(at, c[2]);
  ASSERT_TRUE(run([&] { return c[2].closed.has_value(); }));  // accepted, then closed at once
  EXPECT_EQ(accepted_.size(), 2u);
  EXPECT_FALSE(c[0].closed.has_value());
  EXPECT_FALSE(c[1].closed.has_value());
  // Freeing a slot admits the next connection.
  accepted_.erase(accepted_.begin());
  Recorder c4;
  auto s4 = connect(at, c4);
  ASSERT_TRUE(run([&] { return accepted_.size() == 2 && c4.opened; }));
  ASSERT_TRUE(s4->send(as_bytes("in")).ok());
  ASSERT_TRUE(run([&] { return accepted_[1].rec->data == "in"; }));
}

TEST_F(TcpNetworkTest, ManyConnectionsAtOnce) {
  const env::Address at = listen();
  constexpr int kClients = 200;
  std::vector<Recorder> recs(kClients);
  std::vector<std::unique_ptr<env::Stream>> streams;
  for (int i = 0; i < kClients; i++) {
    streams.push_back(connect(at, recs[i]));
    ASSERT_TRUE(streams.back()->send(as_bytes("c" + std::to_string(i) + ";")).ok());
  }
  ASSERT_TRUE(run([&] {
    if (accepted_.size() != kClients) return false;
    for (auto& a : accepted_) {
      if (a.rec->data.empty() || a.rec->data.back() != ';') return false;
    }
    return true;
  }));
  std::vector<std::string> got;
  for (auto& a : accepted_) got.push_back(a.rec->data);
  std::sort(got.begin(), got.end());
  std::vector<std::string> want;
  for (int i = 0; i < kClients; i++) want.push_back("c" + std::to_string(i) + ";");
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

TEST_F(TcpNetworkTest, Ipv6LoopbackWhenAvailable) {
  auto listener = network_->listen(env::Address{"::1", 0}, [this](auto stream) {
    auto rec = std::make_unique<Recorder>();
    stream->set_handlers(rec->handlers());
    accepted_.push_back({std::move(stream), std::move(rec)});
  });
  if (!listener.ok()) GTEST_SKIP() << "no IPv6 loopback: " << listener.status();
  listener_ = std::move(*listener);
  Recorder client;
  auto stream = connect(listener_->local_address(), client);
  ASSERT_TRUE(stream->send(as_bytes("v6")).ok());
  ASSERT_TRUE(run([&] { return !accepted_.empty() && accepted_[0].rec->data == "v6"; }));
  EXPECT_EQ(accepted_[0].stream->peer().host, "::1");
}

TEST_F(TcpNetworkTest, StreamsAndListenerMayOutliveTheNetworkObject) {
  const env::Address at = listen();
  Recorder client;
  auto stream = connect(at, client);
  network_.reset();
  ASSERT_TRUE(stream->send(as_bytes("still here")).ok());
  ASSERT_TRUE(run([&] { return !accepted_.empty() && accepted_[0].rec->data == "still here"; }));
}

}  // namespace
}  // namespace keel::net
