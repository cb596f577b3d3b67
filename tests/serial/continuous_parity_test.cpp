#include "support/run.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

using im::test::run_infermeter;

// DESIGN §2.3 / issue 14: with fixed lengths, every request at t = 0 and no sampling, continuous
// batching generates at lockstep's rate at the same W. One thread each (-t 1): with two, a descheduled
// thread stalls its partner at every barrier and single runs on the 2-core VM spread by ±15%.
// Tolerance 6%, not the 3%: at -t 1 on the 2-core VM single runs still spread by ~5%
// (2026-12-02, idle: one set of pairs had continuous 3-5% below lockstep, 216/228, 193/199, 215/228;
// a later set had the best of each within 1.1%, 212.8/215.1), and the time between steps outside
// llama_decode is 0.02 ms of 20.6; on the H200 the ratio is 0.98-1.03.
// Rounds alternate (A B A B ...) and the best
// of each side is compared, so a neighbour's burst on a shared CPU cannot decide the outcome; after
// five rounds it goes on (up to nine) only while the best figures still disagree. Every round's
// figures are printed, so a failure on CI says whether one side was slow throughout or only at times.
TEST(continuous_parity, no_sample_matches_lockstep) {
    const int w = 4, n_prompt = 64, n_predict = 384;
    const double tolerance = 0.06;
    double best_lockstep = 0, best_continuous = 0;
    std::string rounds;
    for (int round = 0; round < 9; ++round) {
        if (round >= 5 && std::fabs(best_continuous / best_lockstep - 1.0) <= tolerance) break;
        auto r = run_infermeter({"parallel", "-m", "synth:tiny", "-w", std::to_string(w), "-p", std::to_string(n_prompt), "-n",
                                 std::to_string(n_predict), "-t", "1", "-o", "json", "--no-db"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const double lockstep = nlohmann::json::parse(r.out)[0]["gen_tps"].get<double>();
        r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--concurrency", std::to_string(w),
                            "--requests", std::to_string(w), "-p", std::to_string(n_prompt), "-n", std::to_string(n_predict),
                            "--no-sample", "-t", "1", "-o", "json", "--no-db"});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const auto j = nlohmann::json::parse(r.out)[0];
        EXPECT_EQ(j["n_ok"], w);
        const double continuous = j["decode_tps"].get<double>();
        best_lockstep = std::max(best_lockstep, lockstep);
        best_continuous = std::max(best_continuous, continuous);
        rounds += fmt::format(" [{}: lockstep {:.1f}, continuous {:.1f} t/s, decode step {:.2f} ms]", round + 1, lockstep,
                              continuous, j["decode_ms_mean"].get<double>());
    }
    const double ratio = best_continuous / best_lockstep;
    RecordProperty("ratio", std::to_string(ratio));
    std::fprintf(stderr, "[ figures ] continuous/lockstep %.3f;%s\n", ratio, rounds.c_str());
    EXPECT_NEAR(ratio, 1.0, tolerance) << "lockstep " << best_lockstep << " t/s, continuous " << best_continuous << " t/s;"
                                  << rounds;
}
