#include "support/run.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

using im::test::run_infermeter;

// parallel --mode continuous --fast (docs/fast-mode.md §8): every closed-loop level predicted from step,
// prefill and sampling probes, marked, with a 95% interval; --verify measures one level beside it. Serial for
// the reason fast_verify_test.cpp gives: a test sharing the CPU slows one side of the comparison only. The
// model's arithmetic is unit-tested (step_model_continuous.*).
TEST(continuous_fast, predicts_every_level_and_verify_measures_one) {
    const auto r = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--concurrency", "1,2,4", "-p", "32",
                                   "-n", "48", "--requests", "8", "--fast", "--verify", "2", "-o", "json", "--no-db", "-t", "1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 4u) << r.out;  // three predicted levels, then the measured C = 2
    const int cs[] = {1, 2, 4, 2};
    for (size_t i = 0; i < 4; ++i) {
        const auto & row = j[i];
        EXPECT_EQ(row["concurrency"], cs[i]);
        EXPECT_EQ(row["predicted"].get<bool>(), i < 3) << row.dump();
        const double out_tps = row["output_tps"], req_tps = row["request_tps"];
        ASSERT_GT(out_tps, 0);
        if (i < 3) {
            // The cycle's identities hold for predicted levels: output t/s = requests/s x n, and C requests in
            // flight for one E2E each (Little's law, L = λ·W).
            EXPECT_NEAR(out_tps, 48 * req_tps, 1e-6 * out_tps);
            EXPECT_NEAR(req_tps * row["e2e_mean_ms"].get<double>() / 1e3, cs[i], 1e-6 * cs[i]);
            EXPECT_EQ(row["n_ok"], 0) << "a predicted level has no requests behind it";
            EXPECT_LE(row["output_tps_lo"].get<double>(), out_tps);
            if (!row["output_tps_hi"].is_null()) EXPECT_GE(row["output_tps_hi"].get<double>(), out_tps);
            EXPECT_LT(row["ttft_mean_ms"].get<double>(), row["e2e_mean_ms"].get<double>());
            EXPECT_GT(row["sample_ms_mean"].get<double>(), 0) << "CPU sampling is probed and costs time";
        } else {
            EXPECT_EQ(row["n_ok"], 8);
        }
    }
    // The VM's spread is ±15% on tiny: the prediction must be in the right place, not exact.
    const double pred = j[1]["output_tps"], meas = j[3]["output_tps"];
    EXPECT_GT(pred, 0.5 * meas);
    EXPECT_LT(pred, 2.0 * meas);

    const auto md = run_infermeter({"parallel", "-m", "synth:tiny", "--mode", "continuous", "--concurrency", "1,2", "-p", "32",
                                    "-n", "48", "--requests", "4", "--fast", "--verify", "1", "--no-sample", "--no-db", "-t", "1"});
    ASSERT_EQ(md.exit_code, 0) << md.err;
    for (const char * s : {"| C=1~", "| C=2~", "| C=1 (measured) |", "predicted from step, prefill and sampling probes",
                           "| Regime (W) |", "no sampling (--no-sample)", "### Verification: C=1 predicted and measured",
                           "| Output t/s |",
                           // Decode steps timed as the engine runs them (a synchronize each), not only pipelined.
                           "The cycle's decode steps use steps timed with a synchronize each", "% at W = 2 against the pipelined step"}) {
        EXPECT_NE(md.out.find(s), std::string::npos) << s << "\n" << md.out;
    }
}
