#pragma once

#include "workload/requests.h"

#include <cstdint>
#include <string>
#include <vector>

// Several load-generating processes (`serve --shard K/N`) merged back into one run (`merge`): the
// shards' per-request records on one timeline, and the figures computed from the merged raw samples
// by compute_metrics, exactly as for one process (docs/scale-out.md).
namespace im::workload {

// One shard's run of a load level and where it came from (a file name, for messages).
struct shard_run {
    std::string source;
    request_run run;  // records on the shard's own clock, schedule origin at run.t0_ns
};

struct merged_run {
    request_run run;                   // the union: workload.shard = 0, records sorted by id, metrics over them
    std::vector<request_run> shards;   // each shard alone, in shard order, with its own metrics, same timeline
    std::vector<std::string> sources;  // in shard order
    // Latest minus earliest schedule origin on the wall clock: how far apart the shards' t = 0 were.
    int64_t start_skew_ns = 0;         // 0 with --start-at (run.started_at: every shard waited for that instant)
};

// How far apart the shards' schedules started, as a share of the merged steady window (0 when they
// waited for one --start-at instant); above max_start_skew_share the report and merge warn.
double start_skew_share(const merged_run & m);
inline constexpr double max_start_skew_share = 0.01;

// Checks that `parts` are shards 1..N of one schedule (the same workload flags, seed, lengths and
// sampling, the same N, each K once, each record in its shard, the same --start-at instant or none)
// and merges them. Records move onto the wall clock (Unix ns): t − t0_ns + t0_unix_ns of their shard,
// so clock offsets between hosts are those of their wall clocks (NTP). Throws a usage error naming the
// sources of a mismatch, the missing or the duplicate shard.
merged_run merge_shards(const std::vector<shard_run> & parts);

}  // namespace im::workload
