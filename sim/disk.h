// SimDisk: one node's simulated disk, an env::Disk whose every fault is drawn from a seeded
// stream and recorded in the scheduler's trace. The full model, for people reading a failing
// seed, is docs/disk-model.md; this header states the contract of each call.
//
// In one paragraph: each file is a pristine durable image plus pending (unsynced) sectors and
// a pending size change; reads see the latest state (the page cache). File::sync completes
// after a latency, as a scheduler event, and makes durable exactly what was written to that
// file before the call. Names (create, rename, remove, make_dir) are durable only after
// sync_dir of their directory. crash() turns every pending sector into kept, dropped or torn,
// keeps a random prefix of each directory's pending name operations, drops every pending
// callback and kills every open File. Durable sectors may carry corruption (bit flips, lost
// writes, misdirected writes, unreadable sectors) kept in an overlay over the pristine image,
// so a re-read returns the same damaged bytes until the sector is rewritten and synced.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/bytes.h"
#include "env/disk.h"
#include "env/random.h"
#include "sim/scheduler.h"

namespace keel::sim {

// Fault knobs of one disk. Probabilities are integer ratios: parts per million (ppm) of the
// operations (or sectors) they apply to. Latencies are in virtual nanoseconds. The default
// value is a healthy disk with realistic sync latency and no faults.
struct DiskFaults {
  static constexpr uint64_t kMillion = 1'000'000;
  static constexpr uint64_t kCapacityDefault = uint64_t{1} << 30;  // 1 GiB of simulated data

  // In-model operation errors.
  uint64_t write_eio_ppm = 0;  // File::write fails with EIO (DataLoss), changing nothing
  uint64_t sync_eio_ppm = 0;   // File::sync / sync_dir complete with EIO (see docs)
  // Writes and extending truncates fail with ENOSPC (ResourceExhausted) once the files'
  // footprint (each file's larger of current and durable size, rounded up to sectors) would
  // exceed this.
  uint64_t capacity_bytes = kCapacityDefault;

  // Latency of File::sync and sync_dir: uniform in [min, max]; with probability slow_ppm,
  // uniform in [max, slow_max] instead (slow IO).
  int64_t sync_latency_min_ns = 50'000;
  int64_t sync_latency_max_ns = 2'000'000;
  uint64_t sync_slow_ppm = 0;
  int64_t sync_slow_latency_max_ns = 500'000'000;

  // crash(): each pending sector is kept, dropped or torn with these relative weights (their
  // sum must be positive). A pending shrink (truncate) survives with probability 1/2.
  uint32_t crash_keep_weight = 1;
  uint32_t crash_drop_weight = 1;
  uint32_t crash_tear_weight = 1;

  // In-model corruption, per sector written to the durable image by a completed sync. Only
  // applied when corruption is allowed on this disk (SimDisk::set_corruption_allowed).
  uint64_t bit_flip_ppm = 0;           // the sector reads back with one bit flipped
  uint64_t lost_write_ppm = 0;         // the sync completes but the sector keeps its old content
  uint64_t misdirected_write_ppm = 0;  // the data lands on another sector of the file instead
  uint64_t unreadable_ppm = 0;         // reads covering the sector fail with EIO

  // Beyond the model: a sync reports success while nothing becomes durable (a lying disk).
  // Keel cannot promise durability under it; runs using it must be labelled beyond-model.
  uint64_t lying_sync_ppm = 0;

  // True if any beyond-model knob is set.
  bool beyond_model() const { return lying_sync_ppm > 0; }
};

// What happened on one disk; sums across disks with +=. Counters only ever grow.
struct DiskStats {
  uint64_t writes = 0;
  uint64_t bytes_written = 0;
  uint64_t reads = 0;
  uint64_t bytes_read = 0;
  uint64_t syncs = 0;            // File::sync calls
  uint64_t syncs_completed = 0;  // completions delivered OK (lying ones included)
  uint64_t bytes_synced = 0;     // bytes of pending sectors made durable by syncs
  uint64_t dir_syncs = 0;        // sync_dir calls
  uint64_t dir_ops = 0;          // creations, renames, removals, make_dirs

  uint64_t write_eio = 0;
  uint64_t sync_eio = 0;  // File::sync and sync_dir failures injected
  uint64_t read_eio = 0;  // reads that hit an unreadable sector
  uint64_t enospc = 0;

