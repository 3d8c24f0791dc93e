#include "log/batch.h"

#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/crc32c.h"

namespace keel::log {
namespace {

void put_varint(Bytes& out, int64_t v) {
  uint64_t z = (uint64_t(v) << 1) ^ uint64_t(v >> 63);  // zigzag
  while (z >= 0x80) {
    out.push_back(uint8_t(z | 0x80));
    z >>= 7;
  }
  out.push_back(uint8_t(z));
}

// Reads a zigzag varint of at most 10 bytes; nullopt if truncated or too long.
std::optional<int64_t> get_varint(ByteView in, size_t& pos) {
  uint64_t z = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos >= in.size()) return std::nullopt;
    uint8_t b = in[pos++];
    z |= uint64_t(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return int64_t(z >> 1) ^ -int64_t(z & 1);
  }
  return std::nullopt;
}

void put_opt_bytes(Bytes& out, const std::optional<Bytes>& b) {
  if (!b) {
    put_varint(out, -1);
    return;
  }
  put_varint(out, int64_t(b->size()));
  out.insert(out.end(), b->begin(), b->end());
}

std::optional<std::optional<Bytes>> get_opt_bytes(ByteView in, size_t& pos) {
  auto len = get_varint(in, pos);
  if (!len || *len < -1) return std::nullopt;
  if (*len == -1) return std::optional<Bytes>();
  if (uint64_t(*len) > in.size() - pos) return std::nullopt;
  Bytes b(in.begin() + pos, in.begin() + pos + *len);
  pos += size_t(*len);
  return std::optional<Bytes>(std::move(b));
}

}  // namespace

absl::StatusOr<BatchHeader> parse_batch_header(ByteView b, size_t batch_bytes_max) {
  if (b.size() < kBatchHeaderBytes) return absl::InvalidArgumentError("batch: short header");
  BatchHeader h;
  h.base_offset = int64_t(get_be64(&b[0]));
  h.batch_length = int32_t(get_be32(&b[8]));
  h.leader_epoch = int32_t(get_be32(&b[12]));
  h.magic = int8_t(b[16]);
  h.crc = get_be32(&b[17]);
  h.attributes = int16_t(get_be16(&b[21]));
  h.last_offset_delta = int32_t(get_be32(&b[23]));
  h.base_timestamp = int64_t(get_be64(&b[27]));
  h.max_timestamp = int64_t(get_be64(&b[35]));
  h.producer_id = int64_t(get_be64(&b[43]));
  h.producer_epoch = int16_t(get_be16(&b[51]));
  h.base_sequence = int32_t(get_be32(&b[53]));
  h.records_count = int32_t(get_be32(&b[57]));
  if (h.magic != kMagicV2)
    return absl::InvalidArgumentError(absl::StrCat("batch: magic ", h.magic));
  if (h.batch_length < int32_t(kBatchHeaderBytes - kBatchLengthPrefixBytes) ||
      h.total_bytes() > batch_bytes_max) {
    return absl::InvalidArgumentError(absl::StrCat("batch: bad length ", h.batch_length));
  }
  if (h.last_offset_delta < 0 || h.records_count < 0) {
    return absl::InvalidArgumentError("batch: negative lastOffsetDelta or recordsCount");
  }
  if (h.base_offset < 0 ||
      h.base_offset > std::numeric_limits<int64_t>::max() - 1 - h.last_offset_delta) {
    return absl::InvalidArgumentError("batch: offset out of range");
  }
  return h;
}

uint32_t compute_batch_crc(ByteView batch) {
  KEEL_CHECK(batch.size() >= kBatchCrcStart);
  return crc32c(batch.subspan(kBatchCrcStart));
}

absl::StatusOr<BatchHeader> validate_batch(ByteView batch, size_t batch_bytes_max) {
  auto h = parse_batch_header(batch, batch_bytes_max);
  if (!h.ok()) return h.status();
  if (h->total_bytes() != batch.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch: length field says ", h->total_bytes(), ", got ", batch.size()));
  }
  if (compute_batch_crc(batch) != h->crc) return absl::DataLossError("batch: CRC mismatch");
  return h;
}

