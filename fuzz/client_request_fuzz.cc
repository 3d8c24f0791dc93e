// Fuzzes the client request path of a broker (cluster/node.cc, cluster/replica.cc): a
// single-replica cluster::Node on the simulated Env (disk, network, clock), and a client that
// sends it arbitrary bytes as ClientRequest frames over the simulated network (produce with
// any batch bytes, fetch with any offset and max_bytes, empty or unknown bodies). The node
// must never crash; every request that decodes gets exactly one response, with its id; an
// undecodable request closes that connection (a produce still waiting for commit then goes
// unanswered: there is no one to answer); a produce of bytes that are not one valid
// batch is refused with INVALID_REQUEST; fetched bytes are whole, verified batches below the
// high watermark; and after everything the replica is still healthy and can take a produce.
//
// Input: u8 flags | (u16 length (big-endian) | that many bytes of ClientRequest)... Flags:
// bit 0 sends the requests before the replica has elected itself (NOT_LEADER answers).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/check.h"
#include "cluster/cluster.pb.h"
#include "cluster/frame.h"
#include "cluster/node.h"
#include "log/batch.h"
#include "sim/world.h"

namespace {

using namespace keel;

constexpr uint16_t kPeerPort = 9000;
constexpr uint16_t kClientPort = 9092;
constexpr size_t kBatchBytesMax = 16 << 10;

struct Request {
  std::string bytes;
  bool decodes = false;
  cluster::ClientRequest parsed;
};

struct Outcome {
  std::vector<cluster::ClientResponse> responses;
  bool opened = false;
  bool closed = false;
};

// Sends every request at once on open; records every response.
class Client final : public env::Process {
 public:
  Client(env::Env& env, const std::vector<Request>& requests, Outcome& out) : out_(out) {
    stream_ = env.network().connect({"n1", kClientPort});
    Bytes frames;
    for (const Request& r : requests) {
      cluster::encode_frame(cluster::FrameType::kClient, as_bytes(r.bytes), frames);
    }
    KEEL_CHECK(stream_->send(frames).ok());
    stream_->set_handlers({
        .on_open = [this] { out_.opened = true; },
        .on_data = [this](ByteView bytes) { on_data(bytes); },
        .on_close = [this](absl::Status) { out_.closed = true; },
    });
  }

 private:
  void on_data(ByteView bytes) {
    decoder_.feed(bytes);
    for (;;) {
      auto frame = decoder_.next();
      KEEL_CHECK(frame.ok(), "broker sent a bad frame: {}", frame.status().ToString());
      if (!frame->has_value()) return;
      KEEL_CHECK((*frame)->type == cluster::FrameType::kClient);
      cluster::ClientResponse r;
      KEEL_CHECK(r.ParseFromArray((*frame)->payload.data(), int((*frame)->payload.size())));
      out_.responses.push_back(std::move(r));
    }
  }