  uint64_t crashes = 0;
  uint64_t process_crashes = 0;
  uint64_t crash_sectors_kept = 0;
  uint64_t crash_sectors_dropped = 0;
  uint64_t crash_sectors_torn = 0;
  uint64_t crash_truncates_kept = 0;
  uint64_t crash_truncates_lost = 0;
  uint64_t crash_dir_ops_kept = 0;
  uint64_t crash_dir_ops_lost = 0;
  uint64_t crash_callbacks_dropped = 0;

  uint64_t bit_flips = 0;
  uint64_t lost_writes = 0;
  uint64_t misdirected_writes = 0;
  uint64_t unreadable_sectors = 0;
  uint64_t lying_syncs = 0;  // beyond the model

  DiskStats& operator+=(const DiskStats& other);
  // Total storage faults injected (corruption of any kind), for summaries.
  uint64_t corruptions() const {
    return bit_flips + lost_writes + misdirected_writes + unreadable_sectors;
  }
  // One line, "key=value ..." for the CLI summary.
  std::string summary() const;
};

class SimDisk final : public env::Disk {
 public:
  // Longest path accepted: a limit against runaway callers.
  static constexpr size_t kPathBytesMax = 4096;
  // Syncs in flight on one file at once; more is a caller bug (a sync loop).
  static constexpr size_t kSyncsInFlightMax = 1024;

  // `rng` is this disk's own stream (derive it per node); every random choice of the disk
  // comes from streams derived from it. `node` labels trace records.
  SimDisk(Scheduler& scheduler, env::Random rng, std::string node);
  ~SimDisk() override;
  SimDisk(const SimDisk&) = delete;
  SimDisk& operator=(const SimDisk&) = delete;

  // Replaces the fault knobs; takes effect for operations from now on.
  void set_faults(const DiskFaults& faults);
  const DiskFaults& faults() const { return faults_; }

  // Whether random corruption (DiskFaults bit_flip/lost/misdirected/unreadable) may hit this
  // disk. On by default; the World turns it off on all but the nodes it chooses, to keep
  // corruption within f replicas. Explicit injection below ignores it.
  void set_corruption_allowed(bool allowed) { corruption_allowed_ = allowed; }
  bool corruption_allowed() const { return corruption_allowed_; }

  // A node crash (power loss), instantaneous: every pending sector is kept, dropped or torn;
  // a pending shrink survives or not; each directory keeps a random prefix of its pending
  // name operations (the rest are undone); every pending sync and sync_dir callback is
  // dropped (never runs); every open File dies (each call then returns FailedPrecondition
  // and sync delivers FailedPrecondition). Afterwards the disk holds only durable state and
  // can be used at once by the restarted node.
  void crash();

  // A process crash without power loss (kill -9): the page cache survives, so nothing is
  // lost and pending syncs still complete, but their callbacks are dropped (never run) and
  // every open File dies, as in crash(). The restarted node sees every write made so far.
  void process_crash();

  // --- Explicit corruption of durable state (tests, nemesis). Paths name files in the current
  // namespace. They ignore set_corruption_allowed and are counted in stats. -----------------

  // Flips bit `bit` (0..7) of the durable byte at `byte_offset` (must be below the durable
  // size). Reads see it whenever that sector is not pending in the page cache.
  absl::Status flip_bit(std::string_view path, uint64_t byte_offset, int bit);
  // Makes durable sector `sector` unreadable: reads covering it fail with EIO.
  absl::Status make_unreadable(std::string_view path, uint64_t sector);
  // Arms a lost write: the next completed sync that writes `sector` of this file leaves its old
  // content in place (while reporting success).
  absl::Status arm_lost_write(std::string_view path, uint64_t sector);
  // Arms a misdirected write: the next completed sync that writes `sector` writes its data to
  // `target` instead (sector keeps its old content, target reads the new data).
  absl::Status arm_misdirected_write(std::string_view path, uint64_t sector, uint64_t target);
  // Picks a random durable sector of a random durable file and corrupts it at rest (a bit
  // flip, an unreadable sector, or another sector's content). Returns what it did, or
  // NotFound when there is no durable data. Uses this disk's stream: deterministic.
  absl::StatusOr<std::string> corrupt_random_sector();
  // Number of sectors currently carrying corruption (an overlay) in files that still exist.
  size_t corrupted_sectors() const;

