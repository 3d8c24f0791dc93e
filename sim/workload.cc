#include "sim/workload.h"

#include <fmt/format.h>

#include <algorithm>

#include "base/check.h"
#include "base/crc32c.h"

namespace keel::sim {
namespace {

constexpr uint8_t kFrameHello = 1;
constexpr uint8_t kFrameMessage = 2;
constexpr uint8_t kFrameAck = 3;
constexpr size_t kFrameHeaderBytes = 5;  // u32 length (type + body), u8 type
constexpr size_t kNameBytesMax = 255;
constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr std::string_view kSegmentPrefix = "seg-";
// Planted bugs (docs/simulation.md), compiled in only with -DKEEL_PLANT_BUGS=ON and chosen
// with --plant, to show the checker catches each: sim_ack_before_sync acknowledges a record
// as soon as it is written; sim_unsynced_truncate lets recovery's truncate go unsynced before
// acknowledging records written after it.
bool ack_before_sync() { return KEEL_PLANTED(sim_ack_before_sync); }
bool sync_recovery_truncate() { return !KEEL_PLANTED(sim_unsynced_truncate); }

// CRC-32C over (length, seq, payload): the integrity check of a record on disk.
uint64_t record_check(uint64_t seq, ByteView payload) {
  uint8_t head[12];
  put_be32(head, uint32_t(payload.size()));
  put_be64(head + 4, seq);
  return crc32c_extend(crc32c(ByteView(head, sizeof head)), payload);
}

// Fills `out` with bytes drawn from one value of `rng` (a cheap generator seeded by it: the
// content only needs to differ between records, and drawing per byte would dominate the run).
void fill_random(env::Random& rng, std::span<uint8_t> out) {
  uint64_t x = rng.next_u64();
  uint8_t word[8];
  for (size_t i = 0; i < out.size(); i += 8) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    put_be64(word, x ^ (x >> 29));
    std::copy_n(word, std::min<size_t>(8, out.size() - i), out.begin() + ptrdiff_t(i));
  }
}

std::string segment_name(uint64_t first_seq) {
  return fmt::format("{}{:020}", kSegmentPrefix, first_seq);
}

// "seg-00000000000000000042" -> 42; 0 if the name is not a segment.
uint64_t parse_segment_name(std::string_view name) {
  if (name.size() != kSegmentPrefix.size() + 20 || !name.starts_with(kSegmentPrefix)) return 0;
  uint64_t seq = 0;
  for (char c : name.substr(kSegmentPrefix.size())) {
    if (c < '0' || c > '9') return 0;
    seq = seq * 10 + uint64_t(c - '0');
  }
  return seq;
}

}  // namespace

struct WorkloadProcess::Segment {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;     // last written (first_seq - 1 when empty)
  uint64_t synced_upto = 0;  // every record <= this in the segment is durable
  uint64_t size = 0;
  bool dir_durable = false;
  bool sync_in_flight = false;
  bool sync_wanted = false;
  // Recovery truncated the segment and no sync has covered that yet: until one does, a crash
  // may bring the torn tail back, so nothing may be acknowledged beyond this segment.
  bool truncate_pending = false;
  std::unique_ptr<env::File> file;  // only the active (last) segment keeps one open
};

struct WorkloadProcess::Peer {
  explicit Peer(env::Clock& clock) : reconnect_timer(clock) {}
  env::Address address;
  std::unique_ptr<env::Stream> stream;
  uint64_t gen = 0;  // which stream the callbacks belong to
  bool open = false;
  int64_t backoff_ns = 0;
  env::Timer reconnect_timer;
  Bytes inbuf;
  std::deque<std::pair<uint64_t, Bytes>> outbox;  // unacknowledged (seq, frame body)
};

struct WorkloadProcess::Inbound {
  std::unique_ptr<env::Stream> stream;
  Bytes inbuf;
  bool hello = false;
  std::string from;
  uint64_t sender = 0;
  uint64_t last_seq = 0;  // highest message seq seen on this stream
};

