#include "workload/split.h"

#include "core/error.h"
#include "core/log.h"
#include "hardware/link_probe.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>

namespace im::workload {

namespace {

predict::split_shape shape_of(const im::model::info & info) {
    predict::split_shape s;
    s.n_layer = info.n_layer;
    s.n_embd = info.n_embd;
    s.n_vocab = info.n_vocab;
    for (const auto & w : info.layer_matmuls) s.layer_matmuls.emplace_back(w.k, w.m);
    return s;
}

// llama.cpp's layer division when the log did not name it (llama_model::load_tensors): the last
// n_gpu_layers of the n_layer + 1 offloadable ones (the output layer counts) go to the devices in
// proportion to -ts, or to each device's free memory; device of layer il = the first whose cumulative
// share exceeds (il - first offloaded) / offloaded.
std::vector<predict::split_device> estimated_devices(const im::model::info & info, const engine::llama::engine_params & p) {
    const auto offload = engine::llama::offload_devices(p);
    std::vector<predict::split_device> devs;
    for (const auto & d : offload) devs.push_back({d.name, false, d.name.rfind("RPC", 0) == 0, {}, false, false});
    devs.push_back({"CPU", true, false, {}, true, false});
    if (offload.empty()) return devs;
    std::vector<double> share(offload.size(), 0);
    for (size_t i = 0; i < offload.size(); ++i) {
        share[i] = i < p.tensor_split.size() ? p.tensor_split[i] : static_cast<double>(offload[i].memory_free);
    }
    double sum = 0;
    for (double s : share) sum += s;
    if (sum <= 0) std::fill(share.begin(), share.end(), 1.0), sum = static_cast<double>(share.size());
    std::vector<double> cum(share.size());
    double acc = 0;
    for (size_t i = 0; i < share.size(); ++i) cum[i] = (acc += share[i] / sum);
    const int n_off = info.n_layer + 1;
    const int n_gpu = std::min(std::max(p.n_gpu_layers, 0), n_off);
    const int first = n_off - n_gpu;
    for (int il = 0; il < n_off; ++il) {
        predict::split_device * at = &devs.back();
        if (il >= first && n_gpu > 0) {
            const double x = static_cast<double>(il - first) / n_gpu;
            const size_t k = static_cast<size_t>(std::upper_bound(cum.begin(), cum.end(), x) - cum.begin());
            at = &devs[std::min(k, offload.size() - 1)];
        }
        if (il == info.n_layer) {
            at->output = true;
        } else {
            at->layers.push_back(il);
        }
    }
    return devs;
}

std::optional<double> baseline_of(const std::vector<std::pair<std::string, double>> & baseline, const std::string & key) {
    for (const auto & [k, v] : baseline) {
        if (k == key) return v;
    }
    return std::nullopt;
}

std::optional<split_analysis> plan_and_probe(const engine::llama::model & m, const engine::llama::engine_params & p) {
    const auto placement = engine::llama::devices_in_use(m);  // with each device's type and description
    std::vector<predict::split_device> devs;
    bool named = false;
    for (const auto & d : placement) {
        devs.push_back({d.name, d.type == "cpu", d.type == "rpc", d.layers, d.input, d.output});
        named = named || !d.layers.empty() || d.output;
    }
    const bool row = p.split_mode == LLAMA_SPLIT_MODE_ROW;
    split_analysis s;
    if (!named) {
        devs = estimated_devices(m.info(), p);
    }
    const auto off_host = [](const predict::split_device & d) { return !d.host && (!d.layers.empty() || d.output); };
    if (std::none_of(devs.begin(), devs.end(), off_host)) return std::nullopt;
    s.split_mode = engine::llama::split_mode_name(p.split_mode);
    s.plan = predict::plan_split(shape_of(m.info()), devs, row ? predict::split_kind::row : predict::split_kind::layer,
                                 p.tensor_split, p.main_gpu);
    s.plan.estimate = !named;
    s.plan.note = named ? "from llama.cpp's load log"
                        : "estimated from -ts or free memory, as llama.cpp divides layers (its log named none)";
    std::vector<hardware::link_probe_device> probe;
    for (const auto & d : devs) {
        if (d.host) continue;
        std::string desc;
        for (const auto & u : placement) {
            if (u.name == d.name) desc = u.description;
        }
        std::string holds;
        if (!d.layers.empty()) holds = fmt::format("layers {}", engine::llama::layer_ranges(d.layers));
        if (d.output) holds += holds.empty() ? "output" : " + output";
        if (holds.empty() && !row) continue;
        s.devices.push_back(fmt::format("{}{}: {}", d.name, desc.empty() ? "" : " (" + desc + ")", holds.empty() ? "row share" : holds));
        probe.push_back({d.name, d.rpc});
    }
    s.links = hardware::probe_links(probe);
    return s;
}

}  // namespace

std::optional<split_analysis> analyze_split(const engine::llama::model & m, const engine::llama::engine_params & p) {
    try {
        return plan_and_probe(m, p);
    } catch (const im::error & e) {
        log::warn("split analysis: {}; the run goes on without it", e.what());
        return std::nullopt;
    }
}

std::vector<std::pair<std::string, double>> read_split_baseline(const std::filesystem::path & path) {
    if (path.empty()) return {};
    std::ifstream in(path);
    if (!in) throw_usage("--split-baseline {}: cannot read it (give the -o json output of a single-device run)", path.string());
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_object() && j.contains("rows")) j = j["rows"];
    if (!j.is_array()) throw_usage("--split-baseline {}: not the JSON rows of bench or parallel (-o json)", path.string());
    std::vector<std::pair<std::string, double>> out;
    const auto num = [](const nlohmann::json & r, const char * k) {
        return r.contains(k) && r[k].is_number() ? r[k].get<double>() : 0.0;
    };
    for (const auto & r : j) {
        if (!r.is_object()) continue;
        if (r.contains("workers") && r["workers"].is_number()) {
            const int w = r["workers"].get<int>();
            const double n_predict = num(r, "n_predict");
            if (num(r, "t_tg_s") > 0 && n_predict > 0) out.emplace_back(fmt::format("decode W={}", w), num(r, "t_tg_s") / n_predict);
            if (num(r, "t_pp_s") > 0) out.emplace_back(fmt::format("prefill W={}", w), num(r, "t_pp_s"));
        } else if (num(r, "avg_ns") > 0 && num(r, "n_depth") == 0) {
            const int np = static_cast<int>(num(r, "n_prompt")), ng = static_cast<int>(num(r, "n_gen"));
            if (np > 0 && ng == 0) out.emplace_back(fmt::format("pp{}", np), num(r, "avg_ns") * 1e-9);
            if (ng > 0 && np == 0) out.emplace_back(fmt::format("tg{}", ng), num(r, "avg_ns") * 1e-9 / ng);
        }
    }
    if (out.empty()) throw_usage("--split-baseline {}: no pp, tg or lockstep rows in it", path.string());
    return out;
}

