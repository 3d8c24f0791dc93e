#include "sim/disk.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>

#include "base/check.h"

namespace keel::sim {

using env::kSectorBytes;

namespace {

// Largest simulated file: its current and durable images are flat vectors in memory.
constexpr uint64_t kFileBytesMax = uint64_t{1} << 34;
// A torn sector keeping a prefix of the new data keeps it in units of this many bytes (the
// device's atomic write unit within a 4 KiB page).
constexpr size_t kTearUnitBytes = 512;
static_assert(kSectorBytes % kTearUnitBytes == 0);

uint64_t div_ceil(uint64_t a, uint64_t b) { return a / b + (a % b != 0 ? 1 : 0); }
uint64_t sectors_for(uint64_t bytes) { return div_ceil(bytes, kSectorBytes); }

// Paths: relative, '/'-separated, no empty, "." or ".." components. The data directory
// itself is "" (allowed only where a directory is expected and `allow_root`).
bool valid_path(std::string_view path, bool allow_root) {
  if (path.empty()) return allow_root;
  if (path.size() > SimDisk::kPathBytesMax) return false;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view part = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

// Splits "a/b/c" into ("a/b", "c") and "c" into ("", "c").
std::pair<std::string_view, std::string_view> split_path(std::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {std::string_view(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::string join_path(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string out;
  out.reserve(dir.size() + 1 + name.size());
  out.append(dir).append("/").append(name);
  return out;
}

// True if `path` is `dir` or lies below it.
bool in_subtree(std::string_view path, std::string_view dir) {
  if (path.size() < dir.size() || path.substr(0, dir.size()) != dir) return false;
  return path.size() == dir.size() || path[dir.size()] == '/';
}

// A fast digest of written bytes for the trace, so that nondeterministic data (say,
// uninitialised memory) changes the trace hash. Eight bytes per step; not for integrity.
uint64_t data_digest(ByteView data) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ data.size();
  size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, data.data() + i, 8);
    h = (h ^ word) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 31;
  }
  for (; i < data.size(); i++) h = (h ^ data[i]) * 0x100000001b3ULL;
  return h ^ (h >> 29);
}

// memset in fixed-size blocks: inlined as plain stores, where libc's memset of kilobytes is
// a `rep stosb` that callgrind counts as one instruction per byte.
void zero_bytes(uint8_t* p, size_t n) {
  constexpr size_t kBlock = 256;
  for (; n >= kBlock; n -= kBlock, p += kBlock) std::memset(p, 0, kBlock);
  std::memset(p, 0, n);
}

absl::Status dead_handle() {
  return absl::FailedPreconditionError("file handle from before a crash (dead)");
}

}  // namespace

// A File handle: forwards to the disk while the disk lives and no crash happened since open.
// It points at its inode directly (saving a map lookup per call): while the handle is live,
// its own reference keeps the inode alive.
class SimFile final : public env::File {
 public:
  SimFile(SimDisk::LinkRef link, uint64_t epoch, SimDisk::Inode* inode, uint64_t handle)
      : link_(std::move(link)), epoch_(epoch), inode_(inode), handle_(handle) {}
  ~SimFile() override {
    if (SimDisk* disk = live()) disk->file_close(*inode_, handle_);
  }

  absl::StatusOr<size_t> read(uint64_t offset, std::span<uint8_t> out) override {
    SimDisk* disk = live();
    if (disk == nullptr) return dead_handle();
    return disk->file_read(*inode_, offset, out);
  }
  absl::Status write(uint64_t offset, ByteView data) override {
    SimDisk* disk = live();
    if (disk == nullptr) return dead_handle();
    return disk->file_write(*inode_, offset, data);
  }
  absl::Status truncate(uint64_t size) override {
    SimDisk* disk = live();
    if (disk == nullptr) return dead_handle();
    return disk->file_truncate(*inode_, size);
  }
  uint64_t size() const override {
    const SimDisk* disk = live();
    return disk == nullptr ? 0 : disk->file_size(*inode_);
  }
  void sync(env::DoneFn done) override {
    if (SimDisk* disk = live()) return disk->file_sync(*inode_, handle_, std::move(done));
    // A dead handle still answers, as an event, as long as the disk exists.
    if (link_->disk != nullptr) link_->disk->deliver_later(std::move(done), dead_handle());
  }

 private:
  SimDisk* live() const {
    SimDisk* disk = link_->disk;
    return disk != nullptr && disk->process_epoch_ == epoch_ ? disk : nullptr;
  }