WorkloadProcess::WorkloadProcess(env::Env& env, WorkloadOptions options)
    : env_(env),
      opt_(std::move(options)),
      obs_(opt_.observer),
      node_(env.node()),
      incarnation_id_(env.random().next_u64()),
      append_timer_(env.clock()),
      message_timer_(env.clock()),
      reap_timer_(env.clock()),
      listen_timer_(env.clock()),
      sync_timer_(env.clock()) {
  KEEL_CHECK(opt_.record_bytes_min <= opt_.record_bytes_max);
  KEEL_CHECK(opt_.message_bytes_max + 64 < kFrameBytesMax);
  KEEL_CHECK(opt_.segments_max >= 2);
  env_.trace().event("workload.start", fmt::format("{:016x}", incarnation_id_));
  recover();
  start_listening();
  for (const env::Address& address : opt_.peers) {
    auto peer = std::make_unique<Peer>(env_.clock());
    peer->address = address;
    peer->backoff_ns = opt_.backoff_min_ns;
    peers_.push_back(std::move(peer));
  }
  for (size_t p = 0; p < peers_.size(); p++) connect(p);
  schedule_append();
  schedule_messages();
}

WorkloadProcess::~WorkloadProcess() = default;

size_t WorkloadProcess::open_peers() const {
  return size_t(std::count_if(peers_.begin(), peers_.end(), [](auto& p) { return p->open; }));
}

void WorkloadProcess::violation(std::string_view what) {
  env_.trace().event("workload.violation", what);
  if (obs_ != nullptr) obs_->on_violation(node_, what);
}

// ---------------------------------------------------------------------------------------------
// Records.

uint64_t WorkloadProcess::payload_digest(ByteView payload) {
  return uint64_t{crc32c(payload)} << 32 | uint32_t(payload.size());
}

void WorkloadProcess::encode_header(uint64_t seq, ByteView payload, uint8_t* out) {
  put_be32(out, kRecordMagic);
  put_be32(out + 4, uint32_t(payload.size()));
  put_be64(out + 8, seq);
  put_be64(out + 16, record_check(seq, payload));
}

Bytes WorkloadProcess::encode_record(uint64_t seq, ByteView payload) {
  Bytes out(kRecordHeaderBytes + payload.size());
  std::copy(payload.begin(), payload.end(), out.begin() + kRecordHeaderBytes);
  encode_header(seq, payload, out.data());
  return out;
}

size_t WorkloadProcess::parse_records(ByteView data, uint64_t first_seq,
                                      std::vector<RecoveredRecord>* out, uint64_t* next_seq) {
  size_t pos = 0;
  uint64_t expected = first_seq;
  while (pos < data.size()) {
    const uint8_t* h = data.data() + pos;
    // A record starts with the magic, whose first byte is not zero; a zero byte there starts
    // padding, which may be as short as one byte.
    if (h[0] == 0) {
      // Padding: zeros up to the next sector boundary (see start_sync). Zeros that stop
      // short of a boundary are not padding but a hole (a dropped or torn sector at the end):
      // they end the log, so recovery truncates them and the next record does not land
      // after them.
      const size_t boundary = (pos / env::kSectorBytes + 1) * env::kSectorBytes;
      if (boundary > data.size()) break;
      if (!std::all_of(h, data.data() + boundary, [](uint8_t b) { return b == 0; })) break;
      pos = boundary;
      continue;
    }
    if (data.size() - pos < kRecordHeaderBytes || get_be32(h) != kRecordMagic) break;
    const uint32_t length = get_be32(h + 4);
    if (length > data.size() - pos - kRecordHeaderBytes) break;
    if (get_be64(h + 8) != expected) break;
    ByteView payload = data.subspan(pos + kRecordHeaderBytes, length);
    if (get_be64(h + 16) != record_check(expected, payload)) break;
    out->push_back(RecoveredRecord{expected, payload_digest(payload)});
    expected++;
    pos += kRecordHeaderBytes + length;
  }
  *next_seq = expected;
  return pos;
}

// ---------------------------------------------------------------------------------------------
// Disk: recovery.