  // --- Inspection (tests, checkers). ----------------------------------------------------
  const DiskStats& stats() const { return stats_; }
  // Bytes the files occupy, as counted against capacity_bytes.
  uint64_t used_bytes() const { return used_bytes_; }
  // Size of the durable image of file `path` (current namespace); NotFound if missing.
  absl::StatusOr<uint64_t> durable_size(std::string_view path) const;
  // Number of pending (unsynced) sectors of `path`.
  absl::StatusOr<size_t> pending_sectors(std::string_view path) const;
  // How many (power-loss) crashes happened.
  uint64_t incarnation() const { return incarnation_; }

  // --- env::Disk ---------------------------------------------------------------------------
  absl::StatusOr<std::unique_ptr<env::File>> open(std::string_view path,
                                                  env::OpenMode mode) override;
  absl::Status rename(std::string_view from, std::string_view to) override;
  absl::Status remove(std::string_view path) override;
  absl::Status make_dir(std::string_view path) override;
  absl::StatusOr<std::vector<std::string>> list(std::string_view dir) override;
  void sync_dir(std::string_view dir, env::DoneFn done) override;

 private:
  friend class SimFile;
  // Shared by the disk, its File handles and its scheduled events; the disk cuts it when it
  // is destroyed so that neither a late handle nor a late event touches freed memory.
  struct Link {
    SimDisk* disk = nullptr;
    uint64_t refs = 0;
  };
  // A counted reference to a Link, one pointer wide where a shared_ptr is two: a sync
  // completion event captures one and the sync id, which then fit absl::AnyInvocable's
  // inline storage instead of a heap block per sync. Not thread-safe, like the disk.
  class LinkRef {
   public:
    explicit LinkRef(Link* link) : link_(link) { link_->refs++; }
    LinkRef(const LinkRef& other) : LinkRef(other.link_) {}
    LinkRef(LinkRef&& other) noexcept : link_(std::exchange(other.link_, nullptr)) {}
    LinkRef& operator=(const LinkRef&) = delete;
    ~LinkRef() {
      if (link_ != nullptr && --link_->refs == 0) delete link_;
    }
    Link* operator->() const { return link_; }

   private:
    Link* link_;
  };

  struct Pending {
    uint64_t sector = 0;
    uint64_t gen = 0;       // write generation: a sync covers it only if still equal
    bool orphaned = false;  // a failed sync dropped it from writeback (see docs)
  };
  enum class FaultKind : uint8_t { kBitFlip, kStale, kMisdirected, kUnreadable };
  struct SectorFault {
    FaultKind kind;
    Bytes content;  // kSectorBytes, what reads return (empty for kUnreadable)
  };
  struct Armed {
    bool misdirect = false;  // else a lost write
    uint64_t target = 0;
  };
  // One sector of bytes with a reference count. Not thread-safe: a disk lives on one thread.
  class PagePool;
  class PageRef;
  struct Page {
    std::array<uint8_t, env::kSectorBytes> bytes;
    PagePool* pool = nullptr;  // where the page goes when its last reference drops
    uint32_t refs = 0;
    // bytes[zero_from..] are zeros (a bound, kept through the pool): a page copy need not
    // copy or clear them. kSectorBytes when nothing is known.
    uint32_t zero_from = env::kSectorBytes;
  };
  // Recycles pages: after a sync nearly every write to a file copies a page (the durable
  // image shares it), and malloc and free of 4 KiB blocks were a large part of the
  // simulator's profile.
  class PagePool {
   public:
    // Free pages kept for reuse (16 MiB); pages dropped beyond this go back to the heap.
    static constexpr size_t kFreePagesMax = 4096;
    PagePool() = default;
    PagePool(const PagePool&) = delete;
    PagePool& operator=(const PagePool&) = delete;
    ~PagePool();  // requires every page given back
    // A page with unspecified bytes, for the caller to fill.
    PageRef take();
    // Called by the last PageRef to `page`.
    void give(Page* page);

   private:
    std::vector<Page*> free_;
    uint64_t pages_out_ = 0;  // taken and not given back
  };
  // A counted reference to a Page, or null; the last reference gives the page back to its
  // pool. Shaped like the shared_ptr it replaces.
  class PageRef {
   public:
    PageRef() = default;
    explicit PageRef(Page* page) : page_(page) {
      if (page_ != nullptr) page_->refs++;
    }
    PageRef(const PageRef& other) : PageRef(other.page_) {}
    PageRef(PageRef&& other) noexcept : page_(std::exchange(other.page_, nullptr)) {}
    PageRef& operator=(PageRef other) noexcept {
      std::swap(page_, other.page_);
      return *this;
    }
    ~PageRef() {
      if (page_ != nullptr && --page_->refs == 0) page_->pool->give(page_);
    }
    bool operator==(std::nullptr_t) const { return page_ == nullptr; }
    std::array<uint8_t, env::kSectorBytes>& operator*() const { return page_->bytes; }
    std::array<uint8_t, env::kSectorBytes>* operator->() const { return &page_->bytes; }
    uint32_t use_count() const { return page_ == nullptr ? 0 : page_->refs; }
    size_t zero_from() const { return page_->zero_from; }
    void set_zero_from(size_t n) const { page_->zero_from = uint32_t(n); }

