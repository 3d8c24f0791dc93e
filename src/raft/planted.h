// The planted bugs of the Raft core (issue 4 item 9, docs/raft.md). KEEL_PLANTED(name) in
// base/check.h expands to KEEL_PLANT_BUG_<name>, which the build defines to 1 only for the
// bug chosen with -DKEEL_PLANT_BUG=<name>; the others are defined to 0 here.
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