void WorkloadProcess::recover() {
  auto names = env_.disk().list("");
  if (!names.ok()) {
    poison(names.status());
    return;
  }
  std::vector<uint64_t> firsts;
  for (const std::string& name : *names) {
    if (uint64_t seq = parse_segment_name(name); seq > 0) firsts.push_back(seq);
  }
  std::sort(firsts.begin(), firsts.end());
  std::vector<RecoveredRecord> log;
  uint64_t expected = firsts.empty() ? 1 : firsts.front();
  bool valid = true;
  bool removed = false;
  uint64_t total_bytes = 0;
  for (uint64_t first : firsts) {
    const std::string name = segment_name(first);
    if (!valid || first != expected) {
      // Everything after the first damage or gap is not part of the log.
      valid = false;
      removed = true;
      if (auto st = env_.disk().remove(name); !st.ok()) {
        poison(st);
        return;
      }
      continue;
    }
    auto file = env_.disk().open(name, env::OpenMode::kExisting);
    if (!file.ok()) {
      poison(file.status());
      return;
    }
    const uint64_t size = (*file)->size();
    Bytes data;
    bool read_error = false;
    while (data.size() < size && total_bytes < kLogBytesMax) {
      Bytes chunk(std::min<uint64_t>(kReadChunkBytes, size - data.size()));
      auto n = (*file)->read(data.size(), chunk);
      if (!n.ok() || *n == 0) {
        read_error = true;  // an unreadable sector: the log ends before it
        break;
      }
      data.insert(data.end(), chunk.begin(), chunk.begin() + ptrdiff_t(*n));
      total_bytes += *n;
    }
    uint64_t next = expected;
    const size_t good = parse_records(data, expected, &log, &next);
    auto seg = std::make_unique<Segment>();
    seg->first_seq = first;
    seg->last_seq = next - 1;
    seg->synced_upto = next - 1;
    seg->size = good;
    seg->dir_durable = true;
    if (good < size) {
      valid = false;
      env_.trace().event("workload.truncate",
                         fmt::format("{} {} -> {}{}", name, size, good, read_error ? " eio" : ""));
      if (auto st = (*file)->truncate(good); !st.ok()) {
        poison(st);
        return;
      }
      seg->truncate_pending = sync_recovery_truncate();
    }
    seg->file = std::move(*file);
    if (!segments_.empty()) segments_.back()->file.reset();
    segments_.push_back(std::move(seg));
    expected = next;
  }
  next_seq_ = expected;
  acked_upto_ = expected - 1;
  if (removed) env_.disk().sync_dir("", [](absl::Status) {});
  env_.trace().event("workload.recovered",
                     fmt::format("{} records, next {}", log.size(), next_seq_));
  if (obs_ != nullptr) obs_->on_recovered(node_, log);
  if (segments_.empty()) {
    if (auto st = roll_segment(); !st.ok()) poison(st);
  } else if (segments_.back()->truncate_pending) {
    request_sync(*segments_.back());
  }
}

// ---------------------------------------------------------------------------------------------
// Disk: appending, group commit, acknowledgement.

void WorkloadProcess::schedule_append() {
  if (poisoned_) return;
  const int64_t delay =
      env_.random().range(opt_.append_interval_min_ns, opt_.append_interval_max_ns);
  append_timer_.start(env::Nanos(delay), [this] { append_one(); });
}

WorkloadProcess::Segment* WorkloadProcess::find_segment(uint64_t first_seq) {
  for (auto& seg : segments_) {
    if (seg->first_seq == first_seq) return seg.get();
  }
  return nullptr;
}

absl::Status WorkloadProcess::roll_segment() {
  const std::string name = segment_name(next_seq_);
  auto file = env_.disk().open(name, env::OpenMode::kCreate);
  if (!file.ok()) return file.status();
  auto seg = std::make_unique<Segment>();
  seg->first_seq = next_seq_;
  seg->last_seq = next_seq_ - 1;
  seg->synced_upto = next_seq_ - 1;
  seg->size = (*file)->size();
  seg->file = std::move(*file);
  KEEL_CHECK_EQ(seg->size, 0u);
  if (!segments_.empty()) segments_.back()->file.reset();
  segments_.push_back(std::move(seg));
  env_.trace().event("workload.roll", name);
  // The new name is durable only after the directory sync: acks in it wait for that.
  std::weak_ptr<int> alive = alive_;
  env_.disk().sync_dir("", [this, alive, first = next_seq_](absl::Status status) {
    if (!alive.expired()) on_dir_synced(first, std::move(status));
  });
  trim();
  return absl::OkStatus();
}