  SimDisk::LinkRef link_;
  uint64_t epoch_;  // the disk's process epoch at open
  SimDisk::Inode* inode_;
  uint64_t handle_;
};

// ---- DiskStats ---------------------------------------------------------------------------

// clang-format off
#define KEEL_DISK_STATS_FIELDS(X) \
  X(writes) \
  X(bytes_written) \
  X(reads) \
  X(bytes_read) \
  X(syncs) \
  X(syncs_completed) \
  X(bytes_synced) \
  X(dir_syncs) \
  X(dir_ops) \
  X(write_eio) \
  X(sync_eio) \
  X(read_eio) \
  X(enospc) \
  X(crashes) \
  X(process_crashes) \
  X(crash_sectors_kept) \
  X(crash_sectors_dropped) \
  X(crash_sectors_torn) \
  X(crash_truncates_kept) \
  X(crash_truncates_lost) \
  X(crash_dir_ops_kept) \
  X(crash_dir_ops_lost) \
  X(crash_callbacks_dropped) \
  X(bit_flips) \
  X(lost_writes) \
  X(misdirected_writes) \
  X(unreadable_sectors) \
  X(lying_syncs)
// clang-format on

#define KEEL_COUNT_FIELD(name) +1
static_assert(sizeof(DiskStats) == sizeof(uint64_t) * (0 KEEL_DISK_STATS_FIELDS(KEEL_COUNT_FIELD)),
              "every DiskStats field must be listed in KEEL_DISK_STATS_FIELDS");
#undef KEEL_COUNT_FIELD

DiskStats& DiskStats::operator+=(const DiskStats& other) {
#define KEEL_ADD_FIELD(name) name += other.name;
  KEEL_DISK_STATS_FIELDS(KEEL_ADD_FIELD)
#undef KEEL_ADD_FIELD
  return *this;
}

std::string DiskStats::summary() const {
  std::string out;
#define KEEL_PRINT_FIELD(name) \
  fmt::format_to(std::back_inserter(out), "{}{}={}", out.empty() ? "" : " ", #name, name);
  KEEL_DISK_STATS_FIELDS(KEEL_PRINT_FIELD)
#undef KEEL_PRINT_FIELD
  return out;
}

// ---- Pages ---------------------------------------------------------------------------------

SimDisk::PagePool::~PagePool() {
  KEEL_CHECK(pages_out_ == 0, "{} pages outlive their disk", pages_out_);
  for (Page* page : free_) delete page;
}

SimDisk::PageRef SimDisk::PagePool::take() {
  Page* page = nullptr;
  if (free_.empty()) {
    page = new Page;
    page->pool = this;
  } else {
    page = free_.back();
    free_.pop_back();
  }
  KEEL_CHECK(page->pool == this && page->refs == 0);
  pages_out_++;
  return PageRef(page);
}

void SimDisk::PagePool::give(Page* page) {
  KEEL_CHECK(page->pool == this && page->refs == 0 && pages_out_ > 0);
  pages_out_--;
  if (free_.size() < kFreePagesMax) {
    free_.push_back(page);
  } else {
    delete page;
  }
}

// ---- Image -------------------------------------------------------------------------------

void SimDisk::Image::resize(uint64_t size) {
  if (size < size_ && size % kSectorBytes != 0) {
    const uint64_t last = size / kSectorBytes;
    if (chunks_[last] != nullptr) {
      std::memset(mutable_sector(last) + size % kSectorBytes, 0,
                  kSectorBytes - size % kSectorBytes);
    }
  }
  chunks_.resize(sectors_for(size));
  size_ = size;
}

size_t SimDisk::Image::read(uint64_t offset, std::span<uint8_t> out) const {
  KEEL_CHECK_LE(offset, size_);
  const size_t n = size_t(std::min<uint64_t>(out.size(), size_ - offset));
  size_t done = 0;
  while (done < n) {
    const uint64_t at = offset + done;
    const uint64_t in_sector = at % kSectorBytes;
    const size_t take = size_t(std::min<uint64_t>(kSectorBytes - in_sector, n - done));
    const Chunk& c = chunks_[at / kSectorBytes];
    if (c == nullptr) {
      std::memset(out.data() + done, 0, take);
    } else {
      std::memcpy(out.data() + done, c->data() + in_sector, take);
    }
    done += take;
  }
  return n;
}

void SimDisk::Image::write(uint64_t offset, ByteView data) {
  if (offset + data.size() > size_) {
    chunks_.resize(sectors_for(offset + data.size()));
    size_ = offset + data.size();
  }
  size_t done = 0;
  while (done < data.size()) {
    const uint64_t at = offset + done;
    const uint64_t in_sector = at % kSectorBytes;
    const size_t take = size_t(std::min<uint64_t>(kSectorBytes - in_sector, data.size() - done));
    uint8_t* dst = overwrite_sector(at / kSectorBytes, in_sector, in_sector + take);
    std::memcpy(dst + in_sector, data.data() + done, take);
    done += take;
  }
}

void SimDisk::Image::set_chunk(uint64_t sector, Chunk chunk) {
  KEEL_CHECK_LT(sector, chunks_.size());
  chunks_[sector] = std::move(chunk);
}

Bytes SimDisk::Image::sector_bytes(uint64_t sector) const {
  Bytes out(kSectorBytes, 0);
  if (sector < chunks_.size() && chunks_[sector] != nullptr) {
    std::memcpy(out.data(), chunks_[sector]->data(), kSectorBytes);
  }
  return out;
}

uint8_t* SimDisk::Image::overwrite_sector(uint64_t sector, size_t begin, size_t end) {
  KEEL_CHECK(begin <= end && end <= kSectorBytes);
  Chunk& c = chunks_[sector];
  if (c != nullptr && c.use_count() == 1) {  // not shared: write in place
    c.set_zero_from(std::max(c.zero_from(), end));
    return c->data();
  }
  Chunk fresh = pool_->take();  // unspecified bytes before its zero_from
  uint8_t* dst = fresh->data();
  const size_t dirty = fresh.zero_from();
  size_t zero_from;
  if (c == nullptr) {
    std::memset(dst, 0, std::min(begin, dirty));
    zero_from = end;
  } else {
    std::memcpy(dst, c->data(), begin);
    zero_from = std::max(end, c.zero_from());
    std::memcpy(dst + end, c->data() + end, zero_from - end);
  }
  if (dirty > zero_from) zero_bytes(dst + zero_from, dirty - zero_from);
  fresh.set_zero_from(zero_from);
  c = std::move(fresh);
  return dst;
}

// ---- SimDisk: construction, knobs ---------------------------------------------------------

SimDisk::SimDisk(Scheduler& scheduler, env::Random rng, std::string node)
    : scheduler_(scheduler),
      node_(std::move(node)),
      latency_rng_(rng.derive("disk/latency")),
      fault_rng_(rng.derive("disk/faults")),
      crash_rng_(rng.derive("disk/crash")),
      link_(new Link) {
  link_->disk = this;
  current_.try_emplace("");
  durable_.try_emplace("");
}

SimDisk::~SimDisk() {
  // Cut the link first: destroying pending callbacks may destroy File handles.
  link_->disk = nullptr;
}

void SimDisk::set_faults(const DiskFaults& faults) {
  const uint64_t m = DiskFaults::kMillion;
  KEEL_CHECK(faults.write_eio_ppm <= m && faults.sync_eio_ppm <= m && faults.sync_slow_ppm <= m);
  KEEL_CHECK(faults.bit_flip_ppm <= m && faults.lost_write_ppm <= m &&
             faults.misdirected_write_ppm <= m && faults.unreadable_ppm <= m &&
             faults.lying_sync_ppm <= m);
  KEEL_CHECK(0 <= faults.sync_latency_min_ns &&
                 faults.sync_latency_min_ns <= faults.sync_latency_max_ns &&
                 faults.sync_latency_max_ns <= faults.sync_slow_latency_max_ns,
             "sync latency bounds {} {} {}", faults.sync_latency_min_ns, faults.sync_latency_max_ns,
             faults.sync_slow_latency_max_ns);
  KEEL_CHECK(
      uint64_t{faults.crash_keep_weight} + faults.crash_drop_weight + faults.crash_tear_weight > 0);
  faults_ = faults;
}

void SimDisk::record(std::string_view kind, std::string_view detail) {
  scheduler_.record(node_, kind, detail);
}

int64_t SimDisk::draw_sync_latency() {
  if (latency_rng_.chance(faults_.sync_slow_ppm, DiskFaults::kMillion)) {
    return latency_rng_.range(faults_.sync_latency_max_ns, faults_.sync_slow_latency_max_ns);
  }
  return latency_rng_.range(faults_.sync_latency_min_ns, faults_.sync_latency_max_ns);
}

void SimDisk::deliver_later(env::DoneFn done, absl::Status status) {
  if (!done) return;
  scheduler_.after(0, [link = link_, epoch = process_epoch_, done = std::move(done),
                       status = std::move(status)]() mutable {
    if (link->disk != nullptr && link->disk->process_epoch_ == epoch) done(std::move(status));
  });
}

// ---- Inodes, references, accounting --------------------------------------------------------

SimDisk::Inode& SimDisk::inode(uint64_t ino) {
  auto it = inodes_.find(ino);
  KEEL_CHECK(it != inodes_.end(), "inode {} does not exist", ino);
  return *it->second;
}

void SimDisk::ref(uint64_t ino) { inode(ino).refs++; }

void SimDisk::unref(uint64_t ino) { unref(inode(ino)); }

void SimDisk::unref(Inode& f) {
  KEEL_CHECK(f.refs > 0);
  if (--f.refs > 0) return;
  used_bytes_ -= footprint(f);
  inodes_.erase(f.id);
}

uint64_t SimDisk::footprint(const Inode& f) {
  return sectors_for(std::max(f.cache.size(), f.durable.size())) * kSectorBytes;
}

absl::Status SimDisk::reserve(const Inode& f, uint64_t new_cache_size) {
  const uint64_t before = footprint(f);
  const uint64_t after =
      sectors_for(std::max<uint64_t>(new_cache_size, f.durable.size())) * kSectorBytes;
  if (new_cache_size > kFileBytesMax ||
      (after > before && used_bytes_ + (after - before) > faults_.capacity_bytes)) {
    stats_.enospc++;
    record("disk.enospc", fmt::format("i{} size={} used={}", f.id, new_cache_size, used_bytes_));
    return absl::ResourceExhaustedError(
        fmt::format("ENOSPC: {} bytes used of {}", used_bytes_, faults_.capacity_bytes));
  }
  return absl::OkStatus();
}

const SimDisk::Entry* SimDisk::find_current(std::string_view path) const {
  if (!valid_path(path, false)) return nullptr;
  const auto [dir, name] = split_path(path);
  auto d = current_.find(dir);
  if (d == current_.end()) return nullptr;
  auto e = d->second.find(name);
  return e == d->second.end() ? nullptr : &e->second;
}

const SimDisk::Inode* SimDisk::find_file(std::string_view path) const {
  const Entry* e = find_current(path);
  if (e == nullptr || e->is_dir) return nullptr;
  return inodes_.at(e->ino).get();
}

SimDisk::Inode* SimDisk::find_file(std::string_view path) {
  return const_cast<Inode*>(std::as_const(*this).find_file(path));
}

// Sets (or with nullopt removes) `name` in `dir` of `ns`, keeping reference counts: the new
// file gains one, a replaced or removed file loses one, and a replaced or removed directory
// takes its whole subtree with it.
void SimDisk::set_entry(Namespace& ns, std::string_view dir, std::string_view name,
                        std::optional<Entry> entry) {
  Dir& d = ns.try_emplace(std::string(dir)).first->second;
  std::optional<Entry> old;
  auto it = d.find(name);
  if (it != d.end()) old = it->second;
  if (entry) {
    if (!entry->is_dir) ref(entry->ino);
    if (it != d.end()) {
      it->second = *entry;
    } else {
      d.emplace(std::string(name), *entry);
    }
  } else if (it != d.end()) {
    d.erase(it);
  }
  if (entry && entry->is_dir) ns.try_emplace(join_path(dir, name));
  if (!old) return;
  if (!old->is_dir) {
    unref(old->ino);
    return;
  }
  if (entry && entry->is_dir) return;  // a directory replaced by itself (make_dir again)
  // The directory went away: drop its subtree (in path order, parents first).
  const std::string path = join_path(dir, name);
  std::vector<std::string> doomed;
  for (auto sub = ns.lower_bound(path); sub != ns.end() && in_subtree(sub->first, path); ++sub) {
    doomed.push_back(sub->first);
  }
  for (const std::string& p : doomed) {
    auto sub = ns.find(p);
    Dir entries = std::move(sub->second);
    ns.erase(sub);
    for (const auto& [n, e] : entries) {
      if (!e.is_dir) unref(e.ino);
    }
  }
}

void SimDisk::push_dir_op(std::string_view dir, std::vector<DirChange> changes) {
  for (const DirChange& c : changes) {
    if (c.entry && !c.entry->is_dir) ref(c.entry->ino);
  }
  auto& queue = dir_ops_.try_emplace(std::string(dir)).first->second;
  queue.push_back(DirOp{next_dir_op_seq_++, std::move(changes)});
  stats_.dir_ops++;
}

// ---- File operations -----------------------------------------------------------------------

std::vector<SimDisk::Pending>::iterator SimDisk::pending_from(Inode& f, uint64_t sector) {
  return std::lower_bound(f.pending.begin(), f.pending.end(), sector,
                          [](const Pending& p, uint64_t s) { return p.sector < s; });
}

// A sector is read "from the disk" (so its corruption overlay shows) when the page cache holds
// nothing newer for it: not pending, and not touched by a pending shrink.
bool SimDisk::reads_from_disk(const Inode& f, uint64_t sector) const {
  auto p = pending_from(const_cast<Inode&>(f), sector);
  if (p != f.pending.end() && p->sector == sector) return false;
  return f.low_size >= f.durable.size() || (sector + 1) * kSectorBytes <= f.low_size;
}

absl::StatusOr<size_t> SimDisk::file_read(Inode& f, uint64_t offset, std::span<uint8_t> out) {
  stats_.reads++;
  const uint64_t size = f.cache.size();
  if (offset >= size || out.empty()) return size_t{0};
  const size_t n = f.cache.read(offset, out);
  const uint64_t end = offset + n;
  for (auto it = f.faults.lower_bound(offset / kSectorBytes);
       it != f.faults.end() && it->first * kSectorBytes < end; ++it) {
    if (!reads_from_disk(f, it->first)) continue;
    if (it->second.kind == FaultKind::kUnreadable) {
      stats_.read_eio++;
      record("disk.read_eio", fmt::format("i{} sector={}", f.id, it->first));
      return absl::DataLossError(
          fmt::format("EIO: unreadable sector {} (byte {})", it->first, it->first * kSectorBytes));
    }
    const uint64_t start = it->first * kSectorBytes;
    const uint64_t lo = std::max(start, offset);
    const uint64_t hi = std::min(start + kSectorBytes, end);
    std::memcpy(out.data() + (lo - offset), it->second.content.data() + (lo - start), hi - lo);
  }
  stats_.bytes_read += n;
  return n;
}

absl::Status SimDisk::file_write(Inode& f, uint64_t offset, ByteView data) {
  if (fault_rng_.chance(faults_.write_eio_ppm, DiskFaults::kMillion)) {
    stats_.write_eio++;
    record("disk.write_eio", fmt::format("i{} {}+{}", f.id, offset, data.size()));
    return absl::DataLossError("EIO: write failed");
  }
  if (data.empty()) return absl::OkStatus();
  if (offset > kFileBytesMax || data.size() > kFileBytesMax) {
    return absl::ResourceExhaustedError("EFBIG: write beyond the largest simulated file");
  }
  const uint64_t end = offset + data.size();
  const uint64_t new_size = std::max<uint64_t>(f.cache.size(), end);
  if (absl::Status s = reserve(f, new_size); !s.ok()) return s;
  const uint64_t before = footprint(f);
  f.cache.write(offset, data);
  KEEL_CHECK_EQ(f.cache.size(), new_size);
  const uint64_t gen = f.next_gen++;
  auto p = pending_from(f, offset / kSectorBytes);
  for (uint64_t s = offset / kSectorBytes; s <= (end - 1) / kSectorBytes; s++, ++p) {
    if (p != f.pending.end() && p->sector == s) {
      *p = Pending{s, gen, false};
    } else {
      p = f.pending.insert(p, Pending{s, gen, false});
    }
  }
  used_bytes_ = used_bytes_ - before + footprint(f);
  stats_.writes++;
  stats_.bytes_written += data.size();
  scheduler_.recordf(node_, "disk.write", "i{} {}+{} #{:016x}", f.id, offset, data.size(),
                     data_digest(data));
  return absl::OkStatus();
}

absl::Status SimDisk::file_truncate(Inode& f, uint64_t size) {
  const uint64_t before = footprint(f);
  if (size > f.cache.size()) {
    if (absl::Status s = reserve(f, size); !s.ok()) return s;
    f.cache.resize(size);
  } else if (size < f.cache.size()) {
    f.cache.resize(size);
    f.pending.erase(pending_from(f, sectors_for(size)), f.pending.end());
    f.low_size = std::min(f.low_size, size);
    f.low_since_call = std::min(f.low_since_call, size);
    for (uint64_t id : f.syncs) {
      FileSync& sync = file_sync_at(id);
      sync.low = std::min(sync.low, size);
    }
  }
  used_bytes_ = used_bytes_ - before + footprint(f);
  record("disk.truncate", fmt::format("i{} size={}", f.id, size));
  return absl::OkStatus();
}

uint64_t SimDisk::file_size(const Inode& f) const { return f.cache.size(); }

void SimDisk::file_close(Inode& f, uint64_t handle) {
  // Destroying a File drops its pending callbacks; the syncs themselves still happen.
  for (uint64_t id : f.syncs) {
    FileSync& sync = file_sync_at(id);
    if (sync.handle == handle) sync.done = nullptr;
  }
  record("disk.close", fmt::format("i{} h{}", f.id, handle));
  KEEL_CHECK(handles_.erase(handle) == 1, "handle h{} unknown", handle);
  unref(f);
}

void SimDisk::file_sync(Inode& f, uint64_t handle, env::DoneFn done) {
  const uint64_t ino = f.id;
  KEEL_CHECK(f.syncs.size() < kSyncsInFlightMax, "{} syncs in flight on one file", f.syncs.size());
  stats_.syncs++;
  FileSync sync;
  sync.ino = ino;
  sync.inode = &f;
  sync.handle = handle;
  sync.size = f.cache.size();
  sync.shrink_to = f.low_since_call;
  sync.low = sync.size;
  f.low_since_call = sync.size;
  // Snapshot what this sync covers: writes after the call must not become durable with it.
  // Sharing the chunks freezes them: a later write to the page cache copies first.
  sync.sectors.reserve(f.pending.size());
  for (const Pending& p : f.pending) {
    if (!p.orphaned) sync.sectors.push_back(SyncedSector{p.sector, p.gen, f.cache.chunk(p.sector)});
  }
  if (fault_rng_.chance(faults_.sync_eio_ppm, DiskFaults::kMillion)) {
    sync.outcome = SyncOutcome::kEio;
  } else if (fault_rng_.chance(faults_.lying_sync_ppm, DiskFaults::kMillion)) {
    sync.outcome = SyncOutcome::kLie;
  }
  sync.done = std::move(done);
  // Completions on one file are in call order (a later fsync never finishes before an
  // earlier one), so an older snapshot can never overwrite a newer one.
  const int64_t done_at = std::max(scheduler_.now_ns() + draw_sync_latency(), f.last_sync_done_ns);
  f.last_sync_done_ns = done_at;
  const uint64_t id = next_sync_id_++;
  sync.event = scheduler_.at(done_at, [link = link_, id] {
    if (link->disk != nullptr && id >= link->disk->first_live_sync_id_) {
      link->disk->complete_file_sync(id);
    }
  });
  scheduler_.recordf(node_, "disk.sync", "i{} #{} sectors={} size={} at={}", ino, id,
                     sync.sectors.size(), sync.size, done_at);
  f.refs++;  // the sync in flight keeps the inode alive even if it is unlinked and closed
  f.syncs.push_back(id);
  file_syncs_.emplace_back(id, std::move(sync));  // the largest id yet
}

std::vector<std::pair<uint64_t, SimDisk::FileSync>>::iterator SimDisk::find_file_sync(uint64_t id) {
  auto it = std::lower_bound(
      file_syncs_.begin(), file_syncs_.end(), id,
      [](const std::pair<uint64_t, FileSync>& e, uint64_t v) { return e.first < v; });
  return it != file_syncs_.end() && it->first == id ? it : file_syncs_.end();
}

SimDisk::FileSync& SimDisk::file_sync_at(uint64_t id) {
  auto it = find_file_sync(id);
  KEEL_CHECK(it != file_syncs_.end(), "sync #{} unknown", id);
  return it->second;
}

void SimDisk::complete_file_sync(uint64_t id) {
  auto it = find_file_sync(id);
  KEEL_CHECK(it != file_syncs_.end(), "sync #{} unknown", id);
  FileSync sync = std::move(it->second);
  file_syncs_.erase(it);
  Inode& f = *sync.inode;
  KEEL_CHECK(!f.syncs.empty() && f.syncs.front() == id, "syncs of i{} out of order", sync.ino);
  f.syncs.pop_front();
  if (sync.outcome != SyncOutcome::kOk) {
    // Nothing became durable, so the shrink this sync carried is still owed: the next sync
    // (in flight or future) must apply it.
    for (uint64_t later : f.syncs) {
      FileSync& next = file_sync_at(later);
      next.shrink_to = std::min(next.shrink_to, sync.shrink_to);
    }
    f.low_since_call = std::min(f.low_since_call, sync.shrink_to);
  }
  absl::Status status;
  switch (sync.outcome) {
    case SyncOutcome::kOk:
      apply_file_sync(f, sync);
      stats_.syncs_completed++;
      scheduler_.recordf(node_, "disk.sync_done", "i{} #{} durable_size={}", sync.ino, id,
                         f.durable.size());
      break;
    case SyncOutcome::kLie:
      stats_.syncs_completed++;
      stats_.lying_syncs++;
      record("disk.sync_lie", fmt::format("i{} #{}", sync.ino, id));
      break;
    case SyncOutcome::kEio:
      // Like Linux after a failed fsync: the covered pages leave writeback (a later sync
      // will not write them) while reads still see them; a crash may keep, drop or tear them.
      for (const SyncedSector& s : sync.sectors) {
        auto p = pending_from(f, s.sector);
        if (p != f.pending.end() && p->sector == s.sector && p->gen == s.gen) p->orphaned = true;
      }
      stats_.sync_eio++;
      record("disk.sync_eio", fmt::format("i{} #{}", sync.ino, id));
      status = absl::DataLossError("EIO: sync failed; nothing it covered is durable");
      break;
  }
  unref(f);  // `f` may be gone from here on
  if (sync.done) sync.done(std::move(status));
}

void SimDisk::apply_file_sync(Inode& f, const FileSync& sync) {
  const uint64_t before = footprint(f);
  if (sync.shrink_to < f.durable.size()) shrink_durable(f, sync.shrink_to);
  if (sync.size > f.durable.size()) f.durable.resize(sync.size);
  for (const auto& [sector, gen, data] : sync.sectors) {
    const uint64_t n = std::min<uint64_t>(kSectorBytes, sync.size - sector * kSectorBytes);
    write_durable_sector(f, sector, data, n);
    stats_.bytes_synced += n;
  }
  // Drop the pending sectors the sync covered, unless rewritten since or orphaned: one merge
  // pass, both lists being sorted by sector.
  auto s = sync.sectors.begin();
  std::erase_if(f.pending, [&](const Pending& p) {
    while (s != sync.sectors.end() && s->sector < p.sector) ++s;
    return s != sync.sectors.end() && s->sector == p.sector && s->gen == p.gen && !p.orphaned;
  });
  KEEL_CHECK_EQ(f.durable.size(), sync.size);
  f.low_size = sync.low;
  used_bytes_ = used_bytes_ - before + footprint(f);
}

// Shrinks the durable image to `size`: the freed sectors lose their corruption, and the
// boundary sector's overlay reads zeros past the new end, like the image itself.
void SimDisk::shrink_durable(Inode& f, uint64_t size) {
  KEEL_CHECK_LE(size, f.durable.size());
  f.durable.resize(size);
  f.faults.erase(f.faults.lower_bound(sectors_for(size)), f.faults.end());
  if (size % kSectorBytes == 0) return;  // (the image zeroed its own boundary sector)
  auto it = f.faults.find(size / kSectorBytes);
  if (it != f.faults.end() && !it->second.content.empty()) {
    std::memset(it->second.content.data() + size % kSectorBytes, 0,
                kSectorBytes - size % kSectorBytes);
  }
}

// Writes `n` bytes of a sector into the durable image at the end of a sync, where storage
// faults strike: an armed fault first, else (if allowed) a random one. The pristine image
// always receives the data; a fault lives in the overlay that reads consult.
void SimDisk::write_durable_sector(Inode& f, uint64_t sector, const Image::Chunk& data, size_t n) {
  const uint64_t start = sector * kSectorBytes;
  KEEL_CHECK(n > 0 && n <= kSectorBytes && start + n <= f.durable.size());
  enum class Strike { kNone, kLost, kMisdirect, kFlip, kUnreadable } strike = Strike::kNone;
  uint64_t target = 0;
  const uint64_t sectors = sectors_for(f.durable.size());
  if (auto armed = f.armed.find(sector); armed != f.armed.end()) {
    strike = armed->second.misdirect ? Strike::kMisdirect : Strike::kLost;
    target = armed->second.target;
    f.armed.erase(armed);
  } else if (corruption_allowed_) {
    const uint64_t m = DiskFaults::kMillion;
    if (fault_rng_.chance(faults_.bit_flip_ppm, m)) {
      strike = Strike::kFlip;
    } else if (fault_rng_.chance(faults_.lost_write_ppm, m)) {
      strike = Strike::kLost;
    } else if (fault_rng_.chance(faults_.misdirected_write_ppm, m)) {
      strike = Strike::kMisdirect;
      if (sectors > 1) {
        target = fault_rng_.uniform(sectors - 1);
        if (target >= sector) target++;
      }
    } else if (fault_rng_.chance(faults_.unreadable_ppm, m)) {
      strike = Strike::kUnreadable;
    }
  }
  // A misdirected write whose target lies outside the file is simply lost.
  if (strike == Strike::kMisdirect && (target == sector || target >= sectors)) {
    strike = Strike::kLost;
  }
  Bytes old;
  if (strike == Strike::kLost || strike == Strike::kMisdirect) {
    auto prior = f.faults.find(sector);  // what reads saw before is what stays visible
    if (prior != f.faults.end() && !prior->second.content.empty()) {
      old = prior->second.content;
    } else {
      old = f.durable.sector_bytes(sector);
    }
  }
  f.durable.set_chunk(sector, data);
  // The new content as bytes, for the faults that keep a copy of it.
  auto fresh = [&] {
    Bytes out(kSectorBytes, 0);
    if (data != nullptr) std::memcpy(out.data(), data->data(), n);
    return out;
  };
  switch (strike) {
    case Strike::kNone:
      f.faults.erase(sector);
      return;
    case Strike::kLost:
      f.faults[sector] = SectorFault{FaultKind::kStale, std::move(old)};
      stats_.lost_writes++;
      record("disk.lost_write", fmt::format("i{} sector={}", f.id, sector));
      return;
    case Strike::kMisdirect: {
      f.faults[sector] = SectorFault{FaultKind::kStale, std::move(old)};
      f.faults[target] = SectorFault{FaultKind::kMisdirected, fresh()};
      stats_.misdirected_writes++;
      record("disk.misdirected_write",
             fmt::format("i{} sector={} target={}", f.id, sector, target));
      return;
    }
    case Strike::kFlip: {
      Bytes flipped = fresh();
      const uint64_t bit = fault_rng_.uniform(n * 8);
      flipped[bit / 8] ^= uint8_t(1u << (bit % 8));
      f.faults[sector] = SectorFault{FaultKind::kBitFlip, std::move(flipped)};
      stats_.bit_flips++;
      record("disk.bit_flip", fmt::format("i{} sector={} bit={}", f.id, sector, bit));
      return;
    }
    case Strike::kUnreadable:
      f.faults[sector] = SectorFault{FaultKind::kUnreadable, {}};
      stats_.unreadable_sectors++;
      record("disk.unreadable", fmt::format("i{} sector={}", f.id, sector));
      return;
  }
}

// ---- Namespace operations ------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<env::File>> SimDisk::open(std::string_view path,
                                                         env::OpenMode mode) {
  if (!valid_path(path, false)) {
    return absl::InvalidArgumentError(fmt::format("bad path '{}'", path));
  }
  const auto [dir, name] = split_path(path);
  auto d = current_.find(dir);
  if (d == current_.end()) return absl::NotFoundError(fmt::format("no directory '{}'", dir));
  uint64_t ino = 0;
  if (auto e = d->second.find(name); e != d->second.end()) {
    if (e->second.is_dir) return absl::InvalidArgumentError(fmt::format("EISDIR '{}'", path));
    ino = e->second.ino;
  } else if (mode == env::OpenMode::kExisting) {
    return absl::NotFoundError(fmt::format("no file '{}'", path));
  } else {
    ino = next_ino_++;
    auto f = std::make_unique<Inode>(ino, pages_);
    inodes_.emplace(ino, std::move(f));
    set_entry(current_, dir, name, Entry{false, ino});
    push_dir_op(dir, {DirChange{std::string(name), Entry{false, ino}}});
    record("disk.create", fmt::format("{} i{}", path, ino));
  }
  ref(ino);
  const uint64_t handle = next_handle_++;
  record("disk.open", fmt::format("{} i{} h{}", path, ino, handle));
  handles_.emplace(handle, ino);
  return std::unique_ptr<env::File>(new SimFile(link_, process_epoch_, &inode(ino), handle));
}

absl::Status SimDisk::rename(std::string_view from, std::string_view to) {
  if (!valid_path(from, false) || !valid_path(to, false)) {
    return absl::InvalidArgumentError(fmt::format("bad path '{}' or '{}'", from, to));
  }
  const auto [dir, from_name] = split_path(from);
  const auto [to_dir, to_name] = split_path(to);
  if (dir != to_dir) {
    return absl::InvalidArgumentError("rename across directories is not simulated");
  }
  auto d = current_.find(dir);
  if (d == current_.end()) return absl::NotFoundError(fmt::format("no directory '{}'", dir));
  auto src = d->second.find(from_name);
  if (src == d->second.end()) return absl::NotFoundError(fmt::format("no file '{}'", from));
  if (src->second.is_dir) return absl::InvalidArgumentError("rename of a directory");
  if (from == to) return absl::OkStatus();
  if (auto dst = d->second.find(to_name); dst != d->second.end() && dst->second.is_dir) {
    return absl::InvalidArgumentError(fmt::format("EISDIR '{}'", to));
  }
  const Entry e = src->second;
  // Set the new name before removing the old one, so the file is never unreferenced.
  set_entry(current_, dir, to_name, e);
  set_entry(current_, dir, from_name, std::nullopt);
  push_dir_op(dir, {DirChange{std::string(to_name), e}, DirChange{std::string(from_name), {}}});
  record("disk.rename", fmt::format("{} -> {} i{}", from, to, e.ino));
  return absl::OkStatus();
}

absl::Status SimDisk::remove(std::string_view path) {
  if (!valid_path(path, false)) {
    return absl::InvalidArgumentError(fmt::format("bad path '{}'", path));
  }
  const auto [dir, name] = split_path(path);
  const Entry* e = find_current(path);
  if (e == nullptr) return absl::NotFoundError(fmt::format("no such file '{}'", path));
  if (e->is_dir && !current_.at(std::string(path)).empty()) {
    return absl::InvalidArgumentError(fmt::format("ENOTEMPTY '{}'", path));
  }
  set_entry(current_, dir, name, std::nullopt);
  push_dir_op(dir, {DirChange{std::string(name), {}}});
  record("disk.remove", std::string(path));
  return absl::OkStatus();
}

absl::Status SimDisk::make_dir(std::string_view path) {
  if (!valid_path(path, false)) {
    return absl::InvalidArgumentError(fmt::format("bad path '{}'", path));
  }
  const auto [dir, name] = split_path(path);
  auto d = current_.find(dir);
  if (d == current_.end()) return absl::NotFoundError(fmt::format("no directory '{}'", dir));
  if (auto e = d->second.find(name); e != d->second.end()) {
    if (e->second.is_dir) return absl::OkStatus();
    return absl::AlreadyExistsError(fmt::format("'{}' is a file", path));
  }
  set_entry(current_, dir, name, Entry{true, 0});
  push_dir_op(dir, {DirChange{std::string(name), Entry{true, 0}}});
  record("disk.make_dir", std::string(path));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SimDisk::list(std::string_view dir) {
  if (!valid_path(dir, true)) return absl::InvalidArgumentError(fmt::format("bad dir '{}'", dir));
  auto d = current_.find(dir);
  if (d == current_.end()) return absl::NotFoundError(fmt::format("no directory '{}'", dir));
  std::vector<std::string> names;
  names.reserve(d->second.size());
  for (const auto& [name, e] : d->second) names.push_back(name);
  return names;
}

void SimDisk::sync_dir(std::string_view dir, env::DoneFn done) {
  stats_.dir_syncs++;
  if (!valid_path(dir, true)) {
    return deliver_later(std::move(done),
                         absl::InvalidArgumentError(fmt::format("bad dir '{}'", dir)));
  }
  if (!current_.contains(dir)) {
    return deliver_later(std::move(done),
                         absl::NotFoundError(fmt::format("no directory '{}'", dir)));
  }
  DirSync sync;
  sync.dir = std::string(dir);
  sync.upto_seq = next_dir_op_seq_ - 1;
  if (fault_rng_.chance(faults_.sync_eio_ppm, DiskFaults::kMillion)) {
    sync.outcome = SyncOutcome::kEio;
  } else if (fault_rng_.chance(faults_.lying_sync_ppm, DiskFaults::kMillion)) {
    sync.outcome = SyncOutcome::kLie;
  }
  sync.done = std::move(done);
  int64_t& last = last_dir_sync_done_ns_.try_emplace(sync.dir, 0).first->second;
  const int64_t done_at = std::max(scheduler_.now_ns() + draw_sync_latency(), last);
  last = done_at;
  const uint64_t id = next_sync_id_++;
  sync.event = scheduler_.at(done_at, [link = link_, id] {
    if (link->disk != nullptr && id >= link->disk->first_live_sync_id_) {
      link->disk->complete_dir_sync(id);
    }
  });
  scheduler_.recordf(node_, "disk.sync_dir", "'{}' #{} upto={} at={}", dir, id, sync.upto_seq,
                     done_at);
  dir_syncs_.emplace(id, std::move(sync));
}

void SimDisk::complete_dir_sync(uint64_t id) {
  auto it = dir_syncs_.find(id);
  KEEL_CHECK(it != dir_syncs_.end(), "dir sync #{} unknown", id);
  DirSync sync = std::move(it->second);
  dir_syncs_.erase(it);
  absl::Status status;
  switch (sync.outcome) {
    case SyncOutcome::kOk: {
      size_t applied = 0;
      auto q = dir_ops_.find(sync.dir);
      while (q != dir_ops_.end() && !q->second.empty() && q->second.front().seq <= sync.upto_seq) {
        DirOp op = std::move(q->second.front());
        q->second.pop_front();
        for (DirChange& c : op.changes) {
          set_entry(durable_, sync.dir, c.name, c.entry);
          if (c.entry && !c.entry->is_dir) unref(c.entry->ino);  // the op's own reference
        }
        applied++;
      }
      if (q != dir_ops_.end() && q->second.empty()) dir_ops_.erase(q);
      scheduler_.recordf(node_, "disk.sync_dir_done", "'{}' #{} ops={}", sync.dir, id, applied);
      break;
    }
    case SyncOutcome::kLie:
      stats_.lying_syncs++;
      record("disk.sync_dir_lie", fmt::format("'{}' #{}", sync.dir, id));
      break;
    case SyncOutcome::kEio:
      // The operations stay pending: a crash may still lose them, a later sync_dir may
      // persist them. The caller must not assume they are durable.
      stats_.sync_eio++;
      record("disk.sync_dir_eio", fmt::format("'{}' #{}", sync.dir, id));
      status = absl::DataLossError("EIO: directory sync failed");
      break;
  }
  if (sync.done) sync.done(std::move(status));
}

// ---- Crash ---------------------------------------------------------------------------------

void SimDisk::crash() {
  stats_.crashes++;
  // Kill the handles first: destroying the callbacks below may destroy File objects.
  incarnation_++;
  first_live_sync_id_ = next_sync_id_;
  process_epoch_++;
  handles_.clear();  // their references vanish in recount_refs
  auto file_syncs = std::move(file_syncs_);
  auto dir_syncs = std::move(dir_syncs_);
  file_syncs_.clear();
  dir_syncs_.clear();
  for (auto& [id, sync] : file_syncs) {
    scheduler_.cancel(sync.event);
    if (sync.done) stats_.crash_callbacks_dropped++;
  }
  for (auto& [id, sync] : dir_syncs) {
    scheduler_.cancel(sync.event);
    if (sync.done) stats_.crash_callbacks_dropped++;
  }
  const uint64_t dropped = file_syncs.size() + dir_syncs.size();
  file_syncs.clear();
  dir_syncs.clear();
  last_dir_sync_done_ns_.clear();

  crash_namespace();
  recount_refs();
  used_bytes_ = 0;
  for (auto& [ino, f] : inodes_) {
    f->syncs.clear();
    f->last_sync_done_ns = 0;
    crash_inode(*f);
    used_bytes_ += footprint(*f);
  }
  record("disk.crash", fmt::format("incarnation={} syncs_dropped={} files={}", incarnation_,
                                   dropped, inodes_.size()));
}

void SimDisk::process_crash() {
  process_epoch_++;
  uint64_t dropped = 0;
  // Move the callbacks out before destroying them: a callback may own File objects.
  std::vector<env::DoneFn> callbacks;
  for (auto& [id, sync] : file_syncs_) {
    if (sync.done) callbacks.push_back(std::move(sync.done));
    sync.done = nullptr;
  }
  for (auto& [id, sync] : dir_syncs_) {
    if (sync.done) callbacks.push_back(std::move(sync.done));
    sync.done = nullptr;
  }
  dropped = callbacks.size();
  stats_.crash_callbacks_dropped += dropped;
  auto handles = std::move(handles_);
  handles_.clear();
  for (const auto& [handle, ino] : handles) unref(ino);
  callbacks.clear();
  stats_.process_crashes++;
  record("disk.process_crash",
         fmt::format("callbacks_dropped={} handles={}", dropped, handles.size()));
}

// Each directory keeps a random prefix of its pending operations (in-order metadata
// journaling per directory); the rest are undone. Then directories whose own entry did not
// survive vanish with their contents, and the current namespace becomes the durable one.
void SimDisk::crash_namespace() {
  for (auto& [dir, queue] : dir_ops_) {
    const uint64_t keep = crash_rng_.uniform(queue.size() + 1);
    for (uint64_t i = 0; i < keep; i++) {
      for (DirChange& c : queue[i].changes) set_entry(durable_, dir, c.name, c.entry);
    }
    stats_.crash_dir_ops_kept += keep;
    stats_.crash_dir_ops_lost += queue.size() - keep;
    if (queue.size() > 0) {
      record("disk.crash_dir",
             fmt::format("'{}' ops kept={} lost={}", dir, keep, queue.size() - keep));
    }
  }
  // Parents sort before their children, so one pass in path order finds what is reachable.
  std::set<std::string, std::less<>> unreachable;
  for (const auto& [path, entries] : durable_) {
    if (path.empty()) continue;
    const auto [parent, name] = split_path(path);
    auto p = durable_.find(parent);
    const bool parent_ok = p != durable_.end() && !unreachable.contains(parent);
    bool listed = false;
    if (parent_ok) {
      auto e = p->second.find(name);
      listed = e != p->second.end() && e->second.is_dir;
    }
    if (!listed) unreachable.insert(path);
  }
  for (const std::string& path : unreachable) durable_.erase(path);
  current_ = durable_;
}

// References after a crash come only from the two (now equal) namespaces: pending operations,
// syncs and handles are gone. Inodes nobody names are freed.
void SimDisk::recount_refs() {
  dir_ops_.clear();
  for (auto& [ino, f] : inodes_) f->refs = 0;
  for (const Namespace* ns : {&durable_, &current_}) {
    for (const auto& [dir, entries] : *ns) {
      for (const auto& [name, e] : entries) {
        if (!e.is_dir) inodes_.at(e.ino)->refs++;
      }
    }
  }
  std::erase_if(inodes_, [](const auto& kv) { return kv.second->refs == 0; });
}

// Applies the crash model to one file: a pending shrink survives or not, then each pending
// sector is kept (its page-cache content), dropped (durable content, zeros past the durable
// end) or torn (garbage). The size becomes the larger of the surviving base size and the end
// of the last surviving sector (capped at the size the node saw).
void SimDisk::crash_inode(Inode& f) {
  const uint64_t durable_size = f.durable.size();
  const uint64_t cache_size = f.cache.size();
  if (f.pending.empty() && f.low_size >= durable_size && cache_size == durable_size) return;
  uint64_t base = durable_size;
  if (f.low_size < durable_size) {
    if (crash_rng_.chance(1, 2)) {
      base = f.low_size;
      stats_.crash_truncates_kept++;
    } else {
      stats_.crash_truncates_lost++;
    }
  }
  const uint64_t total =
      uint64_t{faults_.crash_keep_weight} + faults_.crash_drop_weight + faults_.crash_tear_weight;
  std::vector<std::pair<uint64_t, bool>> survivors;  // (sector, torn)
  uint64_t final_size = base;
  uint64_t kept = 0, dropped = 0, torn = 0;
  for (const Pending& p : f.pending) {
    const uint64_t sector = p.sector;
    const uint64_t r = crash_rng_.uniform(total);
    if (r < faults_.crash_keep_weight) {
      survivors.emplace_back(sector, false);
      kept++;
    } else if (r < uint64_t{faults_.crash_keep_weight} + faults_.crash_drop_weight) {
      dropped++;
      continue;
    } else {
      survivors.emplace_back(sector, true);
      torn++;
    }
    final_size = std::max(final_size, std::min(cache_size, (sector + 1) * kSectorBytes));
  }
  if (base < durable_size) shrink_durable(f, base);
  f.durable.resize(final_size);
  for (const auto& [sector, is_torn] : survivors) {
    const uint64_t start = sector * kSectorBytes;
    KEEL_CHECK_LT(start, final_size);
    const size_t n = size_t(std::min<uint64_t>(kSectorBytes, final_size - start));
    const size_t have = size_t(std::min<uint64_t>(n, cache_size - start));
    const Image::Chunk& chunk = f.cache.chunk(sector);
    if (!is_torn) {
      f.durable.set_chunk(sector, chunk);  // zeros past the current end, shared
      f.faults.erase(sector);              // the sector was rewritten
      continue;
    }
    static const std::array<uint8_t, kSectorBytes> kZeros{};
    const uint8_t* fresh = chunk != nullptr ? chunk->data() : kZeros.data();
    uint8_t* dst = f.durable.mutable_sector(sector);
    if (crash_rng_.chance(1, 2)) {
      // Garbage: bytes that are neither old nor new, but only where old and new differ. A
      // byte the write did not change (the synced part of a sector an append filled further)
      // reads the same either way: losing it would be corruption of synced data, which the
      // model confines to the corruption faults.
      for (size_t i = 0; i < n; i += 8) {
        const uint64_t word = crash_rng_.next_u64();
        uint8_t bytes[8];
        std::memcpy(bytes, &word, 8);
        for (size_t k = i; k < std::min<size_t>(i + 8, n); k++) {
          const bool durable_same = start + k < durable_size && k < have && dst[k] == fresh[k];
          if (!durable_same) dst[k] = bytes[k - i];
        }
      }
    } else {
      // A torn page: the first units of the new data reached the media, the rest is old.
      const size_t units = size_t(crash_rng_.range(1, kSectorBytes / kTearUnitBytes - 1));
      std::memcpy(dst, fresh, std::min(have, units * kTearUnitBytes));
    }
    std::memset(dst + n, 0, kSectorBytes - n);  // nothing past the end
    f.faults.erase(sector);                     // the sector was rewritten
  }
  stats_.crash_sectors_kept += kept;
  stats_.crash_sectors_dropped += dropped;
  stats_.crash_sectors_torn += torn;
  f.pending.clear();
  f.cache = f.durable;
  f.low_size = final_size;
  f.low_since_call = final_size;
  record("disk.crash_file",
         fmt::format("i{} kept={} dropped={} torn={} size {}->{} (durable {})", f.id, kept, dropped,
                     torn, cache_size, final_size, durable_size));
}

// ---- Explicit corruption and inspection ----------------------------------------------------

absl::Status SimDisk::flip_bit(std::string_view path, uint64_t byte_offset, int bit) {
  Inode* f = find_file(path);
  if (f == nullptr) return absl::NotFoundError(fmt::format("no file '{}'", path));
  if (byte_offset >= f->durable.size() || bit < 0 || bit > 7) {
    return absl::InvalidArgumentError("flip_bit outside the durable image");
  }
  const uint64_t sector = byte_offset / kSectorBytes;
  auto it = f->faults.find(sector);
  if (it == f->faults.end()) {
    it =
        f->faults.emplace(sector, SectorFault{FaultKind::kBitFlip, f->durable.sector_bytes(sector)})
            .first;
  }
  if (it->second.kind != FaultKind::kUnreadable) {
    it->second.content[byte_offset % kSectorBytes] ^= uint8_t(1u << bit);
  }
  stats_.bit_flips++;
  record("disk.bit_flip", fmt::format("i{} byte={} bit={} (injected)", f->id, byte_offset, bit));
  return absl::OkStatus();
}

absl::Status SimDisk::make_unreadable(std::string_view path, uint64_t sector) {
  Inode* f = find_file(path);
  if (f == nullptr) return absl::NotFoundError(fmt::format("no file '{}'", path));
  if (sector >= sectors_for(f->durable.size())) {
    return absl::InvalidArgumentError("make_unreadable outside the durable image");
  }
  f->faults[sector] = SectorFault{FaultKind::kUnreadable, {}};
  stats_.unreadable_sectors++;
  record("disk.unreadable", fmt::format("i{} sector={} (injected)", f->id, sector));
  return absl::OkStatus();
}

absl::Status SimDisk::arm_lost_write(std::string_view path, uint64_t sector) {
  Inode* f = find_file(path);
  if (f == nullptr) return absl::NotFoundError(fmt::format("no file '{}'", path));
  f->armed[sector] = Armed{false, 0};
  record("disk.arm_lost_write", fmt::format("i{} sector={}", f->id, sector));
  return absl::OkStatus();
}

absl::Status SimDisk::arm_misdirected_write(std::string_view path, uint64_t sector,
                                            uint64_t target) {
  Inode* f = find_file(path);
  if (f == nullptr) return absl::NotFoundError(fmt::format("no file '{}'", path));
  if (sector == target) return absl::InvalidArgumentError("misdirected onto itself");
  f->armed[sector] = Armed{true, target};
  record("disk.arm_misdirected_write",
         fmt::format("i{} sector={} target={}", f->id, sector, target));
  return absl::OkStatus();
}

absl::StatusOr<std::string> SimDisk::corrupt_random_sector() {
  std::vector<Inode*> candidates;
  for (auto& [ino, f] : inodes_) {
    if (!f->durable.empty()) candidates.push_back(f.get());
  }
  if (candidates.empty()) return absl::NotFoundError("no durable data to corrupt");
  Inode& f = *candidates[fault_rng_.uniform(candidates.size())];
  const uint64_t sectors = sectors_for(f.durable.size());
  const uint64_t sector = fault_rng_.uniform(sectors);
  const uint64_t start = sector * kSectorBytes;
  const uint64_t n = std::min<uint64_t>(kSectorBytes, f.durable.size() - start);
  uint64_t kind = fault_rng_.uniform(3);
  if (kind == 2 && sectors < 2) kind = 0;
  std::string what;
  if (kind == 1) {
    f.faults[sector] = SectorFault{FaultKind::kUnreadable, {}};
    stats_.unreadable_sectors++;
    what = fmt::format("i{} sector={} unreadable", f.id, sector);
  } else if (kind == 2) {
    uint64_t source = fault_rng_.uniform(sectors - 1);
    if (source >= sector) source++;
    f.faults[sector] = SectorFault{FaultKind::kMisdirected, f.durable.sector_bytes(source)};
    stats_.misdirected_writes++;
    what = fmt::format("i{} sector={} holds sector {}", f.id, sector, source);
  } else {
    auto it = f.faults.find(sector);
    if (it == f.faults.end() || it->second.content.empty()) {
      f.faults[sector] = SectorFault{FaultKind::kBitFlip, f.durable.sector_bytes(sector)};
      it = f.faults.find(sector);
    }
    const uint64_t bit = fault_rng_.uniform(n * 8);
    it->second.content[bit / 8] ^= uint8_t(1u << (bit % 8));
    stats_.bit_flips++;
    what = fmt::format("i{} sector={} bit {} flipped", f.id, sector, bit);
  }
  record("disk.corrupt", what);
  return what;
}

size_t SimDisk::corrupted_sectors() const {
  size_t n = 0;
  for (const auto& [ino, f] : inodes_) n += f->faults.size();
  return n;
}

absl::StatusOr<uint64_t> SimDisk::durable_size(std::string_view path) const {
  const Inode* f = find_file(path);
  if (f == nullptr) return absl::NotFoundError(fmt::format("no file '{}'", path));
  return f->durable.size();
}

absl::StatusOr<size_t> SimDisk::pending_sectors(std::string_view path) const {
  const Inode* f = find_file(path);
  if (f == nullptr) return absl::NotFoundError(fmt::format("no file '{}'", path));
  return f->pending.size();
}

}  // namespace keel::sim
