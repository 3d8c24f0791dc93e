#include "sim/network.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/bytes.h"
#include "base/check.h"
#include "base/crc32c.h"

namespace keel::sim {
namespace {

enum ItemKind : int { kOpen = 0, kData = 1, kClose = 2 };

struct Item {
  int64_t arrival_ns;
  int kind;
  Bytes data;
};

constexpr int64_t kNanosPerSecond = 1'000'000'000;

}  // namespace

// One end of a connection, at `host`. Side 0 is the connecting end, side 1 the accepted one.
struct Fabric::Side {
  Conn* conn = nullptr;  // the connection this is side `index` of
  int index = 0;
  int host = -1;
  uint64_t epoch = 0;
  env::Address local;
  env::Address peer;
  env::Stream::Handlers handlers;
  bool established = false;  // a Stream object exists for this side
  bool closed = false;       // no callback may run for this side any more
  std::deque<Item> inbox;    // what travels towards this side, in arrival order
  bool delivery_pending = false;
  int64_t blocked_since_ns = -1;  // head of inbox held back by a cut since then
  int64_t last_arrival_ns = 0;    // arrival of the last item this side sent (keeps order)
  std::deque<std::pair<int64_t, size_t>> unsent;  // (transmitted at, bytes) of recent sends
};

struct Fabric::Conn {
  explicit Conn(Fabric* owner) : fabric(owner) {
    for (int s = 0; s < 2; s++) {
      side[s].conn = this;
      side[s].index = s;
    }
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  Fabric* fabric;
  uint64_t id = 0;
  Side side[2];
  bool broken = false;  // reset or failed: nothing more travels in either direction
};

struct Fabric::ListenerEntry {
  int host;
  uint64_t epoch;
  env::Address address;
  env::Network::AcceptFn on_accept;
};

namespace {

class StreamImpl final : public env::Stream {
 public:
  StreamImpl(Fabric* fabric, std::shared_ptr<Fabric::Conn> conn, int side)
      : fabric_(fabric), conn_(std::move(conn)), side_(side) {}
  ~StreamImpl() override { close(); }

  void set_handlers(Handlers handlers) override;
  absl::Status send(ByteView bytes) override { return fabric_->send(conn_, side_, bytes); }
  size_t send_queue_bytes() const override { return fabric_->send_queue_bytes(*conn_, side_); }
  void close() override { fabric_->close(conn_, side_); }
  const env::Address& peer() const override;

 private:
  Fabric* fabric_;
  std::shared_ptr<Fabric::Conn> conn_;
  int side_;
};

class ListenerImpl final : public env::Listener {
 public:
  ListenerImpl(Fabric* fabric, std::shared_ptr<Fabric::ListenerEntry> entry)
      : fabric_(fabric), entry_(std::move(entry)) {}
  ~ListenerImpl() override { fabric_->unlisten(entry_->address, entry_.get()); }
  env::Address local_address() const override { return entry_->address; }