void WorkloadProcess::append_one() {
  if (poisoned_) return;
  Segment* active = segments_.back().get();
  const bool settled = !active->sync_in_flight && active->synced_upto == active->last_seq &&
                       active->dir_durable && !active->truncate_pending;
  // BUGGIFY: roll early, so tiny segments and many directory operations get exercised.
  // A segment is named by its first record, so only a segment with records can be followed.
  const bool has_records = active->last_seq >= active->first_seq;
  const bool full = has_records && (active->size >= opt_.segment_bytes_max ||
                                    KEEL_BUGGIFY(env_, "workload.early_roll"));
  if (full && settled) {
    if (auto st = roll_segment(); !st.ok()) {
      env_.trace().event("workload.roll_failed", st.ToString());
      append_timer_.start(env::Nanos(opt_.write_retry_ns), [this] { append_one(); });
      return;
    }
    active = segments_.back().get();
  }
  // BUGGIFY: a burst of records before the next sync (a large group commit).
  const int count = KEEL_BUGGIFY(env_, "workload.burst") ? 8 : 1;
  for (int i = 0; i < count; i++) {
    const size_t n =
        size_t(env_.random().range(int64_t(opt_.record_bytes_min), int64_t(opt_.record_bytes_max)));
    Bytes record(kRecordHeaderBytes + n);
    const std::span<uint8_t> payload(record.data() + kRecordHeaderBytes, n);
    fill_random(env_.random(), payload);
    encode_header(next_seq_, payload, record.data());
    const uint64_t old_size = active->file->size();
    if (auto st = active->file->append(record); !st.ok()) {
      env_.trace().event("workload.write_failed", st.ToString());
      // A failed write must not leave a partial record behind for the next one to follow.
      if (active->file->size() != old_size) {
        if (auto t = active->file->truncate(old_size); !t.ok()) {
          poison(t);
          return;
        }
      }
      append_timer_.start(env::Nanos(opt_.write_retry_ns), [this] { append_one(); });
      if (i > 0) request_sync(*active);
      return;
    }
    const uint64_t digest = payload_digest(payload);
    unacked_[next_seq_] = digest;
    if (obs_ != nullptr) obs_->on_written(node_, next_seq_, digest);
    active->last_seq = next_seq_;
    active->size = active->file->size();
    next_seq_++;
    if (ack_before_sync()) advance_acks();
  }
  request_sync(*active);
  schedule_append();
}

void WorkloadProcess::request_sync(Segment& seg) {
  if (seg.sync_in_flight) {
    seg.sync_wanted = true;
    return;
  }
  if (sync_timer_.armed()) return;
  const int64_t delay = env_.random().range(0, opt_.sync_delay_max_ns);
  sync_timer_.start(env::Nanos(delay), [this, first = seg.first_seq] {
    Segment* seg = find_segment(first);
    if (seg != nullptr && seg->file != nullptr && !poisoned_) start_sync(*seg);
  });
}

void WorkloadProcess::start_sync(Segment& seg) {
  KEEL_CHECK(!seg.sync_in_flight);
  // Pad to a sector boundary, so the next write starts a fresh sector: a sector holding
  // acknowledged records is never rewritten, so a torn write can never reach them (env/disk.h
  // allows a crash to turn an unsynced sector into garbage; real devices write whole
  // sectors, not the bytes that changed).
  const uint64_t tail = seg.size % env::kSectorBytes;
  if (tail != 0) {
    const Bytes zeros(env::kSectorBytes - tail, 0);
    if (auto st = seg.file->append(zeros); !st.ok()) {
      // Nothing changed (a failed write changes nothing); retry the whole sync later.
      env_.trace().event("workload.write_failed", st.ToString());
      sync_timer_.start(env::Nanos(opt_.write_retry_ns), [this, first = seg.first_seq] {
        Segment* seg = find_segment(first);
        if (seg != nullptr && seg->file != nullptr && !poisoned_) start_sync(*seg);
      });
      return;
    }
    seg.size = seg.file->size();
  }
  seg.sync_in_flight = true;
  seg.sync_wanted = false;
  seg.file->sync([this, first = seg.first_seq, upto = seg.last_seq](absl::Status status) {
    on_sync_done(first, upto, std::move(status));
  });
}

