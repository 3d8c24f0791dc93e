#include "sim/chaos_client.h"

#include <fmt/format.h>

#include "base/check.h"
#include "log/batch.h"

namespace keel::sim {

ChaosClient::ChaosClient(env::Env& env, ClientOptions options)
    : env_(env), options_(std::move(options)), timeout_(env.clock()), next_(env.clock()) {
  KEEL_CHECK(!options_.brokers.empty() && options_.history != nullptr);
  broker_ = size_t(env_.random().uniform(options_.brokers.size()));
  connect(broker_);
}

ChaosClient::~ChaosClient() = default;

void ChaosClient::connect(size_t broker) {
  if (stream_ != nullptr) {
    stream_->close();
    graveyard_.push_back(std::move(stream_));
  }
  broker_ = broker % options_.brokers.size();
  open_ = false;
  in_flight_ = 0;
  decoder_ = cluster::FrameDecoder();
  stream_ = env_.network().connect(options_.brokers[broker_]);
  stream_->set_handlers({
      .on_open =
          [this] {
            open_ = true;
            graveyard_.clear();
            schedule_issue(env::Nanos(0));
          },
      .on_data = [this](ByteView bytes) { on_data(bytes); },
      .on_close = [this](absl::Status) { on_closed(); },
  });
  timeout_.start(options_.request_timeout, [this] { on_timeout(); });
}

void ChaosClient::on_closed() {
  // Inside the stream's callback: reconnect from a later event.
  open_ = false;
  in_flight_ = 0;
  next_.start(options_.pause * 5, [this] { connect(broker_ + 1); });
}

void ChaosClient::on_timeout() {
  if (in_flight_ != 0) options_.history->produce_timeouts += options_.producer ? 1 : 0;
  connect(broker_ + 1);
}

void ChaosClient::rotate(uint64_t leader_hint) {
  // Broker ids are 1-based in broker order.
  if (leader_hint >= 1 && leader_hint <= options_.brokers.size() && leader_hint - 1 != broker_) {
    connect(leader_hint - 1);
  } else {
    next_.start(options_.pause * 5, [this] { connect(broker_ + 1); });
  }
}

void ChaosClient::schedule_issue(env::Nanos delay) {
  next_.start(delay, [this] { issue(); });
}

void ChaosClient::issue() {
  if (!open_ || in_flight_ != 0) return;
  cluster::ClientRequest request;
  request.set_id(next_request_id_++);
  if (options_.producer) {
    if (options_.producing != nullptr && !*options_.producing && !batch_) return;
    if (!batch_) {
      // A new batch of 1..records_per_batch_max records with values unique in the run.
      const uint64_t id = options_.history->next_batch_id++;
      const int n = int(env_.random().range(1, options_.records_per_batch_max));
      log::BatchSpec spec;
      batch_values_.clear();
      for (int i = 0; i < n; i++) {
        std::string v = fmt::format("{}-b{}-r{}", options_.name, id, i);
        spec.records.push_back({std::nullopt, to_bytes(v), i});
        batch_values_.push_back(std::move(v));
      }
      spec.base_timestamp = env_.clock().wall_time_ms();
      const Bytes b = log::build_batch(spec);
      batch_ = std::string(as_chars(b));
    }
    request.mutable_produce()->set_batch(*batch_);
    request.mutable_produce()->set_acks_all(options_.acks_all);
    options_.history->produce_attempts++;
  } else {
    request.mutable_fetch()->set_offset(next_offset_);
    request.mutable_fetch()->set_max_bytes(64 << 10);
    options_.history->fetches++;
  }
  send_request(request);
}

void ChaosClient::send_request(const cluster::ClientRequest& request) {
  const std::string bytes = request.SerializeAsString();
  Bytes frame;
  cluster::encode_frame(cluster::FrameType::kClient, as_bytes(bytes), frame);
  if (!stream_->send(frame).ok()) {
    connect(broker_ + 1);
    return;
  }
  in_flight_ = request.id();
  timeout_.start(options_.request_timeout, [this] { on_timeout(); });
}

void ChaosClient::on_data(ByteView bytes) {
  decoder_.feed(bytes);
  for (;;) {
    auto frame = decoder_.next();
    if (!frame.ok()) {
      options_.history->violations.push_back(
          fmt::format("{}: bad frame from broker: {}", options_.name, frame.status().ToString()));
      return on_closed();
    }
    if (!frame->has_value()) return;
    cluster::ClientResponse response;
    if (!response.ParseFromArray((*frame)->payload.data(), int((*frame)->payload.size()))) {
      options_.history->violations.push_back(
          fmt::format("{}: undecodable response", options_.name));
      return on_closed();
    }
    if (response.id() != in_flight_) continue;  // a stale answer
    in_flight_ = 0;
    timeout_.cancel();
    handle(response);
    if (!open_) return;
  }
}

void ChaosClient::handle(const cluster::ClientResponse& response) {
  if (options_.producer) {
    handle_produce(response);
  } else {
    handle_fetch(response);
  }
}

void ChaosClient::handle_produce(const cluster::ClientResponse& response) {
  if (response.error() != cluster::OK) {
    options_.history->produce_errors++;
    return rotate(response.leader_hint());
  }
  History::Ack ack;
  ack.base_offset = response.base_offset();
  ack.acks_all = options_.acks_all;
  ack.values = batch_values_;
  // The Kafka CRC covers the records, not the offsets and epoch the broker stamps.
  auto header = log::parse_batch_header(as_bytes(*batch_), log::kBatchBytesMax);
  KEEL_CHECK(header.ok());
  ack.crc = header->crc;
  ack.at_ns = options_.now_ns();
  if (ack.acks_all) options_.history->last_ack_all_ns = ack.at_ns;
  options_.history->acks.push_back(std::move(ack));
  batch_.reset();
  schedule_issue(options_.pause);
}

void ChaosClient::handle_fetch(const cluster::ClientResponse& response) {
  History& h = *options_.history;
  // Out of range: a new leader's high watermark may lag the offset we reached; ask again.
  if (response.error() == cluster::OFFSET_OUT_OF_RANGE) {
    // Below the log start: retention dropped those records; like a Kafka consumer with
    // auto.offset.reset=earliest, move to the start.
    if (response.log_start() > next_offset_) {
      h.retention_skipped += uint64_t(response.log_start() - next_offset_);
      next_offset_ = response.log_start();
      return schedule_issue(options_.pause);
    }
    return schedule_issue(options_.pause * 5);
  }
  if (response.error() != cluster::OK) return rotate(response.leader_hint());
  ByteView rest = as_bytes(response.batches());
  while (!rest.empty()) {
    auto header = log::parse_batch_header(rest, log::kBatchBytesMax);
    if (!header.ok() || header->total_bytes() > rest.size()) {
      h.violations.push_back(
          fmt::format("{}: malformed batch served at {}", options_.name, next_offset_));
      return on_closed();
    }
    const ByteView batch = rest.first(header->total_bytes());
    rest = rest.subspan(batch.size());
    if (!log::validate_batch(batch).ok()) {
      h.violations.push_back(
          fmt::format("{}: corrupt batch served at offset {}", options_.name, header->base_offset));
      continue;
    }
    if (header->base_offset != next_offset_) {
      h.violations.push_back(fmt::format("{}: expected offset {}, got a batch at {}", options_.name,
                                         next_offset_, header->base_offset));
    }
    if (!header->is_control()) {
      auto records = log::decode_records(batch);
      if (!records.ok()) {
        h.violations.push_back(
            fmt::format("{}: undecodable records at {}", options_.name, header->base_offset));
      } else {
        for (size_t i = 0; i < records->size(); i++) {
          const int64_t offset = header->base_offset + int64_t(i);
          const auto& value = (*records)[i].value;
          std::string v = value ? std::string(as_chars(*value)) : std::string();
          auto [it, fresh] = h.consumed.emplace(offset, v);
          if (!fresh && it->second != v) {
            h.violations.push_back(fmt::format("{}: offset {} read as '{}', earlier as '{}'",
                                               options_.name, offset, v, it->second));
          }
          h.consumed_records++;
        }
      }
    }
    next_offset_ = std::max(next_offset_, header->next_offset());
  }
  schedule_issue(options_.pause);
}

}  // namespace keel::sim
