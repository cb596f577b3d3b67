#pragma once

#include "workload/requests.h"

#include <filesystem>
#include <string>
#include <vector>

// --trace FILE of the request-level commands (`serve`, `parallel --mode continuous`), JSON Lines: per
// load level one "level" row (the workload that generated the schedule, its shard, the schedule's
// origin on the wall clock), its per-step rows ("step", in-process engines) and one "request" row per
// request with every timestamp in ms from the schedule's origin (the level's t0) and its chunk times.
// `merge` reads the rows back into request runs; writer and reader share this file so they cannot drift.
namespace im::report {

inline constexpr int trace_version = 1;

// The trace of `runs` (level i of the command is "level": i).
std::string trace_jsonl(const std::vector<workload::request_run> & runs);

// The runs of a trace, one per level row, in order: workload, engine, lengths, sampling, t0_unix_ns and
// the records (times on a clock whose origin is the level's t0: t0_ns = 0); step rows are skipped.
// Throws a runtime error naming the file and line for an unreadable file, a malformed row, a request
// row before its level row, or a trace without level rows (written before version 1: run it again).
std::vector<workload::request_run> read_trace(const std::filesystem::path & path);

}  // namespace im::report