void WorkloadProcess::on_sync_done(uint64_t first_seq, uint64_t upto_seq, absl::Status status) {
  Segment* seg = find_segment(first_seq);
  if (seg == nullptr) return;
  seg->sync_in_flight = false;
  if (!status.ok()) {
    poison(status);
    return;
  }
  seg->synced_upto = std::max(seg->synced_upto, upto_seq);
  seg->truncate_pending = false;  // every sync was issued after recovery's truncate
  advance_acks();
  if (seg->sync_wanted && seg->last_seq > seg->synced_upto && seg->file != nullptr) {
    start_sync(*seg);
  }
}

void WorkloadProcess::on_dir_synced(uint64_t first_seq, absl::Status status) {
  if (!status.ok()) {
    poison(status);
    return;
  }
  if (Segment* seg = find_segment(first_seq); seg != nullptr) seg->dir_durable = true;
  advance_acks();
}

void WorkloadProcess::advance_acks() {
  if (poisoned_) return;
  for (const auto& seg : segments_) {
    while (acked_upto_ + 1 >= seg->first_seq && acked_upto_ + 1 <= seg->last_seq) {
      const uint64_t seq = acked_upto_ + 1;
      const bool durable = seg->dir_durable && seg->synced_upto >= seq && !seg->truncate_pending;
      if (!durable && !ack_before_sync()) return;
      auto it = unacked_.find(seq);
      KEEL_CHECK(it != unacked_.end(), "ack of unwritten record {}", seq);
      if (obs_ != nullptr) obs_->on_acked(node_, seq, it->second);
      unacked_.erase(it);
      acked_upto_ = seq;
    }
  }
}

void WorkloadProcess::trim() {
  while (segments_.size() > opt_.segments_max) {
    Segment& oldest = *segments_.front();
    if (acked_upto_ < oldest.last_seq || oldest.file != nullptr) return;
    const std::string name = segment_name(oldest.first_seq);
    if (auto st = env_.disk().remove(name); !st.ok()) {
      env_.trace().event("workload.trim_failed", st.ToString());
      return;
    }
    segments_.erase(segments_.begin());
    env_.trace().event("workload.trim", name);
    if (obs_ != nullptr) obs_->on_trimmed(node_, segments_.front()->first_seq);
  }
}

void WorkloadProcess::poison(const absl::Status& status) {
  if (poisoned_) return;
  poisoned_ = true;
  append_timer_.cancel();
  env_.trace().event("workload.poisoned", status.ToString());
  if (obs_ != nullptr) obs_->on_disk_failed(node_, status);
}

// ---------------------------------------------------------------------------------------------
// Network: outgoing streams to peers.

void WorkloadProcess::start_listening() {
  auto listener = env_.network().listen(
      opt_.listen, [this](std::unique_ptr<env::Stream> stream) { accept(std::move(stream)); });
  if (!listener.ok()) {
    env_.trace().event("workload.listen_failed", listener.status().ToString());
    listen_timer_.start(env::Nanos(opt_.backoff_max_ns), [this] { start_listening(); });
    return;
  }
  listener_ = std::move(*listener);
}

void WorkloadProcess::connect(size_t p) {
  Peer& peer = *peers_[p];
  if (peer.stream != nullptr) {
    peer.stream->close();
    graveyard_.push_back(std::move(peer.stream));
  }
  const uint64_t gen = ++peer.gen;
  peer.open = false;
  peer.inbuf.clear();
  peer.stream = env_.network().connect(peer.address);
  env::Stream::Handlers handlers;
  handlers.on_open = [this, p, gen] {
    Peer& peer = *peers_[p];
    if (gen != peer.gen) return;
    peer.open = true;
    peer.backoff_ns = opt_.backoff_min_ns;
    Bytes hello(10 + node_.size());
    put_be64(hello.data(), incarnation_id_);
    put_be16(hello.data() + 8, uint16_t(node_.size()));
    std::copy(node_.begin(), node_.end(), hello.begin() + 10);
    (void)send_frame(*peer.stream, kFrameHello, hello);
    // Everything not yet acknowledged goes again: the receiver may have it already (a
    // duplicate across reconnections) or never have seen it (lost with the old stream).
    for (const auto& [seq, body] : peer.outbox) (void)send_frame(*peer.stream, kFrameMessage, body);
  };
  handlers.on_data = [this, p, gen](ByteView data) { on_peer_data(p, gen, data); };
  handlers.on_close = [this, p, gen](absl::Status status) {
    on_peer_closed(p, gen, std::move(status));
  };
  peer.stream->set_handlers(std::move(handlers));
}

