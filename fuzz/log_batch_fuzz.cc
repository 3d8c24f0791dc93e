// Fuzzes the RecordBatch v2 decoders: header parsing, full validation, record decoding, and
// the segment frame check. Any input must be rejected cleanly or decode consistently.
#include <cstddef>
#include <cstdint>

#include "base/check.h"
#include "log/batch.h"
#include "log/segment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keel;
  using namespace keel::log;
  ByteView in(data, size);
  auto h = parse_batch_header(in, kBatchBytesMax);
  auto v = validate_batch(in, kBatchBytesMax);
  if (v.ok()) {
    KEEL_CHECK(h.ok());
    KEEL_CHECK_EQ(v->total_bytes(), size);
    KEEL_CHECK(v->last_offset() >= v->base_offset);
    auto records = decode_records(in);
    if (records.ok()) KEEL_CHECK_LE(records->size(), size_t(v->records_count));
    // A valid batch framed is a valid frame, and any flipped bit breaks it.
    Bytes frame;
    append_frame(frame, in);
    KEEL_CHECK(verify_frame(frame, kBatchBytesMax).ok());
    frame[size % frame.size()] ^= 0x01;
    KEEL_CHECK(!verify_frame(frame, kBatchBytesMax).ok());
  }
  (void)verify_frame(in, kBatchBytesMax);
  return 0;
}
