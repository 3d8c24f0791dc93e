// Fuzzes the state file decoder and the checkpoint decoder behind it: garbage must be
// rejected, and whatever decodes must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>

#include "base/check.h"
#include "log/checkpoint.h"
#include "log/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace keel;
  using namespace keel::log;
  ByteView in(data, size);
  auto payload = decode_state(in);
  if (payload.ok()) KEEL_CHECK(encode_state(*payload) == Bytes(in.begin(), in.end()));
  // The checkpoint codec on the raw bytes and on the decoded payload.
  for (ByteView p : {in, payload.ok() ? ByteView(*payload) : ByteView()}) {
    auto cp = decode_checkpoint(p);
    if (cp.ok()) KEEL_CHECK(encode_checkpoint(*cp) == Bytes(p.begin(), p.end()));
  }
  return 0;
}
