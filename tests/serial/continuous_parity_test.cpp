#include "support/run.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>

using im::test::read_text;
using im::test::run_infermeter;
using im::test::temp_dir;

// DESIGN §2.3 / issue 14: with fixed lengths, every request at t = 0 and no sampling, continuous
// batching generates at lockstep's rate at the same W, because its scheduler adds nothing between
// two llama_decode calls. That is asserted here within one run, where a slow CPU slows both sides of
// the ratio alike: every step after the prefill decodes all W sequences, and the wall time between
// step starts exceeds the time inside llama_decode by at most 3%.
//
// The cross-process comparison with lockstep (the 3%) is bench/continuous.sh's job, not a
// test's: on the CI machine (2026-12-02) nine alternating pairs at -t 1 gave lockstep 203-234 t/s and
// continuous either ~195 or 238-288 t/s (llama_decode itself 13.9 ms in some processes, 20.8 ms in
// others), a per-process spread no best-of-N rule removes. What stays here is a bound that only a
// broken scheduler misses: the best continuous rate within 35% of the best lockstep rate.
TEST(continuous_parity, no_sample_matches_lockstep) {
    const int w = 4, n_prompt = 64, n_predict = 384;
    const auto dir = temp_dir("continuous_parity");
    double best_lockstep = 0, best_continuous = 0, worst_overhead = 0;
    std::string rounds;
    for (int round = 0; round < 3; ++round) {
        auto r = run_infermeter({"parallel", "-m", "synth:tiny", "-w", std::to_string(w), "-p", std::to_string(n_prompt), "-n",
                                 std::to_string(n_predict), "-t", "1", "-o", "json", "--no-db"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const double lockstep = nlohmann::json::parse(r.out)[0]["gen_tps"].get<double>();
        const auto trace = dir / fmt::format("trace-{}.jsonl", round);
        r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--concurrency", std::to_string(w),
                            "--requests", std::to_string(w), "-p", std::to_string(n_prompt), "-n", std::to_string(n_predict),
                            "--no-sample", "-t", "1", "-o", "json", "--no-db", "--trace", trace.string()});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const auto j = nlohmann::json::parse(r.out)[0];
        EXPECT_EQ(j["n_ok"], w);
        const double continuous = j["decode_tps"].get<double>();

        // The steps, in order: one prefill of all W prompts, then decode steps of exactly W sequences.
        std::vector<nlohmann::json> steps;
        std::istringstream in(read_text(trace));
        for (std::string line; std::getline(in, line);) {
            if (line.empty()) continue;
            auto row = nlohmann::json::parse(line);
            if (row["kind"] == "step") steps.push_back(std::move(row));
        }
        ASSERT_EQ(steps.size(), static_cast<size_t>(n_predict)) << "one prefill step and n_predict - 1 decode steps";
        EXPECT_EQ(steps[0]["prefilling"], w);
        EXPECT_EQ(steps[0]["tokens"], w * n_prompt);
        double wall_ms = 0, decode_ms = 0;
        for (size_t i = 1; i < steps.size(); ++i) {
            EXPECT_EQ(steps[i]["decoding"], w) << "step " << i;
            EXPECT_EQ(steps[i]["prefilling"], 0) << "step " << i;
            if (i + 1 < steps.size()) {  // read after the step: the last one has freed every slot
                EXPECT_EQ(steps[i]["kv_cells_used"], w * n_prompt + static_cast<int>(i) * w) << "step " << i;
                wall_ms += steps[i + 1]["t_ms"].get<double>() - steps[i]["t_ms"].get<double>();
                decode_ms += steps[i]["decode_ms"].get<double>();
            }
        }
        const double overhead = wall_ms / decode_ms - 1.0;
        worst_overhead = std::max(worst_overhead, overhead);
        best_lockstep = std::max(best_lockstep, lockstep);
        best_continuous = std::max(best_continuous, continuous);
        rounds += fmt::format(" [{}: lockstep {:.1f}, continuous {:.1f} t/s, decode step {:.2f} ms, outside llama_decode {:.2f}%]",
                              round + 1, lockstep, continuous, j["decode_ms_mean"].get<double>(), 100 * overhead);
    }
    const double ratio = best_continuous / best_lockstep;
    RecordProperty("ratio", std::to_string(ratio));
    std::fprintf(stderr, "[ figures ] continuous/lockstep %.3f;%s\n", ratio, rounds.c_str());
    EXPECT_LE(worst_overhead, 0.03) << rounds;
    EXPECT_NEAR(ratio, 1.0, 0.35) << "lockstep " << best_lockstep << " t/s, continuous " << best_continuous << " t/s;"
                                  << rounds;
}