void set_base_offset(std::span<uint8_t> batch, int64_t base_offset) {
  KEEL_CHECK(batch.size() >= kBatchHeaderBytes);
  put_be64(&batch[0], uint64_t(base_offset));
}

void set_leader_epoch(std::span<uint8_t> batch, int32_t leader_epoch) {
  KEEL_CHECK(batch.size() >= kBatchHeaderBytes);
  put_be32(&batch[12], uint32_t(leader_epoch));
}

Bytes build_batch(const BatchSpec& spec) {
  KEEL_CHECK(!spec.records.empty());
  KEEL_CHECK((spec.attributes & kAttrCodecMask) == 0, "build_batch does not compress");
  Bytes out(kBatchHeaderBytes, 0);
  int64_t max_ts = spec.base_timestamp;
  Bytes rec;
  for (size_t i = 0; i < spec.records.size(); i++) {
    const Record& r = spec.records[i];
    rec.clear();
    rec.push_back(0);  // record attributes
    put_varint(rec, r.timestamp_delta);
    put_varint(rec, int64_t(i));
    put_opt_bytes(rec, r.key);
    put_opt_bytes(rec, r.value);
    put_varint(rec, 0);  // no headers
    put_varint(out, int64_t(rec.size()));
    out.insert(out.end(), rec.begin(), rec.end());
    max_ts = std::max(max_ts, spec.base_timestamp + r.timestamp_delta);
  }
  KEEL_CHECK(out.size() <= kBatchBytesMax);
  uint8_t* p = out.data();
  put_be64(p + 0, uint64_t(spec.base_offset));
  put_be32(p + 8, uint32_t(out.size() - kBatchLengthPrefixBytes));
  put_be32(p + 12, uint32_t(spec.leader_epoch));
  p[16] = uint8_t(kMagicV2);
  put_be16(p + 21, uint16_t(spec.attributes));
  put_be32(p + 23, uint32_t(spec.records.size() - 1));
  put_be64(p + 27, uint64_t(spec.base_timestamp));
  put_be64(p + 35, uint64_t(max_ts));
  put_be64(p + 43, uint64_t(spec.producer_id));
  put_be16(p + 51, uint16_t(spec.producer_epoch));
  put_be32(p + 53, uint32_t(spec.base_sequence));
  put_be32(p + 57, uint32_t(spec.records.size()));
  put_be32(p + 17, compute_batch_crc(out));
  return out;
}

absl::StatusOr<std::vector<Record>> decode_records(ByteView batch) {
  auto h = validate_batch(batch);
  if (!h.ok()) return h.status();
  if ((h->attributes & kAttrCodecMask) != 0) {
    return absl::UnimplementedError("decode_records: compressed batch");
  }
  std::vector<Record> records;
  size_t pos = kBatchHeaderBytes;
  for (int32_t i = 0; i < h->records_count; i++) {
    auto len = get_varint(batch, pos);
    if (!len || *len < 1 || uint64_t(*len) > batch.size() - pos) {
      return absl::InvalidArgumentError("record: bad length");
    }
    ByteView rb = batch.subspan(pos, size_t(*len));
    pos += size_t(*len);
    size_t rp = 1;  // skip attributes
    Record r;
    auto ts = get_varint(rb, rp);
    auto od = get_varint(rb, rp);
    if (!ts || !od) return absl::InvalidArgumentError("record: bad varint");
    r.timestamp_delta = *ts;
    auto key = get_opt_bytes(rb, rp);
    if (!key) return absl::InvalidArgumentError("record: bad key");
    auto value = get_opt_bytes(rb, rp);
    if (!value) return absl::InvalidArgumentError("record: bad value");
    r.key = std::move(*key);
    r.value = std::move(*value);
    records.push_back(std::move(r));
  }
  if (pos != batch.size()) return absl::InvalidArgumentError("record: trailing bytes");
  return records;
}

}  // namespace keel::log
