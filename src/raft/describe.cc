#include "raft/describe.h"

#include <fmt/format.h>

namespace keel::raft {
namespace {

constexpr size_t kDataShownMax = 32;

std::string escape(const std::string& data) {
  std::string out;
  for (size_t i = 0; i < data.size() && i < kDataShownMax; i++) {
    const unsigned char c = static_cast<unsigned char>(data[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(char(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (data.size() > kDataShownMax) out += "...";
  return out;
}

std::string_view entry_type_name(EntryType t) {
  switch (t) {
    case ENTRY_NORMAL:
      return "EntryNormal";
    case ENTRY_NOOP:
      return "EntryNoop";
    case ENTRY_CONFIG:
      return "EntryConfig";
    default:
      return "EntryUnknown";
  }
}

}  // namespace

std::string_view message_type_name(MessageType t) {
  switch (t) {
    case MSG_APP:
      return "MsgApp";
    case MSG_APP_RESP:
      return "MsgAppResp";
    case MSG_VOTE:
      return "MsgVote";
    case MSG_VOTE_RESP:
      return "MsgVoteResp";
    case MSG_PRE_VOTE:
      return "MsgPreVote";
    case MSG_PRE_VOTE_RESP:
      return "MsgPreVoteResp";
    case MSG_HEARTBEAT:
      return "MsgHeartbeat";
    case MSG_HEARTBEAT_RESP:
      return "MsgHeartbeatResp";
    case MSG_SNAPSHOT:
      return "MsgSnap";
    case MSG_TIMEOUT_NOW:
      return "MsgTimeoutNow";
    default:
      return "MsgUnknown";
  }
}

std::string describe_entry(const Entry& e) {
  std::string range = fmt::format("{}/{}", e.term(), e.index());
  if (e.count() > 1) range += fmt::format("-{}", e.index() + e.count() - 1);
  if (e.type() == ENTRY_NOOP) return fmt::format("{} {}", range, entry_type_name(e.type()));
  return fmt::format("{} {} \"{}\"", range, entry_type_name(e.type()), escape(e.data()));
}

std::string describe_entries(const std::vector<Entry>& entries) {
  std::string out;
  for (const Entry& e : entries) {
    if (!out.empty()) out += ", ";
    out += describe_entry(e);
  }
  return out;
}

std::string describe_hard_state(const HardState& hs) {
  return fmt::format("Term:{} Vote:{} Commit:{}", hs.term(), hs.vote(), hs.commit());
}

std::string describe_snapshot(const SnapshotMeta& meta) {
  std::string voters;
  for (uint64_t v : meta.conf().voters()) {
    if (!voters.empty()) voters += ",";
    voters += std::to_string(v);
  }
  return fmt::format("Index:{} Term:{} Voters:[{}]", meta.index(), meta.term(), voters);
}

std::string describe_message(const Message& m) {
  std::string out =
      fmt::format("{}->{} {} Term:{}", m.from(), m.to(), message_type_name(m.type()), m.term());
  switch (m.type()) {
    case MSG_APP:
      out += fmt::format(" Log:{}/{} Commit:{}", m.log_term(), m.index(), m.commit());
      if (m.entries_size() > 0) {
        out += " Entries:[" +
               describe_entries(std::vector<Entry>(m.entries().begin(), m.entries().end())) + "]";
      }
      break;
    case MSG_APP_RESP:
      out += fmt::format(" Index:{}", m.index());
      if (m.reject()) out += fmt::format(" Rejected (Hint: {}/{})", m.hint_term(), m.reject_hint());
      break;
    case MSG_HEARTBEAT_RESP:
      if (m.reject()) out += fmt::format(" Faulted (Last: {})", m.reject_hint());
      break;
    case MSG_VOTE:
    case MSG_PRE_VOTE:
      out += fmt::format(" Log:{}/{}", m.log_term(), m.index());
      if (m.transfer()) out += " Transfer";
      break;
    case MSG_VOTE_RESP:
    case MSG_PRE_VOTE_RESP:
      if (m.reject()) out += " Rejected";
      break;
    case MSG_HEARTBEAT:
      out += fmt::format(" Commit:{}", m.commit());
      break;
    case MSG_SNAPSHOT:
      out += " Snapshot: " + describe_snapshot(m.snapshot());
      break;
    default:
      break;
  }
  return out;
}

std::string describe_ready(const Ready& rd) {
  std::string out;
  if (rd.role || rd.leader) {
    out += fmt::format("Lead:{} State:{}\n", rd.leader.value_or(0),
                       rd.role ? role_name(*rd.role) : std::string_view("-"));
  }
  if (rd.hard_state) out += "HardState " + describe_hard_state(*rd.hard_state) + "\n";
  if (rd.snapshot) out += "Snapshot " + describe_snapshot(*rd.snapshot) + "\n";
  if (!rd.entries.empty()) {
    out += "Entries:\n";
    for (const Entry& e : rd.entries) out += describe_entry(e) + "\n";
  }
  if (!rd.committed_entries.empty()) {
    out += "CommittedEntries:\n";
    for (const Entry& e : rd.committed_entries) out += describe_entry(e) + "\n";
  }
  if (!rd.messages.empty()) {
    out += "Messages:\n";
    for (const Message& m : rd.messages) out += describe_message(m) + "\n";
  }
  return out;
}

}  // namespace keel::raft