   private:
    Page* page_ = nullptr;
  };

  // A file image in sector chunks shared copy-on-write: the page cache, the durable image
  // and sync snapshots share unchanged sectors, so a sync or a crash copies pointers, not
  // bytes. A null chunk reads as zeros; bytes past size() in the last chunk are zeros.
  class Image {
   public:
    using Chunk = PageRef;
    explicit Image(PagePool& pool) : pool_(&pool) {}
    uint64_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    // Shrinks (zeroing the rest of the new last sector) or extends with zeros.
    void resize(uint64_t size);
    // Copies min(out.size(), size() - offset) bytes; requires offset <= size().
    size_t read(uint64_t offset, std::span<uint8_t> out) const;
    // Writes data at offset, extending the image if needed.
    void write(uint64_t offset, ByteView data);
    const Chunk& chunk(uint64_t sector) const { return chunks_[sector]; }
    // Shares `chunk` as sector `sector` (< sectors); its bytes past size() must be zeros.
    void set_chunk(uint64_t sector, Chunk chunk);
    // Sector `sector` as kSectorBytes bytes (zeros past the end).
    Bytes sector_bytes(uint64_t sector) const;
    // Sector `sector`, writable anywhere: copied first if shared (zeros if null).
    uint8_t* mutable_sector(uint64_t sector) {
      uint8_t* bytes = overwrite_sector(sector, 0, 0);
      chunks_[sector].set_zero_from(env::kSectorBytes);
      return bytes;
    }
    // The same for a caller about to overwrite bytes [begin, end) of the sector, and no
    // others: a fresh page gets only the rest copied (or zeroed), and only up to the pages'
    // zero_from marks. Appends after a sync copy the shared last page, and those copies were
    // the disk model's largest cost.
    uint8_t* overwrite_sector(uint64_t sector, size_t begin, size_t end);

   private:
    PagePool* pool_;
    uint64_t size_ = 0;
    std::vector<Chunk> chunks_;
  };

  struct Inode {
    Inode(uint64_t ino, PagePool& pool) : id(ino), cache(pool), durable(pool) {}
    uint64_t id = 0;
    Image cache;            // what reads see; size() is the current size
    Image durable;          // the pristine durable image; size() is the durable size
    uint64_t low_size = 0;  // smallest size since the durable point (< durable: a pending shrink)
    uint64_t low_since_call = 0;  // smallest size since the last sync call
    // Pending sectors sorted by sector: writes mostly append, so a flat vector beats a map.
    std::vector<Pending> pending;
    std::map<uint64_t, SectorFault> faults;  // corruption overlay over `durable`
    std::map<uint64_t, Armed> armed;         // explicit faults waiting for a sync
    std::deque<uint64_t> syncs;              // ids of syncs in flight, in completion order
    int64_t last_sync_done_ns = 0;
    uint64_t next_gen = 1;
    int64_t refs = 0;
  };
  struct Entry {
    bool is_dir = false;
    uint64_t ino = 0;  // 0 for directories
  };
  using Dir = std::map<std::string, Entry, std::less<>>;
  using Namespace = std::map<std::string, Dir, std::less<>>;  // dir path -> entries
  struct DirChange {
    std::string name;
    std::optional<Entry> entry;  // nullopt: the name is removed
  };
  struct DirOp {
    uint64_t seq = 0;
    std::vector<DirChange> changes;  // applied together (a rename is two)
  };
  enum class SyncOutcome : uint8_t { kOk, kEio, kLie };
  struct SyncedSector {
    uint64_t sector = 0;
    uint64_t gen = 0;   // its write generation at the call
    Image::Chunk data;  // its content at the call
  };
  struct FileSync {
    uint64_t ino = 0;
    Inode* inode = nullptr;  // alive while the sync is: the sync holds a reference
    uint64_t handle = 0;
    uint64_t size = 0;       // current size at the call
    uint64_t shrink_to = 0;  // smallest size between the previous sync call and this one
    uint64_t low = 0;        // smallest size since this call
    // The pending sectors at the call, with their content then.
    std::vector<SyncedSector> sectors;
    SyncOutcome outcome = SyncOutcome::kOk;
    env::DoneFn done;
    Scheduler::EventId event;
  };
  struct DirSync {
    std::string dir;
    uint64_t upto_seq = 0;
    SyncOutcome outcome = SyncOutcome::kOk;
    env::DoneFn done;
    Scheduler::EventId event;
  };