void WorkloadProcess::on_peer_closed(size_t p, uint64_t gen, absl::Status status) {
  Peer& peer = *peers_[p];
  if (gen != peer.gen) return;
  peer.open = false;
  // Not destroyed inside its own callback (the Stream contract): freed from a later event.
  graveyard_.push_back(std::move(peer.stream));
  reap_timer_.start(env::Nanos(0), [this] { reap(); });
  schedule_reconnect(p);
}

void WorkloadProcess::schedule_reconnect(size_t p) {
  Peer& peer = *peers_[p];
  const int64_t jitter = env_.random().range(0, peer.backoff_ns / 2);
  const int64_t delay = peer.backoff_ns + jitter;
  peer.backoff_ns = std::min(peer.backoff_ns * 2, opt_.backoff_max_ns);
  peer.reconnect_timer.start(env::Nanos(delay), [this, p] { connect(p); });
}

void WorkloadProcess::on_peer_data(size_t p, uint64_t gen, ByteView data) {
  Peer& peer = *peers_[p];
  if (gen != peer.gen) return;
  peer.inbuf.insert(peer.inbuf.end(), data.begin(), data.end());
  size_t pos = 0;
  while (peer.inbuf.size() - pos >= kFrameHeaderBytes) {
    const uint32_t length = get_be32(peer.inbuf.data() + pos);
    if (length == 0 || length > kFrameBytesMax) {
      violation(fmt::format("bad frame length {} from {}", length, peer.address.to_string()));
      peer.inbuf.clear();
      return;
    }
    if (peer.inbuf.size() - pos < 4 + size_t(length)) break;
    const uint8_t type = peer.inbuf[pos + 4];
    ByteView body(peer.inbuf.data() + pos + kFrameHeaderBytes, length - 1);
    if (type != kFrameAck || body.size() != 8) {
      violation(fmt::format("unexpected frame type {} on an outgoing stream", type));
    } else {
      const uint64_t acked = get_be64(body.data());
      while (!peer.outbox.empty() && peer.outbox.front().first <= acked) peer.outbox.pop_front();
    }
    pos += 4 + length;
  }
  peer.inbuf.erase(peer.inbuf.begin(), peer.inbuf.begin() + ptrdiff_t(pos));
}

void WorkloadProcess::schedule_messages() {
  const int64_t delay =
      env_.random().range(opt_.message_interval_min_ns, opt_.message_interval_max_ns);
  message_timer_.start(env::Nanos(delay), [this] { send_messages(); });
}

void WorkloadProcess::send_messages() {
  for (size_t p = 0; p < peers_.size(); p++) {
    Peer& peer = *peers_[p];
    if (!peer.open || peer.outbox.size() >= opt_.outbox_messages_max) continue;
    // BUGGIFY: drop a healthy connection on purpose (an orderly close, then a reconnect).
    if (KEEL_BUGGIFY(env_, "workload.drop_connection")) {
      peer.stream->close();
      graveyard_.push_back(std::move(peer.stream));
      peer.open = false;
      peer.gen++;
      reap_timer_.start(env::Nanos(0), [this] { reap(); });
      schedule_reconnect(p);
      continue;
    }
    const size_t n = size_t(env_.random().range(0, int64_t(opt_.message_bytes_max)));
    Bytes body(16 + n);
    const std::span<uint8_t> payload(body.data() + 16, n);
    fill_random(env_.random(), payload);
    const uint64_t seq = next_msg_seq_++;
    const uint64_t digest = payload_digest(payload);
    put_be64(body.data(), seq);
    put_be64(body.data() + 8, digest);
    if (obs_ != nullptr) obs_->on_sent(node_, incarnation_id_, seq, digest);
    // A failed send means the stream is going away; the message stays in the outbox and
    // goes again on the next stream.
    (void)send_frame(*peer.stream, kFrameMessage, body);
    peer.outbox.emplace_back(seq, std::move(body));
  }
  schedule_messages();
}

