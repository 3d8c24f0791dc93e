#!/usr/bin/env python3
"""Writes the seed corpora of durable_mark_fuzz, raft_step_fuzz, client_request_fuzz and
peer_message_fuzz.

Deterministic (no randomness): run it from anywhere, `python3 fuzz/gen_corpus.py`, and commit
what changed under fuzz/corpus/. Protobuf is encoded by hand (the schemas are
src/raft/raft.proto and src/cluster/cluster.proto), so nothing beyond python3 is needed.
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


# --- protobuf, by hand -------------------------------------------------------------------
def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fv(field, n):  # varint field
    return varint(field << 3) + varint(n)


def fb(field, data):  # length-delimited field
    return varint((field << 3) | 2) + varint(len(data)) + data


MSG = dict(app=1, app_resp=2, vote=3, vote_resp=4, pre_vote=5, pre_vote_resp=6, heartbeat=7,
           heartbeat_resp=8, snapshot=9, timeout_now=10)


def entry(index, count, term, typ=0, data=b""):
    return fv(1, index) + fv(2, count) + fv(3, term) + (fv(4, typ) if typ else b"") + (
        fb(5, data) if data else b"")


def message(typ, frm, to, term, log_term=0, index=0, entries=(), commit=0, reject=False,
            reject_hint=0, hint_term=0, snapshot=None, transfer=False):
    m = fv(1, MSG[typ]) + fv(2, to) + fv(3, frm) + fv(4, term)
    if log_term: m += fv(5, log_term)
    if index: m += fv(6, index)
    for e in entries: m += fb(7, e)
    if commit: m += fv(8, commit)
    if reject: m += fv(9, 1)
    if reject_hint: m += fv(10, reject_hint)
    if hint_term: m += fv(11, hint_term)
    if snapshot is not None:
        s_index, s_term, voters = snapshot
        conf = b"".join(fv(1, v) for v in voters)
        m += fb(12, fv(1, s_index) + fv(2, s_term) + fb(3, conf))
    if transfer: m += fv(13, 1)
    return m


# --- CRC-32C (Castagnoli) and a Kafka RecordBatch v2 ------------------------------------
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def zigzag(n):
    return varint((n << 1) ^ (n >> 63))


def record_batch(values, base_offset=0, epoch=0):
    records = b""
    for i, v in enumerate(values):
        body = bytes([0]) + zigzag(0) + zigzag(i) + zigzag(-1) + zigzag(len(v)) + v + zigzag(0)
        records += zigzag(len(body)) + body
    n = len(values)
    # attributes .. records: what the CRC covers
    after_crc = struct.pack(">hiqqqhii", 0, n - 1, 0, 0, -1, -1, -1, n) + records
    head = struct.pack(">qii", base_offset, 4 + 1 + 4 + len(after_crc), epoch)
    return head + bytes([2]) + struct.pack(">I", crc32c(after_crc)) + after_crc


# --- writers ------------------------------------------------------------------------------
def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def slot(n, seq, offset):
    # magic and CRC are filled in by the target when its bit in the first byte asks
    return b"KDM2" + struct.pack(">IQq", n, seq, offset) + b"\0\0\0\0"


def durable_mark():
    t = "durable_mark_fuzz"
    sector = 4096

    def head(valid, flags, size):
        return bytes([valid, flags]) + struct.pack(">H", size)

    write(t, "empty", head(0, 0, 0))
    write(t, "one_bank_then_write",
          head(0x07, 0x40, 3 * sector) + slot(0, 7, 100) + slot(1, 7, 100) +
          slot(2, 7, 100) + b"\0" * 28 * 3 + struct.pack(">q", 300))
    write(t, "two_banks_then_write",
          head(0x3f, 0x40, 6 * sector) + slot(0, 7, 100) + slot(1, 7, 100) +
          slot(2, 7, 100) + slot(3, 8, 120) + slot(4, 8, 120) + slot(5, 8, 120) +
          struct.pack(">q", 300))
    write(t, "torn_newer_bank",
          head(0x2f, 0, 6 * sector) + slot(0, 9, 10) + slot(1, 9, 10) + slot(2, 9, 10) +
          slot(3, 10, 20) + b"\xff" * 28 + slot(5, 10, 20))
    write(t, "one_torn", head(0x03, 0, 3 * sector) + slot(0, 7, 100) + slot(1, 7, 100) +
          b"\xff" * 28)
    write(t, "unreadable_sectors", head(0x3f, 0x12, 6 * sector) + slot(0, 9, 10) +
          slot(1, 9, 10) + slot(2, 8, 5) + slot(3, 8, 5) + slot(4, 9, 10) + slot(5, 8, 5))
    write(t, "misplaced_copy", head(0x07, 0, 3 * sector) + slot(0, 4, 1) + slot(0, 5, 2) +
          slot(2, 4, 1))
    write(t, "short_last_slot", head(0x3f, 0, 5 * sector + 10) + slot(0, 1, 1) +
          slot(1, 1, 1) + slot(2, 1, 1) + slot(3, 2, 2) + slot(4, 2, 2) + slot(5, 2, 2))
    write(t, "mixed_sequences", head(0x3f, 0x40, 6 * sector) + slot(0, 12, 40) +
          slot(1, 11, 30) + slot(2, 12, 40) + slot(3, 13, 50) + slot(4, 11, 30) +
          slot(5, 13, 50) + struct.pack(">q", 41))


def op_msg(m, code=0):
    assert len(m) < 256
    return bytes([code & ~7, len(m)]) + m


SYNC = bytes([5])
LATE = bytes([6])
TICK = bytes([4])


def raft_step():
    t = "raft_step_fuzz"
    follower, fresh, compacted, candidate, leader, faulted = 1, 0, 2, 3, 4, 5
    pv_cq = 8 | 16
    write(t, "follower_append",
          bytes([follower]) +
          op_msg(message("app", 2, 1, 4, log_term=3, index=10,
                         entries=[entry(11, 1, 4, 1), entry(12, 2, 4, 0, b"ab")], commit=13)) +
          SYNC + op_msg(message("heartbeat", 2, 1, 4, commit=13)) + SYNC)
    write(t, "follower_conflict",
          bytes([follower | pv_cq]) +
          op_msg(message("app", 3, 1, 4, log_term=2, index=5, entries=[entry(6, 2, 4)],
                         commit=7)) + LATE + TICK + bytes([7 | (2 << 3)]) + SYNC)
    write(t, "fresh_vote_then_append",
          bytes([fresh]) + op_msg(message("vote", 2, 1, 1)) + SYNC +
          op_msg(message("app", 2, 1, 1, entries=[entry(1, 1, 1, 1), entry(2, 3, 1, 0, b"abc")],
                         commit=1)) + SYNC)
    write(t, "leader_backoff",
          bytes([leader | pv_cq]) +
          op_msg(message("app_resp", 3, 1, 4, index=10, reject=True, reject_hint=5, hint_term=2),
                 8 | 16 | 32) + SYNC +
          op_msg(message("app_resp", 3, 1, 4, index=11), 8 | 16 | 32) + SYNC +
          op_msg(message("heartbeat_resp", 2, 1, 4)) + bytes([7, 4 | (3 << 3)]) + SYNC)
    write(t, "candidate_wins",
          bytes([candidate]) + op_msg(message("vote_resp", 3, 1, 4)) + SYNC + TICK + SYNC)
    write(t, "compacted_snapshot",
          bytes([compacted]) +
          op_msg(message("snapshot", 2, 1, 5, snapshot=(20, 5, [1, 2, 3]))) + SYNC +
          op_msg(message("app", 2, 1, 5, log_term=5, index=20, entries=[entry(21, 1, 5, 1)],
                         commit=21)) + SYNC)
    write(t, "faulted_repair",
          bytes([faulted]) +
          op_msg(message("app", 2, 1, 3, log_term=2, index=5, entries=[entry(6, 5, 3)],
                         commit=10)) + SYNC + op_msg(message("heartbeat", 2, 1, 3, commit=10)) +
          SYNC)
    write(t, "prevote_timeout_now",
          bytes([follower | 8]) + op_msg(message("pre_vote", 3, 1, 4, log_term=3, index=10)) +
          op_msg(message("timeout_now", 2, 1, 3)) + SYNC + op_msg(message("vote_resp", 2, 1, 4)) +
          SYNC)

    # Messages no correct peer sends; each hit a CHECK or broke an invariant before the core
    # validated them (they are dropped now).
    write(t, "regress_heartbeat_from_self",
          bytes([follower]) + op_msg(message("heartbeat", 1, 1, 3)) + SYNC)
    write(t, "regress_prev_inside_entry",
          bytes([follower]) +
          op_msg(message("app", 2, 1, 4, log_term=3, index=7, entries=[entry(8, 2, 4)])) + SYNC)
    write(t, "regress_entry_boundaries_differ",
          bytes([follower]) +
          op_msg(message("app", 2, 1, 3, log_term=2, index=5, entries=[entry(6, 7, 3)],
                         commit=12)) + SYNC)
    write(t, "regress_heartbeat_commit_inside_entry",
          bytes([follower]) + op_msg(message("heartbeat", 2, 1, 3, commit=7)) + SYNC)
    write(t, "regress_snapshot_at_max_offset",
          bytes([follower]) +
          op_msg(message("snapshot", 2, 1, 4, snapshot=((1 << 64) - 1, 4, [1, 2, 3]))) + SYNC)
    write(t, "regress_snapshot_other_voters",
          bytes([follower]) + op_msg(message("snapshot", 2, 1, 4, snapshot=(20, 4, [1, 2, 9]))) +
          SYNC)
    write(t, "regress_vote_from_non_voter",
          bytes([candidate]) + op_msg(message("vote_resp", 7, 1, 4)) + SYNC)
    write(t, "regress_term_beyond_epoch",
          bytes([follower]) + op_msg(message("heartbeat", 2, 1, 1 << 40)) + SYNC +
          bytes([7 | (1 << 3)]) + SYNC)
    write(t, "regress_ack_inside_entry",
          bytes([leader]) + op_msg(message("app_resp", 3, 1, 4, index=7)) + SYNC)


def client_request():
    t = "client_request_fuzz"

    def produce(req_id, batch, acks_all=True):
        body = fb(1, batch) + (fv(2, 1) if acks_all else b"")
        return fv(1, req_id) + fb(2, body)

    def fetch(req_id, offset, max_bytes):
        return fv(1, req_id) + fb(3, fv(1, offset) + fv(2, max_bytes))

    def ops(*requests):
        out = b""
        for r in requests:
            out += struct.pack(">H", len(r)) + r
        return out

    b1 = record_batch([b"hello"])
    b3 = record_batch([b"a", b"b", b"c"])
    write(t, "produce_fetch", bytes([0]) + ops(produce(1, b1), produce(2, b3, False),
                                                fetch(3, 1, 1 << 20), fetch(4, 2, 1)))
    write(t, "fetch_out_of_range", bytes([0]) + ops(fetch(1, -5, 10), fetch(2, 1 << 40, 0)))
    write(t, "bad_batch", bytes([0]) + ops(produce(1, b1[:-1]), produce(2, b"\0" * 70),
                                            fv(1, 9)))
    write(t, "before_leader", bytes([1]) + ops(produce(1, b1), fetch(2, 0, 100)))


def peer_message():
    t = "peer_message_fuzz"
    app = message("app", 1, 2, 3, log_term=2, index=7, commit=5,
                  entries=[entry(8, 1, 3, data=b"hello"), entry(9, 3, 3, data=b"abc")])
    write(t, "app_partition_0", fb(2, app))
    write(t, "app_partition_7", fv(1, 7) + fb(2, app))
    write(t, "heartbeat_resp_faulted",
          fv(1, 1) + fb(2, message("heartbeat_resp", 3, 1, 4, reject=True, reject_hint=2)))
    write(t, "partition_zero_explicit", fv(1, 0) + fb(2, message("vote", 2, 1, 5)))
    write(t, "fields_reversed", fb(2, message("vote", 2, 1, 5)) + fv(1, 3))  # generic only
    write(t, "length_past_end", fv(1, 1) + varint((2 << 3) | 2) + varint(100) + b"\x08\x01")
    write(t, "partition_over_32_bits", varint(1 << 3) + varint(1 << 40) + fb(2, b""))


if __name__ == "__main__":
    durable_mark()
    raft_step()
    client_request()
    peer_message()