std::vector<predict::split_attribution> attribute_bench(const split_analysis & s, const std::vector<bench_result> & results,
                                                        const std::vector<std::pair<std::string, double>> & baseline) {
    std::vector<predict::split_attribution> steps;
    for (const auto & r : results) {
        const auto & t = r.test;
        if (t.n_depth != 0 || r.avg_ns <= 0) continue;  // the step at depth differs from the baseline's
        if (t.n_prompt > 0 && t.n_gen == 0) {
            const std::string key = fmt::format("pp{}", t.n_prompt);
            steps.push_back(predict::attribute(key, r.avg_ns * 1e-9, s.plan, {t.n_prompt, 1, t.params.n_ubatch}, s.links,
                                               baseline_of(baseline, key)));
        } else if (t.n_gen > 0 && t.n_prompt == 0) {
            const std::string key = fmt::format("tg{}", t.n_gen);
            steps.push_back(predict::attribute(key, r.avg_ns * 1e-9 / t.n_gen, s.plan, {1, 1, t.params.n_ubatch}, s.links,
                                               baseline_of(baseline, key)));
        }
    }
    return steps;
}

std::vector<predict::split_attribution> attribute_lockstep(const split_analysis & s, const std::vector<lockstep_row> & rows,
                                                           int n_ubatch,
                                                           const std::vector<std::pair<std::string, double>> & baseline) {
    std::vector<predict::split_attribution> steps;
    for (const auto & r : rows) {
        if (!r.skipped.empty() || r.t_tg_mean_s <= 0 || r.n_predict <= 0) continue;
        const std::string decode = fmt::format("decode W={}", r.workers), prefill = fmt::format("prefill W={}", r.workers);
        steps.push_back(predict::attribute(decode, r.t_tg_mean_s / r.n_predict, s.plan, {r.workers, r.workers, n_ubatch},
                                           s.links, baseline_of(baseline, decode)));
        steps.push_back(predict::attribute(prefill, r.t_pp_mean_s, s.plan,
                                           {static_cast<int64_t>(r.workers) * r.n_prompt, r.workers, n_ubatch}, s.links,
                                           baseline_of(baseline, prefill)));
    }
    return steps;
}

}  // namespace im::workload
