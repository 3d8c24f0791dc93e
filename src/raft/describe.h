// Text forms of the core's records, for traces, logs and the scripted tests (tests/raft/).
#pragma once

#include <string>
#include <vector>

#include "raft/raft.h"
#include "raft/raft.pb.h"

namespace keel::raft {

std::string_view message_type_name(MessageType t);
// "1/11-13 EntryNormal "abc"": term/first-last offset, type, data (escaped, cut at 32 bytes).
std::string describe_entry(const Entry& e);
std::string describe_entries(const std::vector<Entry>& entries);
std::string describe_hard_state(const HardState& hs);
std::string describe_snapshot(const SnapshotMeta& meta);
// "1->2 MsgApp Term:2 Log:1/10 Commit:10 Entries:[...]".
std::string describe_message(const Message& m);
// Multi-line: one line per non-empty field of the Ready.
std::string describe_ready(const Ready& rd);

}  // namespace keel::raft