  // File handle operations (SimFile forwards here after checking it is alive).
  absl::StatusOr<size_t> file_read(Inode& inode, uint64_t offset, std::span<uint8_t> out);
  absl::Status file_write(Inode& inode, uint64_t offset, ByteView data);
  absl::Status file_truncate(Inode& inode, uint64_t size);
  uint64_t file_size(const Inode& inode) const;
  void file_sync(Inode& inode, uint64_t handle, env::DoneFn done);
  void file_close(Inode& inode, uint64_t handle);
  void deliver_later(env::DoneFn done, absl::Status status);

  // The entry of sync `id` in file_syncs_, or file_syncs_.end().
  std::vector<std::pair<uint64_t, FileSync>>::iterator find_file_sync(uint64_t id);
  FileSync& file_sync_at(uint64_t id);
  void complete_file_sync(uint64_t id);
  void complete_dir_sync(uint64_t id);
  void apply_file_sync(Inode& inode, const FileSync& sync);
  void write_durable_sector(Inode& inode, uint64_t sector, const Image::Chunk& data, size_t n);
  void shrink_durable(Inode& inode, uint64_t size);
  bool reads_from_disk(const Inode& inode, uint64_t sector) const;
  // The first pending sector of `inode` at or after `sector`.
  static std::vector<Pending>::iterator pending_from(Inode& inode, uint64_t sector);
  int64_t draw_sync_latency();

  void crash_namespace();
  void crash_inode(Inode& inode);
  void recount_refs();

  Inode& inode(uint64_t ino);
  const Inode* find_file(std::string_view path) const;
  Inode* find_file(std::string_view path);
  const Entry* find_current(std::string_view path) const;
  void ref(uint64_t ino);
  void unref(uint64_t ino);
  void unref(Inode& inode);
  void set_entry(Namespace& ns, std::string_view dir, std::string_view name,
                 std::optional<Entry> entry);
  void push_dir_op(std::string_view dir, std::vector<DirChange> changes);
  static uint64_t footprint(const Inode& inode);
  absl::Status reserve(const Inode& inode, uint64_t new_cache_size);
  void record(std::string_view kind, std::string_view detail);

  Scheduler& scheduler_;
  std::string node_;
  env::Random latency_rng_;
  env::Random fault_rng_;
  env::Random crash_rng_;
  DiskFaults faults_;
  bool corruption_allowed_ = true;
  DiskStats stats_;
  LinkRef link_;
  // Before every member holding pages, so that it is destroyed after them.
  PagePool pages_;
  uint64_t incarnation_ = 0;  // bumped by crash(): scheduled sync completions die
  // Syncs numbered below this were called before the last crash (the incarnation_ check of
  // a completion event, without capturing the incarnation).
  uint64_t first_live_sync_id_ = 1;
  uint64_t process_epoch_ = 0;            // bumped by crash() and process_crash(): handles die
  std::map<uint64_t, uint64_t> handles_;  // open handle -> inode

  std::map<uint64_t, std::unique_ptr<Inode>> inodes_;
  uint64_t next_ino_ = 1;
  uint64_t used_bytes_ = 0;
  Namespace current_;  // what list/open see
  Namespace durable_;  // what survives a crash for certain
  std::map<std::string, std::deque<DirOp>, std::less<>> dir_ops_;  // pending, per directory
  uint64_t next_dir_op_seq_ = 1;
  std::map<std::string, int64_t, std::less<>> last_dir_sync_done_ns_;
  // Syncs in flight, (id, sync) sorted by id: ids grow, so a new sync appends, and few are in
  // flight at once, so a flat vector beats a map's node per sync.
  std::vector<std::pair<uint64_t, FileSync>> file_syncs_;
  std::map<uint64_t, DirSync> dir_syncs_;
  uint64_t next_sync_id_ = 1;
  uint64_t next_handle_ = 1;
};

}  // namespace keel::sim
