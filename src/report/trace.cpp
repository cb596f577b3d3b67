#include "report/trace.h"

#include "core/clock.h"
#include "core/error.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

namespace im::report {

namespace {

using nlohmann::ordered_json;

// ms from the level's origin; -1 for a time that never came. Integer ns below 2^53 survive the round
// trip through a double and its shortest JSON form exactly (back_ns).
double ms_from(int64_t t_ns, int64_t t0_ns) { return t_ns >= 0 ? static_cast<double>(t_ns - t0_ns) / 1e6 : -1.0; }
int64_t back_ns(double ms) { return ms >= 0 ? static_cast<int64_t>(std::llround(ms * 1e6)) : -1; }

ordered_json level_row(size_t li, const workload::request_run & r) {
    const auto & w = r.workload;
    ordered_json j;
    j["kind"] = "level";
    j["level"] = li;
    j["load"] = r.load_label();
    j["trace_version"] = trace_version;
    j["shard"] = w.shard;
    j["n_shards"] = w.n_shards;
    j["arrival"] = workload::arrival_name(w.arrivals);
    j["concurrency"] = w.concurrency;
    j["rate"] = w.rate;
    j["burstiness"] = w.burstiness;
    j["max_concurrency"] = w.max_concurrency;
    j["think_time_s"] = w.think_time_s;
    j["requests"] = w.n_requests;
    j["duration_s"] = w.duration_s;
    j["warmup_requests"] = w.warmup_requests;
    j["seed"] = w.seed;
    j["slo_ttft_ms"] = w.objectives.ttft_ms;
    j["slo_tpot_ms"] = w.objectives.tpot_ms;
    j["slo_percentile"] = w.objectives.percentile;
    j["lengths"] = r.lengths;
    j["engine"] = r.engine;
    j["sampling"] = r.sampling;
    j["t0_unix_ns"] = r.t0_unix_ns;
    j["t0"] = clock::rfc3339_ms(r.t0_unix_ns);
    j["started_at"] = r.started_at;
    j["interrupted"] = r.interrupted;
    return j;
}

workload::arrival_kind arrival_from(const std::string & name) {
    for (const auto a : {workload::arrival_kind::closed, workload::arrival_kind::poisson, workload::arrival_kind::constant,
                         workload::arrival_kind::gamma}) {
        if (name == workload::arrival_name(a)) return a;
    }
    throw std::invalid_argument(fmt::format("unknown arrival '{}'", name));
}

workload::request_run run_of(const nlohmann::json & j) {
    if (j.at("trace_version").get<int>() > trace_version) {
        throw std::invalid_argument(fmt::format("trace_version {} is newer than this infermeter reads ({})",
                                                j.at("trace_version").get<int>(), trace_version));
    }
    workload::request_run r;
    auto & w = r.workload;
    w.shard = j.at("shard").get<int>();
    w.n_shards = j.at("n_shards").get<int>();
    w.arrivals = arrival_from(j.at("arrival").get<std::string>());
    w.concurrency = j.at("concurrency").get<int>();
    w.rate = j.at("rate").get<double>();
    w.burstiness = j.at("burstiness").get<double>();
    w.max_concurrency = j.at("max_concurrency").get<int>();
    w.think_time_s = j.at("think_time_s").get<double>();
    w.n_requests = j.at("requests").get<int>();
    w.duration_s = j.at("duration_s").get<double>();
    w.warmup_requests = j.at("warmup_requests").get<int>();
    w.seed = j.at("seed").get<uint64_t>();
    w.objectives.ttft_ms = j.at("slo_ttft_ms").get<double>();
    w.objectives.tpot_ms = j.at("slo_tpot_ms").get<double>();
    w.objectives.percentile = j.at("slo_percentile").get<double>();
    r.lengths = j.at("lengths").get<std::string>();
    r.engine = j.at("engine").get<std::string>();
    r.sampling = j.at("sampling").get<std::string>();
    r.t0_unix_ns = j.at("t0_unix_ns").get<int64_t>();
    r.started_at = j.at("started_at").get<bool>();
    r.interrupted = j.at("interrupted").get<bool>();
    if (w.n_shards < 1 || w.shard < 1 || w.shard > w.n_shards) {
        throw std::invalid_argument(fmt::format("shard {}/{} is not K/N with 1 <= K <= N", w.shard, w.n_shards));
    }
    return r;
}

workload::request_record record_of(const nlohmann::json & j) {
    workload::request_record q;
    q.id = j.at("id").get<uint64_t>();
    q.user = j.at("user").get<int>();
    q.endpoint = j.at("endpoint").get<int>();
    q.warmup = j.at("warmup").get<bool>();
    q.n_prompt = j.at("n_prompt").get<int>();
    q.n_predict = j.at("n_predict").get<int>();
    q.n_output = j.at("n_output").get<int>();
    q.n_chunks = j.at("n_chunks").get<int>();
    q.usage_completion_tokens = j.at("usage_completion_tokens").get<int>();
    q.t_intended_ns = back_ns(j.at("intended_ms").get<double>());
    q.t_sent_ns = back_ns(j.at("sent_ms").get<double>());
    q.t_admitted_ns = back_ns(j.at("admitted_ms").get<double>());
    q.t_first_ns = back_ns(j.at("first_ms").get<double>());
    q.t_end_ns = back_ns(j.at("end_ms").get<double>());
    for (const auto & c : j.at("chunk_ms")) q.chunk_ns.push_back(back_ns(c.get<double>()));
    q.chunk_tokens = j.at("chunk_tokens").get<std::vector<int>>();
    if (q.chunk_tokens.size() != q.chunk_ns.size()) throw std::invalid_argument("chunk_ms and chunk_tokens differ in length");
    const auto status = j.at("status").get<std::string>();
    const auto cause = engine::failure_from_name(status);
    if (!cause) throw std::invalid_argument(fmt::format("unknown status '{}'", status));
    q.cause = *cause;
    q.message = j.value("message", "");
    q.server_ttft_ms = j.at("server_ttft_ms").get<double>();
    q.server_gen_tps = j.at("server_gen_tps").get<double>();
    return q;
}

}  // namespace

std::string trace_jsonl(const std::vector<workload::request_run> & runs) {
    std::string out;
    for (size_t li = 0; li < runs.size(); ++li) {
        const auto & r = runs[li];
        const int64_t t0 = r.t0_ns;
        out += level_row(li, r).dump() + "\n";
        for (const auto & s : r.steps) {
            ordered_json j;
            j["kind"] = "step";
            j["level"] = li;
            j["load"] = r.load_label();
            j["t_ms"] = ms_from(s.t_start_ns, t0);
            j["decode_ms"] = static_cast<double>(s.t_decode_ns) / 1e6;
            j["sample_ms"] = static_cast<double>(s.t_sample_ns) / 1e6;
            j["tokens"] = s.n_tokens;
            j["decoding"] = s.n_decoding;
            j["prefilling"] = s.n_prefilling;
            j["kv_cells_used"] = s.kv_cells_used;
            out += j.dump() + "\n";
        }
        for (const auto & q : r.records) {
            ordered_json j;
            j["kind"] = "request";
            j["level"] = li;
            j["load"] = r.load_label();
            j["id"] = q.id;
            j["user"] = q.user;
            j["endpoint"] = q.endpoint;
            j["warmup"] = q.warmup;
            j["n_prompt"] = q.n_prompt;
            j["n_predict"] = q.n_predict;
            j["n_output"] = q.n_output;
            j["n_chunks"] = q.n_chunks;
            j["usage_completion_tokens"] = q.usage_completion_tokens;
            j["intended_ms"] = ms_from(q.t_intended_ns, t0);
            j["sent_ms"] = ms_from(q.t_sent_ns, t0);
            j["admitted_ms"] = ms_from(q.t_admitted_ns, t0);
            j["first_ms"] = ms_from(q.t_first_ns, t0);
            j["end_ms"] = ms_from(q.t_end_ns, t0);
            j["status"] = engine::failure_name(q.cause);
            if (!q.message.empty()) j["message"] = q.message;
            if (q.ok()) {
                j["ttft_ms"] = q.ttft_ms();
                j["e2e_ms"] = q.e2e_ms();
                if (std::isfinite(q.tpot_ms())) j["tpot_ms"] = q.tpot_ms();
            }
            j["server_ttft_ms"] = q.server_ttft_ms;
            j["server_gen_tps"] = q.server_gen_tps;
            auto & chunks = j["chunk_ms"] = ordered_json::array();
            for (const int64_t t : q.chunk_ns) chunks.push_back(ms_from(t, t0));
            j["chunk_tokens"] = q.chunk_tokens;
            out += j.dump() + "\n";
        }
    }
    return out;
}

std::vector<workload::request_run> read_trace(const std::filesystem::path & path) {
    std::ifstream in(path);
    if (!in) throw_runtime("{}: cannot read the trace (give the files serve --trace wrote)", path.string());
    std::vector<workload::request_run> runs;
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        try {
            const auto j = nlohmann::json::parse(line);
            const auto kind = j.at("kind").get<std::string>();
            if (kind == "step") continue;
            const size_t level = j.at("level").get<size_t>();
            if (kind == "level") {
                if (level != runs.size()) throw std::invalid_argument(fmt::format("level {} out of order", level));
                runs.push_back(run_of(j));
            } else if (kind == "request") {
                if (runs.empty() || level != runs.size() - 1) {
                    throw std::invalid_argument(fmt::format("a request row of level {} before its level row", level));
                }
                runs.back().records.push_back(record_of(j));
            } else {
                throw std::invalid_argument(fmt::format("unknown kind '{}'", kind));
            }
        } catch (const std::exception & e) {
            throw_runtime("{}:{}: not a trace row of this infermeter ({})", path.string(), line_no, e.what());
        }
    }
    if (in.bad()) throw_runtime("{}: read error", path.string());
    if (runs.empty()) {
        throw_runtime("{}: no level rows: not a --trace file of serve, or one written before trace version {} (run it again)",
                      path.string(), trace_version);
    }
    return runs;
}

}  // namespace im::report
