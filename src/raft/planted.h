// The planted bugs of the Raft core (issue 4 item 9, docs/raft.md): ack_before_sync,
// double_vote, commit_prev_term, skip_truncate, vote_not_persisted. Each is one
// `if (KEEL_PLANTED(name))`. With a base/check.h whose KEEL_PLANTED(name) expands to the
// macro KEEL_PLANT_BUG_<name>, the ones not chosen must be defined to 0, which this header
// does; with the run-time selection (KEEL_PLANT_BUGS) these definitions are unused.
#pragma once

#include "base/check.h"

#ifndef KEEL_PLANT_BUG_ack_before_sync
#define KEEL_PLANT_BUG_ack_before_sync 0
#endif
#ifndef KEEL_PLANT_BUG_double_vote
#define KEEL_PLANT_BUG_double_vote 0
#endif
#ifndef KEEL_PLANT_BUG_commit_prev_term
#define KEEL_PLANT_BUG_commit_prev_term 0
#endif
#ifndef KEEL_PLANT_BUG_skip_truncate
#define KEEL_PLANT_BUG_skip_truncate 0
#endif
#ifndef KEEL_PLANT_BUG_vote_not_persisted
#define KEEL_PLANT_BUG_vote_not_persisted 0
#endif
