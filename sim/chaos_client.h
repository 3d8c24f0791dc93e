// Clients of the partition chaos scenario (sim/chaos.h): producers that send record batches
// with acks=all or acks=1 and retry until they get an answer, and consumers that read
// committed data from offset 1 on. They run as processes on their own simulated hosts, talk
// to the brokers over the simulated network with the cluster's client protocol
// (cluster.proto), and report everything they learn to a History that lives outside the
// process, so a client crash loses no evidence.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/cluster.pb.h"
#include "cluster/frame.h"
#include "env/env.h"

namespace keel::sim {

// What the clients saw, for the checker.
struct History {
  struct Ack {
    int64_t base_offset = 0;
    bool acks_all = false;
    std::vector<std::string> values;  // record values, in offset order from base_offset
    int64_t at_ns = 0;
    uint32_t crc = 0;  // the batch's Kafka CRC
  };
  // Every acknowledged produce, in acknowledgement order.
  std::vector<Ack> acks;
  // Consumers: offset -> record value (from verified batches); first sighting wins, later
  // sightings must agree.
  std::map<int64_t, std::string> consumed;
  uint64_t produce_attempts = 0;
  uint64_t produce_errors = 0;
  uint64_t produce_timeouts = 0;
  uint64_t fetches = 0;
  uint64_t consumed_records = 0;
  uint64_t retention_skipped = 0;       // offsets a consumer skipped: below the log start
  std::vector<std::string> violations;  // seen by clients (bad CRC, gaps, changed records)
  // Time of the latest acks=all acknowledgement (liveness).
  int64_t last_ack_all_ns = -1;
  // Producers draw batch ids here, so record values stay unique across client restarts.
  uint64_t next_batch_id = 1;
};

struct ClientOptions {
  std::string name;  // "c1"
  std::vector<env::Address> brokers;
  bool producer = true;
  bool acks_all = true;  // producers only
  int records_per_batch_max = 3;
  env::Nanos request_timeout = std::chrono::milliseconds(1500);
  env::Nanos pause = std::chrono::milliseconds(20);  // between requests
  History* history = nullptr;
  // Global virtual time for the history (the process's own clock may drift).
  std::function<int64_t()> now_ns;
  // Producers stop producing when false (the drain phase).
  const bool* producing = nullptr;
};

class ChaosClient final : public env::Process {
 public:
  ChaosClient(env::Env& env, ClientOptions options);
  ~ChaosClient() override;

 private:
  void connect(size_t broker);
  void on_data(ByteView bytes);
  void on_closed();
  void issue();
  void send_request(const cluster::ClientRequest& request);
  void on_timeout();
  void handle(const cluster::ClientResponse& response);
  void handle_produce(const cluster::ClientResponse& response);
  void handle_fetch(const cluster::ClientResponse& response);
  void rotate(uint64_t leader_hint);
  void schedule_issue(env::Nanos delay);

  env::Env& env_;
  ClientOptions options_;
  std::unique_ptr<env::Stream> stream_;
  std::vector<std::unique_ptr<env::Stream>> graveyard_;
  bool open_ = false;
  size_t broker_ = 0;
  cluster::FrameDecoder decoder_;
  env::Timer timeout_;
  env::Timer next_;
  uint64_t next_request_id_ = 1;
  uint64_t in_flight_ = 0;  // request id awaiting a response, 0 if none
  // Producer: the batch being sent (kept across retries until answered).
  uint64_t batch_seq_ = 0;
  std::optional<std::string> batch_;
  std::vector<std::string> batch_values_;
  // Consumer: the next offset to read.
  int64_t next_offset_ = 1;
};

}  // namespace keel::sim