absl::Status WorkloadProcess::send_frame(env::Stream& stream, uint8_t type, ByteView body) {
  KEEL_CHECK(body.size() + 1 <= kFrameBytesMax);
  Bytes frame(kFrameHeaderBytes + body.size());
  put_be32(frame.data(), uint32_t(body.size() + 1));
  frame[4] = type;
  std::copy(body.begin(), body.end(), frame.begin() + kFrameHeaderBytes);
  // BUGGIFY: the frame goes out in two sends, split inside its header, so receivers see
  // partial frames (TCP may deliver any split; this makes the rare ones common).
  if (KEEL_BUGGIFY(env_, "workload.split_frame")) {
    const size_t cut = size_t(env_.random().range(1, int64_t(kFrameHeaderBytes)));
    if (auto st = stream.send(ByteView(frame).first(cut)); !st.ok()) return st;
    return stream.send(ByteView(frame).subspan(cut));
  }
  return stream.send(frame);
}

// ---------------------------------------------------------------------------------------------
// Network: incoming streams from peers.

void WorkloadProcess::accept(std::unique_ptr<env::Stream> stream) {
  const uint64_t id = next_inbound_id_++;
  auto in = std::make_unique<Inbound>();
  in->stream = std::move(stream);
  env::Stream::Handlers handlers;
  handlers.on_data = [this, id](ByteView data) { on_inbound_data(id, data); };
  handlers.on_close = [this, id](absl::Status) {
    auto it = inbound_.find(id);
    if (it == inbound_.end()) return;
    graveyard_.push_back(std::move(it->second->stream));
    inbound_.erase(it);
    reap_timer_.start(env::Nanos(0), [this] { reap(); });
  };
  in->stream->set_handlers(std::move(handlers));
  inbound_[id] = std::move(in);
}

void WorkloadProcess::on_inbound_data(uint64_t id, ByteView data) {
  auto it = inbound_.find(id);
  if (it == inbound_.end()) return;
  Inbound& in = *it->second;
  in.inbuf.insert(in.inbuf.end(), data.begin(), data.end());
  size_t pos = 0;
  while (in.inbuf.size() - pos >= kFrameHeaderBytes) {
    const uint32_t length = get_be32(in.inbuf.data() + pos);
    if (length == 0 || length > kFrameBytesMax) {
      violation(fmt::format("bad frame length {} on an incoming stream", length));
      in.inbuf.clear();
      in.stream->close();
      return;
    }
    if (in.inbuf.size() - pos < 4 + size_t(length)) break;
    const uint8_t type = in.inbuf[pos + 4];
    on_inbound_frame(in, type, ByteView(in.inbuf.data() + pos + kFrameHeaderBytes, length - 1));
    pos += 4 + length;
  }
  in.inbuf.erase(in.inbuf.begin(), in.inbuf.begin() + ptrdiff_t(pos));
}

void WorkloadProcess::on_inbound_frame(Inbound& in, uint8_t type, ByteView body) {
  if (type == kFrameHello) {
    if (in.hello || body.size() < 10) return violation("bad or repeated hello");
    const size_t name_bytes = get_be16(body.data() + 8);
    if (name_bytes > kNameBytesMax || body.size() != 10 + name_bytes) {
      return violation("bad hello");
    }
    in.hello = true;
    in.sender = get_be64(body.data());
    in.from = std::string(as_chars(body.subspan(10)));
    return;
  }
  if (type != kFrameMessage || !in.hello || body.size() < 16) {
    return violation(fmt::format("unexpected frame type {} on an incoming stream", type));
  }
  const uint64_t seq = get_be64(body.data());
  const uint64_t digest = get_be64(body.data() + 8);
  if (payload_digest(body.subspan(16)) != digest) {
    return violation(fmt::format("corrupt message {} from {}", seq, in.from));
  }
  if (seq <= in.last_seq) {
    return violation(
        fmt::format("message {} after {} on one stream from {}", seq, in.last_seq, in.from));
  }
  in.last_seq = seq;
  auto& seen = seen_[{in.from, in.sender}];
  const bool duplicate = seen.contains(seq);
  if (duplicate) {
    duplicates_received_++;
  } else {
    seen.insert(seq);
  }
  messages_received_++;
  if (obs_ != nullptr) obs_->on_received(node_, in.from, in.sender, seq, digest, duplicate);
  // BUGGIFY: withhold this acknowledgement; the sender keeps the message and sends it again
  // on its next stream, which the dedup above must absorb.
  if (KEEL_BUGGIFY(env_, "workload.withhold_ack")) return;
  uint8_t ack[8];
  put_be64(ack, seq);
  (void)send_frame(*in.stream, kFrameAck, ByteView(ack, 8));
}

