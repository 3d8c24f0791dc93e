// Fuzzes the peer frame decoder (cluster/frame.h) with arbitrary bytes fed in arbitrary
// splits: it must never crash, never yield a frame whose checksum it did not verify, and
// once it reports an error it must keep reporting it. A second decoder gets the same splits
// through feed_in_place (whole frames read where they arrived) and must yield exactly the
// same frames and errors.
#include <cstddef>
#include <cstdint>

#include "base/check.h"
#include "cluster/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using keel::cluster::FrameDecoder;
  FrameDecoder decoder;
  FrameDecoder in_place;
  // The first byte chooses the split size, so the fuzzer explores partial deliveries.
  const size_t chunk = size > 0 ? (data[0] % 64) + 1 : 1;
  bool failed = false;
  for (size_t at = 1; at < size; at += chunk) {
    const size_t n = std::min(chunk, size - at);
    decoder.feed(keel::ByteView(data + at, n));
    in_place.feed_in_place(keel::ByteView(data + at, n));
    for (;;) {
      auto frame = decoder.next();
      auto view = in_place.next_view();
      KEEL_CHECK(
          frame.ok() == view.ok() && (!frame.ok() || frame->has_value() == view->has_value()),
          "feed_in_place disagrees with feed");
      if (!frame.ok()) {
        KEEL_CHECK(frame.status() == view.status());
        failed = true;
        break;
      }
      KEEL_CHECK(!failed);
      if (!frame->has_value()) break;
      KEEL_CHECK((*view)->type == (*frame)->type &&
                 keel::Bytes((*view)->payload.begin(), (*view)->payload.end()) ==
                     (*frame)->payload);
      // Re-encoding a decoded frame and decoding it again gives the same frame.
      keel::Bytes again;
      keel::cluster::encode_frame((*frame)->type, (*frame)->payload, again);
      FrameDecoder check;
      check.feed(again);
      auto round = check.next();
      KEEL_CHECK(round.ok() && round->has_value() && (*round)->payload == (*frame)->payload);
    }
    if (failed) {
      KEEL_CHECK(!decoder.next().ok());
      break;
    }
  }
  return 0;
}