 private:
  Fabric* fabric_;
  std::shared_ptr<Fabric::ListenerEntry> entry_;
};

}  // namespace

void StreamImpl::set_handlers(Handlers handlers) {
  Fabric::Side& side = conn_->side[side_];
  if (side.closed) return;
  side.handlers = std::move(handlers);
}

const env::Address& StreamImpl::peer() const { return conn_->side[side_].peer; }

Fabric::Fabric(Scheduler& scheduler, env::Random rng)
    : scheduler_(&scheduler), rng_(rng), links_(kHostsMax * kHostsMax) {}

Fabric::~Fabric() = default;

int Fabric::add_host(const std::string& name) {
  KEEL_CHECK(hosts_.size() < kHostsMax, "too many hosts");
  KEEL_CHECK(host_id(name) < 0, "duplicate host {}", name);
  const int id = int(hosts_.size());
  hosts_.push_back(Host{name});
  // Every link touching the new host gets its own stream, named by its ends.
  for (int other = 0; other <= id; other++) {
    link(id, other).rng = rng_.derive(fmt::format("link/{}->{}", name, hosts_[other].name));
    link(other, id).rng = rng_.derive(fmt::format("link/{}->{}", hosts_[other].name, name));
  }
  return id;
}

int Fabric::host_id(const std::string& name) const {
  for (size_t i = 0; i < hosts_.size(); i++) {
    if (hosts_[i].name == name) return int(i);
  }
  return -1;
}

void Fabric::record(int host, std::string_view kind, std::string detail) {
  scheduler_->record(hosts_.at(host).name, kind, detail);
}

std::unique_ptr<env::Network> Fabric::host_up(int host) {
  Host& h = hosts_.at(host);
  KEEL_CHECK(!h.up, "host {} already up", h.name);
  h.up = true;
  h.epoch++;
  return std::make_unique<SimNetwork>(*this, host, h.epoch);
}

void Fabric::host_down(int host) {
  Host& h = hosts_.at(host);
  KEEL_CHECK(h.up, "host {} already down", h.name);
  h.up = false;
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    it = it->second->host == host ? listeners_.erase(it) : std::next(it);
  }
  std::vector<std::shared_ptr<Conn>> touched;
  for (auto& [id, conn] : conns_) {
    if (conn->side[0].host == host || conn->side[1].host == host) touched.push_back(conn);
  }
  for (auto& conn : touched) {
    for (int s = 0; s < 2; s++) {
      Side& side = conn->side[s];
      if (side.host != host || side.closed || !side.established) continue;
      side.closed = true;  // silently: the process is gone
      side.handlers = {};
      for (auto& item : side.inbox) stats_.bytes_lost += item.data.size();
      side.inbox.clear();
      Side& peer = conn->side[1 - s];
      if (conn->broken) continue;
      conn->broken = true;
      stats_.resets++;
      for (auto& item : peer.inbox) stats_.bytes_lost += item.data.size();
      peer.inbox.clear();
      if (peer.established && !peer.closed) {
        // The dying kernel's reset reaches the peer after the link latency; across a cut the
        // peer only finds out when its own bytes time out.
        const int64_t delay =
            link(host, peer.host).cut ? kCutResetNs : sample_latency(host, peer.host);
        notify_close(conn, 1 - s, scheduler_->now_ns() + delay,
                     absl::UnavailableError("connection reset by peer (crash)"));
      }
    }
    forget_if_done(conn);
  }
  record(host, "net.down", "");
}

void Fabric::set_link_params(int from, int to, const LinkParams& params) {
  KEEL_CHECK(params.latency_min_ns >= 0 && params.latency_spread_ns >= 0);
  KEEL_CHECK(params.bandwidth_bytes_per_s > 0 && params.tail_per_million <= 1'000'000);
  link(from, to).params = params;
}

void Fabric::set_all_link_params(const LinkParams& params) {
  for (int a = 0; a < host_count(); a++) {
    for (int b = 0; b < host_count(); b++) set_link_params(a, b, params);
  }
}

void Fabric::cut(int from, int to) {
  KEEL_CHECK(from != to, "a host cannot be cut from itself");
  Link& l = link(from, to);
  if (l.cut) return;
  l.cut = true;
  stats_.cuts++;
  record(from, "net.cut", hosts_.at(to).name);
}

void Fabric::heal(int from, int to) {
  Link& l = link(from, to);
  if (!l.cut) return;
  l.cut = false;
  stats_.heals++;
  record(from, "net.heal", hosts_.at(to).name);
}

void Fabric::heal_all() {
  for (int a = 0; a < host_count(); a++) {
    for (int b = 0; b < host_count(); b++) heal(a, b);
  }
}

void Fabric::partition_symmetric(const std::vector<int>& a, const std::vector<int>& b) {
  for (int x : a) {
    for (int y : b) {
      cut(x, y);
      cut(y, x);
    }
  }
}

void Fabric::partition_asymmetric(const std::vector<int>& a, const std::vector<int>& b) {
  for (int x : a) {
    for (int y : b) cut(x, y);
  }
}

void Fabric::partition_bridge(const std::vector<int>& a, const std::vector<int>& b, int bridge) {
  for (int x : a) KEEL_CHECK(x != bridge);
  for (int y : b) KEEL_CHECK(y != bridge);
  partition_symmetric(a, b);
}

void Fabric::stall(int from, int to, int64_t duration_ns) {
  KEEL_CHECK(duration_ns >= 0);
  Link& l = link(from, to);
  l.stalled_until_ns = std::max(l.stalled_until_ns, scheduler_->now_ns() + duration_ns);
  stats_.stalls++;
  record(from, "net.stall", fmt::format("{} {}ns", hosts_.at(to).name, duration_ns));
}

int Fabric::reset_between(int a, int b) {
  std::vector<std::shared_ptr<Conn>> victims;
  for (auto& [id, conn] : conns_) {
    const int x = conn->side[0].host, y = conn->side[1].host;
    if (!conn->broken && ((x == a && y == b) || (x == b && y == a))) victims.push_back(conn);
  }
  for (auto& conn : victims) reset(conn, "connection reset (nemesis)");
  return int(victims.size());
}

bool Fabric::reset_one(env::Random& rng) {
  std::vector<std::shared_ptr<Conn>> live;
  for (auto& [id, conn] : conns_) {
    if (!conn->broken && conn->side[1].established) live.push_back(conn);
  }
  if (live.empty()) return false;
  reset(live[rng.uniform(live.size())], "connection reset (nemesis)");
  return true;
}

int64_t Fabric::sample_latency(int from, int to) {
  Link& l = link(from, to);
  int64_t latency = l.params.latency_min_ns;
  if (l.params.latency_spread_ns > 0) {
    latency += int64_t(l.rng.uniform(uint64_t(l.params.latency_spread_ns) + 1));
  }
  if (l.params.tail_per_million > 0 && l.rng.chance(l.params.tail_per_million, 1'000'000)) {
    latency += int64_t(l.rng.uniform(uint64_t(l.params.tail_max_ns) + 1));
  }
  return latency;
}

uint16_t Fabric::ephemeral_port(int host) {
  Host& h = hosts_.at(host);
  for (int attempts = 0; attempts < 65536; attempts++) {
    const uint16_t port = h.next_port;
    h.next_port = h.next_port == 65535 ? kEphemeralPortFirst : uint16_t(h.next_port + 1);
    if (!listeners_.contains(env::Address{h.name, port})) return port;
  }
  KEEL_UNREACHABLE();
}

absl::StatusOr<std::unique_ptr<env::Listener>> Fabric::listen(int host, uint64_t epoch,
                                                              const env::Address& at,
                                                              env::Network::AcceptFn on_accept) {
  if (!epoch_alive(host, epoch)) return absl::FailedPreconditionError("node is down");
  const Host& h = hosts_.at(host);
  if (at.host != h.name) {
    return absl::InvalidArgumentError(fmt::format("{} cannot listen on {}", h.name, at.host));
  }
  env::Address address{h.name, at.port == 0 ? ephemeral_port(host) : at.port};
  if (listeners_.contains(address)) {
    return absl::AlreadyExistsError(fmt::format("address in use: {}", address.to_string()));
  }
  auto entry =
      std::make_shared<ListenerEntry>(ListenerEntry{host, epoch, address, std::move(on_accept)});
  listeners_[address] = entry;
  record(host, "net.listen", address.to_string());
  return std::make_unique<ListenerImpl>(this, std::move(entry));
}

void Fabric::unlisten(const env::Address& at, const ListenerEntry* entry) {
  auto it = listeners_.find(at);
  if (it != listeners_.end() && it->second.get() == entry) listeners_.erase(it);
}

std::unique_ptr<env::Stream> Fabric::connect(int host, uint64_t epoch, const env::Address& to) {
  auto conn = std::make_shared<Conn>(this);
  conn->id = next_conn_id_++;
  Side& c = conn->side[0];
  Side& a = conn->side[1];
  c.host = host;
  c.epoch = epoch;
  c.established = true;
  c.peer = to;
  a.host = host_id(to.host);
  a.local = to;
  if (!epoch_alive(host, epoch)) {
    c.closed = true;  // a dying process: the stream is inert
    return std::make_unique<StreamImpl>(this, conn, 0);
  }
  c.local = env::Address{hosts_.at(host).name, ephemeral_port(host)};
  a.peer = c.local;
  conns_[conn->id] = conn;
  stats_.connects++;
  record(host, "net.connect", fmt::format("c{} {}", conn->id, to.to_string()));
  const int to_host = a.host >= 0 ? a.host : host;
  const int64_t syn_at = scheduler_->now_ns() + sample_latency(host, to_host);
  c.last_arrival_ns = syn_at;  // bytes sent early arrive after the handshake
  scheduler_->at(syn_at, [this, conn] { on_syn(conn); });
  return std::make_unique<StreamImpl>(this, conn, 0);
}

void Fabric::on_syn(const std::shared_ptr<Conn>& conn) {
  Side& c = conn->side[0];
  Side& a = conn->side[1];
  if (c.closed || conn->broken) {
    conn->broken = true;
    forget_if_done(conn);
    return;
  }
  const int64_t now = scheduler_->now_ns();
  if (a.host < 0) {
    fail_connect(conn, now, absl::UnavailableError("unknown host"));
    return;
  }
  if (link(c.host, a.host).cut || link(a.host, c.host).cut) {
    stats_.connect_timeouts++;
    const int64_t started = c.last_arrival_ns - 1;  // never earlier than now below
    fail_connect(conn, std::max(now, started + kConnectTimeoutNs),
                 absl::DeadlineExceededError("connect timed out"));
    return;
  }
  const int64_t stalled_until = link(c.host, a.host).stalled_until_ns;
  if (stalled_until > now) {
    scheduler_->at(stalled_until, [this, conn] { on_syn(conn); });
    return;
  }
  auto it = listeners_.find(a.local);
  if (it == listeners_.end() || !epoch_alive(it->second->host, it->second->epoch)) {
    stats_.refused++;
    fail_connect(conn, now + sample_latency(a.host, c.host),
                 absl::UnavailableError("connection refused"));
    return;
  }
  std::shared_ptr<ListenerEntry> entry = it->second;
  a.epoch = entry->epoch;
  a.established = true;
  stats_.accepts++;
  record(a.host, "net.accept", fmt::format("c{} {}", conn->id, a.peer.to_string()));
  const int64_t open_at = now + sample_latency(a.host, c.host);
  a.last_arrival_ns = open_at;
  enqueue(conn, 0, open_at, kOpen, {});
  entry->on_accept(std::make_unique<StreamImpl>(this, conn, 1));
  if (!a.closed && !conn->broken && !a.inbox.empty() && !a.delivery_pending) {
    schedule_delivery(conn, 1, a.inbox.front().arrival_ns);
  }
  forget_if_done(conn);
}

void Fabric::fail_connect(const std::shared_ptr<Conn>& conn, int64_t at_ns, absl::Status status) {
  conn->broken = true;
  for (auto& item : conn->side[1].inbox) stats_.bytes_lost += item.data.size();
  conn->side[1].inbox.clear();
  notify_close(conn, 0, at_ns, std::move(status));
}

absl::Status Fabric::send(const std::shared_ptr<Conn>& conn, int s, ByteView bytes) {
  Side& side = conn->side[s];
  if (side.closed) return absl::FailedPreconditionError("stream closed");
  if (conn->broken) return absl::UnavailableError("connection reset");
  if (bytes.empty()) return absl::OkStatus();
  const int64_t now = scheduler_->now_ns();
  while (!side.unsent.empty() && side.unsent.front().first <= now) side.unsent.pop_front();
  if (send_queue_bytes(*conn, s) + bytes.size() > env::Stream::kSendBufferBytesMax) {
    return absl::ResourceExhaustedError("send buffer full");
  }
  const int to = conn->side[1 - s].host;
  if (to < 0) return absl::OkStatus();  // unknown host: the connect will fail
  Link& l = link(side.host, to);
  const int64_t tx_start = std::max(now, l.tx_free_ns);
  // ceil(size * 1e9 / bandwidth) in 64 bits (size is at most the send buffer, so the product
  // fits): the same value as the 128-bit formula, without its library-call division.
  static_assert(env::Stream::kSendBufferBytesMax <= UINT64_MAX / kNanosPerSecond);
  const uint64_t scaled = uint64_t(bytes.size()) * kNanosPerSecond;
  const uint64_t bandwidth = l.params.bandwidth_bytes_per_s;
  const int64_t tx_ns = int64_t(scaled / bandwidth + (scaled % bandwidth != 0 ? 1 : 0));
  l.tx_free_ns = tx_start + tx_ns;
  side.unsent.emplace_back(l.tx_free_ns, bytes.size());
  const int64_t arrival =
      std::max(l.tx_free_ns + sample_latency(side.host, to), side.last_arrival_ns);
  side.last_arrival_ns = arrival;
  enqueue(conn, 1 - s, arrival, kData, bytes);
  return absl::OkStatus();
}

size_t Fabric::send_queue_bytes(const Conn& conn, int s) const {
  const int64_t now = scheduler_->now_ns();
  size_t total = 0;
  for (const auto& [done_ns, size] : conn.side[s].unsent) {
    if (done_ns > now) total += size;
  }
  return total;
}

void Fabric::close(const std::shared_ptr<Conn>& conn, int s) {
  Side& side = conn->side[s];
  if (side.closed) return;
  side.closed = true;
  side.handlers = {};
  record(side.host, "net.close", fmt::format("c{}", conn->id));
  Side& peer = conn->side[1 - s];
  if (!conn->broken && peer.host >= 0) {
    // The FIN follows the bytes already sent.
    const int64_t at =
        std::max(scheduler_->now_ns() + sample_latency(side.host, peer.host), side.last_arrival_ns);
    side.last_arrival_ns = at;
    enqueue(conn, 1 - s, at, kClose, {});
  }
  const bool unread = std::any_of(side.inbox.begin(), side.inbox.end(),
                                  [](const Item& item) { return item.kind == kData; });
  // Closing with unread bytes makes TCP answer with a reset.
  if (unread) reset(conn, "connection reset by peer (closed with unread data)");
  forget_if_done(conn);
}

void Fabric::enqueue(const std::shared_ptr<Conn>& conn, int to_side, int64_t arrival_ns, int kind,
                     ByteView bytes) {
  Side& side = conn->side[to_side];
  KEEL_CHECK(side.inbox.empty() || side.inbox.back().arrival_ns <= arrival_ns);
  side.inbox.push_back(Item{arrival_ns, kind, Bytes(bytes.begin(), bytes.end())});
  if (side.established && !side.delivery_pending) schedule_delivery(conn, to_side, arrival_ns);
}

void Fabric::schedule_delivery(const std::shared_ptr<Conn>& conn, int s, int64_t at_ns) {
  conn->side[s].delivery_pending = true;
  // The callback holds one pointer, to the side (sharing the connection's ownership), so it
  // fits in the scheduler's inline storage: no allocation per delivery.
  scheduler_->at(at_ns, [side = std::shared_ptr<Side>(conn, &conn->side[s])]() mutable {
    Conn* c = side->conn;
    const int index = side->index;
    c->fabric->deliver(std::shared_ptr<Conn>(std::move(side), c), index);
  });
}

void Fabric::deliver(const std::shared_ptr<Conn>& conn, int s) {
  Side& side = conn->side[s];
  side.delivery_pending = false;
  if (conn->broken || side.inbox.empty()) return;
  if (side.closed) {
    // Bytes reaching a closed socket are answered with a reset.
    const bool data = std::any_of(side.inbox.begin(), side.inbox.end(),
                                  [](const Item& item) { return item.kind == kData; });
    side.inbox.clear();
    if (data) reset(conn, "connection reset by peer (closed)");
    return;
  }
  const int from = conn->side[1 - s].host;
  const int64_t now = scheduler_->now_ns();
  const Link& l = link(from, side.host);
  if (l.cut) {
    if (side.blocked_since_ns < 0) side.blocked_since_ns = now;
    if (now - side.blocked_since_ns >= kCutResetNs) {
      reset(conn, "connection timed out (partition)");
    } else {
      schedule_delivery(conn, s, now + kCutRetryNs);
    }
    return;
  }
  side.blocked_since_ns = -1;
  if (l.stalled_until_ns > now) {
    schedule_delivery(conn, s, l.stalled_until_ns);
    return;
  }
  while (!side.inbox.empty() && side.inbox.front().arrival_ns <= now) {
    Item item = std::move(side.inbox.front());
    side.inbox.pop_front();
    if (item.kind == kOpen) {
      record(side.host, "net.open", fmt::format("c{}", conn->id));
      auto fn = std::move(side.handlers.on_open);
      side.handlers.on_open = nullptr;
      if (fn) fn();
      if (!side.closed && !side.handlers.on_open) side.handlers.on_open = std::move(fn);
    } else if (item.kind == kData) {
      stats_.deliveries++;
      stats_.bytes_delivered += item.data.size();
      scheduler_->recordf(hosts_.at(side.host).name, "net.data", "c{} {}B #{:08x}", conn->id,
                          item.data.size(), crc32c(item.data));
      auto fn = std::move(side.handlers.on_data);
      side.handlers.on_data = nullptr;
      KEEL_CHECK(fn, "stream c{} on {} got data without an on_data handler", conn->id,
                 hosts_.at(side.host).name);
      fn(item.data);
      if (!side.closed && !side.handlers.on_data) side.handlers.on_data = std::move(fn);
    } else {
      stats_.closes++;
      record(side.host, "net.eof", fmt::format("c{}", conn->id));
      side.closed = true;
      auto fn = std::move(side.handlers.on_close);
      side.handlers = {};
      if (fn) fn(absl::OkStatus());
      forget_if_done(conn);
      return;
    }
    if (side.closed || conn->broken) return;
  }
  if (!side.inbox.empty() && !side.delivery_pending) {
    schedule_delivery(conn, s, side.inbox.front().arrival_ns);
  }
}

void Fabric::reset(const std::shared_ptr<Conn>& conn, std::string_view reason) {
  if (conn->broken) return;
  conn->broken = true;
  stats_.resets++;
  for (Side& side : conn->side) {
    for (auto& item : side.inbox) stats_.bytes_lost += item.data.size();
    side.inbox.clear();
  }
  const int64_t now = scheduler_->now_ns();
  for (int s = 0; s < 2; s++) {
    Side& side = conn->side[s];
    if (side.closed || !side.established) continue;
    const int other = conn->side[1 - s].host;
    const int64_t delay = other >= 0 ? sample_latency(other, side.host) : 0;
    notify_close(conn, s, now + delay, absl::UnavailableError(std::string(reason)));
  }
}

void Fabric::notify_close(const std::shared_ptr<Conn>& conn, int s, int64_t at_ns,
                          absl::Status status) {
  scheduler_->at(at_ns, [this, conn, s, status = std::move(status)]() mutable {
    Side& side = conn->side[s];
    if (side.closed) return;
    side.closed = true;
    record(side.host, "net.reset", fmt::format("c{} {}", conn->id, std::string(status.message())));
    auto fn = std::move(side.handlers.on_close);
    side.handlers = {};
    if (fn) fn(std::move(status));
    forget_if_done(conn);
  });
}

void Fabric::forget_if_done(const std::shared_ptr<Conn>& conn) {
  const Side& c = conn->side[0];
  const Side& a = conn->side[1];
  const bool acceptor_done = a.established ? a.closed : conn->broken;
  if (c.closed && acceptor_done) conns_.erase(conn->id);
}

}  // namespace keel::sim