void WorkloadProcess::reap() { graveyard_.clear(); }

// ---------------------------------------------------------------------------------------------
// The checker.

void WorkloadChecker::fail(std::string what) {
  violation_count_++;
  if (violations_.size() < kViolationsKept) violations_.push_back(std::move(what));
}

void WorkloadChecker::on_written(std::string_view node, uint64_t seq, uint64_t digest) {
  counts_.written++;
  written_[std::string(node)][seq].insert(digest);
}

void WorkloadChecker::on_acked(std::string_view node, uint64_t seq, uint64_t digest) {
  counts_.acked++;
  auto& acked = acked_[std::string(node)];
  auto [it, inserted] = acked.emplace(seq, digest);
  if (!inserted && it->second != digest && !excused_.contains(node)) {
    fail(fmt::format("{}: record {} acknowledged twice with different bytes", node, seq));
  }
  it->second = digest;
}

void WorkloadChecker::on_trimmed(std::string_view node, uint64_t first_seq) {
  auto& acked = acked_[std::string(node)];
  acked.erase(acked.begin(), acked.lower_bound(first_seq));
}

void WorkloadChecker::on_recovered(std::string_view node, const std::vector<RecoveredRecord>& log) {
  counts_.recoveries++;
  counts_.recovered_records += log.size();
  const std::string name(node);
  std::map<uint64_t, uint64_t> have;
  for (const RecoveredRecord& r : log) {
    have[r.seq] = r.digest;
    auto w = written_[name].find(r.seq);
    if (w == written_[name].end() || !w->second.contains(r.digest)) {
      fail(fmt::format("{}: recovered record {} ({:016x}) that was never written", node, r.seq,
                       r.digest));
    }
  }
  auto& acked = acked_[name];
  if (excused_.contains(node)) {
    // What survived on a corrupted disk is all it can promise from now on.
    acked.clear();
    for (const auto& [seq, digest] : have) acked[seq] = digest;
    return;
  }
  for (const auto& [seq, digest] : acked) {
    auto it = have.find(seq);
    if (it == have.end()) {
      fail(fmt::format("{}: acknowledged record {} lost after a crash", node, seq));
    } else if (it->second != digest) {
      fail(fmt::format("{}: acknowledged record {} changed after a crash", node, seq));
    }
  }
}

void WorkloadChecker::on_sent(std::string_view node, uint64_t sender, uint64_t seq,
                              uint64_t digest) {
  counts_.sent++;
  sent_[{std::string(node), sender, seq}] = digest;
}

void WorkloadChecker::on_received(std::string_view node, std::string_view from, uint64_t sender,
                                  uint64_t seq, uint64_t digest, bool duplicate) {
  counts_.received++;
  if (duplicate) counts_.duplicates++;
  auto it = sent_.find({std::string(from), sender, seq});
  if (it == sent_.end()) {
    fail(fmt::format("{}: received message {} from {} that was never sent", node, seq, from));
  } else if (it->second != digest) {
    fail(fmt::format("{}: message {} from {} arrived with other bytes", node, seq, from));
  }
}

void WorkloadChecker::on_violation(std::string_view node, std::string_view what) {
  fail(fmt::format("{}: {}", node, what));
}

void WorkloadChecker::on_disk_failed(std::string_view node, const absl::Status& status) {
  counts_.disk_failures++;
}

size_t WorkloadChecker::acked_outstanding() const {
  size_t n = 0;
  for (const auto& [node, acked] : acked_) n += acked.size();
  return n;
}

}  // namespace keel::sim