  Outcome& out_;
  std::unique_ptr<env::Stream> stream_;
  cluster::FrameDecoder decoder_;
};

void check_batches(const std::string& batches, int64_t high_watermark) {
  ByteView rest = as_bytes(batches);
  while (!rest.empty()) {
    auto h = log::parse_batch_header(rest, log::kBatchBytesMax);
    KEEL_CHECK(h.ok(), "fetched bytes are not batches: {}", h.status().ToString());
    KEEL_CHECK(rest.size() >= h->total_bytes());
    KEEL_CHECK(log::validate_batch(rest.first(h->total_bytes()), log::kBatchBytesMax).ok());
    KEEL_CHECK(h->next_offset() <= high_watermark, "fetched past the high watermark");
    rest = rest.subspan(h->total_bytes());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 64 * 1024) return 0;
  const uint8_t flags = data[0];
  std::vector<Request> requests;
  for (size_t at = 1; at + 2 <= size && requests.size() < 64;) {
    const size_t n = std::min<size_t>(get_be16(data + at), size - at - 2);
    Request& r = requests.emplace_back();
    r.bytes.assign(reinterpret_cast<const char*>(data + at + 2), n);
    r.decodes = r.parsed.ParseFromString(r.bytes);
    at += 2 + n;
  }

  sim::World world(sim::WorldOptions{.seed = 1, .nodes = {"n1", "c"}, .shuffle_ties = false});
  std::map<uint64_t, cluster::Member> members;
  members[1] = {"n1", {"n1", kPeerPort}, {"n1", kClientPort}};
  cluster::Node* node = nullptr;
  world.set_factory(0, [&](env::Env& env) -> std::unique_ptr<env::Process> {
    cluster::NodeConfig config;
    config.id = 1;
    config.members = members;
    config.replica.dir = "p0";
    config.replica.log.segment_bytes_max = 64 << 10;
    config.replica.log.batch_bytes_max = kBatchBytesMax;
    auto n = std::make_unique<cluster::Node>(env, std::move(config));
    node = n.get();
    return n;
  });
  Outcome out;
  world.set_factory(1, [&](env::Env& env) -> std::unique_ptr<env::Process> {
    return std::make_unique<Client>(env, requests, out);
  });
  world.start(0);
  KEEL_CHECK(node->health().ok(), "{}", node->health().ToString());
  if (!(flags & 1)) {
    // The single replica elects itself within a few election timeouts.
    for (int i = 0; i < 200 && node->replica()->core().role() != raft::Role::kLeader; i++) {
      world.run_for(10'000'000);
    }
    KEEL_CHECK(node->replica()->core().role() == raft::Role::kLeader);
  }
  size_t decodable = 0;
  while (decodable < requests.size() && requests[decodable].decodes) decodable++;
  world.start(1);
  // Until every answer is in (or the connection is closed and nothing is left in flight).
  for (int i = 0; i < 500 && out.responses.size() < decodable && !out.closed; i++) {
    world.run_for(10'000'000, 100'000);
  }
  world.run_for(100'000'000, 100'000);

  // The node is healthy, and answered every request before the first undecodable one.
  KEEL_CHECK(node->health().ok(), "{}", node->health().ToString());
  KEEL_CHECK(out.opened);
  size_t answered = 0;
  bool dropped = false;
  std::map<uint64_t, size_t> expected_ids;  // id -> requests with it, up to the first bad one
  std::map<uint64_t, const cluster::ClientRequest*> by_id;
  for (const Request& r : requests) {
    if (!r.decodes) {
      dropped = true;
      break;
    }
    expected_ids[r.parsed.id()]++;
    by_id[r.parsed.id()] = &r.parsed;
    answered++;
  }
  const std::map<uint64_t, size_t> unique = expected_ids;
  KEEL_CHECK(answered == decodable);
  // A produce waiting for commit when its connection is closed has no one to answer.
  KEEL_CHECK(dropped ? out.responses.size() <= answered : out.responses.size() == answered,
             "{} responses to {} requests", out.responses.size(), answered);
  KEEL_CHECK(out.closed == dropped);
  for (const cluster::ClientResponse& resp : out.responses) {
    // KEEL_FUZZ_LOG=1 prints the answers (to debug one input).
    if (std::getenv("KEEL_FUZZ_LOG") != nullptr) {
      std::fprintf(stderr, "response %s\n", resp.ShortDebugString().c_str());
    }
    auto it = expected_ids.find(resp.id());
    KEEL_CHECK(it != expected_ids.end() && it->second > 0, "response to unknown id {}", resp.id());
    it->second--;
    // Duplicate ids: which request an answer is for is ambiguous; check only unique ones.
    if (unique.at(resp.id()) != 1 || resp.error() != cluster::OK) continue;
    const cluster::ClientRequest& req = *by_id.at(resp.id());
    if (req.has_produce()) {
      // Accepted only if it is one valid batch.
      KEEL_CHECK(log::validate_batch(as_bytes(req.produce().batch()), kBatchBytesMax).ok());
      KEEL_CHECK(resp.base_offset() >= 1);
    } else if (req.has_fetch()) {
      check_batches(resp.batches(), resp.high_watermark());
    }
  }

  // Still serving: a valid batch is accepted after whatever came before.
  cluster::Replica* replica = node->replica();
  KEEL_CHECK(replica != nullptr && !replica->failed());
  if (replica->core().role() != raft::Role::kLeader) return 0;
  log::BatchSpec spec;
  spec.records.push_back({std::nullopt, to_bytes("after"), 0});
  const Bytes batch = log::build_batch(spec);
  bool done = false;
  replica->produce(batch, true, [&](cluster::ProduceResult r) {
    done = true;
    KEEL_CHECK(r.error == cluster::OK, "produce after the fuzz input: {} {}", int(r.error),
               r.message);
  });
  world.run_for(1'000'000'000);
  KEEL_CHECK(done);
  return 0;
}
