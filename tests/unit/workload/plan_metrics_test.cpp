#include "core/error.h"
#include "model/info.h"
#include "workload/lockstep.h"
#include "workload/metrics.h"
#include "workload/plan.h"

#include <gtest/gtest.h>

using namespace im::workload;

TEST(auto_context, reference_cells_for_128_4096_with_ctx_min_8192) {
    EXPECT_EQ(pad256(4224), 4352);
    EXPECT_EQ(auto_n_ctx(1, 128, 4096, 8192), 8192);
    EXPECT_EQ(auto_n_ctx(2, 128, 4096, 8192), 8704);
    EXPECT_EQ(auto_n_ctx(4, 128, 4096, 8192), 17408);
    EXPECT_EQ(auto_n_ctx(8, 128, 4096, 8192), 34816);
    EXPECT_EQ(n_ctx_seq(34816, 8, false), 4352);
    EXPECT_EQ(n_ctx_seq(34816, 8, true), 34816);
    EXPECT_EQ(auto_n_ctx(1, 128, 4096), 4352);  // ctx_min defaults to 0
}

TEST(auto_context, reference_kv_bytes) {
    // Qwen2-1.5B, f16: 28,672 B per token; 34,816 cells -> 952 MiB; 224/238/476 MiB for W = 1/2/4
    const uint64_t kvpt = 28672;
    EXPECT_EQ(kv_bytes(34816, kvpt), 952ull << 20);
    EXPECT_EQ(kv_bytes(8192, kvpt), 224ull << 20);
    EXPECT_EQ(kv_bytes(8704, kvpt), 238ull << 20);
    EXPECT_EQ(kv_bytes(17408, kvpt), 476ull << 20);
}

TEST(auto_context, second_shape_llama_3_2_1b) {
    // 16 layers × 8 KV heads × head dim 64 × 2 (K, V) × 2 B = 32,768 B per token
    const uint64_t kvpt = 32768;
    EXPECT_EQ(auto_n_ctx(4, 512, 1000), 4 * 1536);
    EXPECT_EQ(kv_bytes(auto_n_ctx(4, 512, 1000), kvpt), 192ull << 20);
    EXPECT_EQ(kv_bytes(auto_n_ctx(8, 128, 4096, 8192), kvpt), 1088ull << 20);
}

TEST(auto_context, kv_agreement_tolerates_llama_cpp_rounding) {
    EXPECT_TRUE(kv_agrees(952ull << 20, 952ull << 20));
    EXPECT_TRUE(kv_agrees(1048576, 1048576 + 5000));
    EXPECT_FALSE(kv_agrees(952ull << 20, 953ull << 20));
}

TEST(lockstep_metrics, reference_rows) {
    // The reference's rows: T_PP and T_TG reconstructed from its prompt and generation rates.
    auto row = [](int w, double pp_tps, double tg_tps) {
        return lockstep_rates_of(w, 128, 4096, w * 128 / pp_tps, w * 4096 / tg_tps);
    };
    const auto r1 = row(1, 1211.25, 85.62);
    EXPECT_NEAR(r1.overall_tps, 88.10, 0.005);
    EXPECT_NEAR(r1.prompt_tps, 1211.25, 1e-9);
    EXPECT_EQ(r1.total_kv, 4224);
    const auto r2 = row(2, 1277.32, 96.72);
    EXPECT_NEAR(r2.overall_tps, 99.51, 0.005);
    const auto r4 = row(4, 1312.08, 157.62);
    EXPECT_NEAR(r4.overall_tps, 161.94, 0.005);
    const auto r8 = row(8, 1319.90, 181.59);
    EXPECT_NEAR(r8.overall_tps, 186.46, 0.005);
    EXPECT_EQ(r8.total_kv, 33792);

    const auto s2 = scaling_of(r2.overall_tps, 2, r1.overall_tps, 1);
    const auto s4 = scaling_of(r4.overall_tps, 4, r1.overall_tps, 1);
    const auto s8 = scaling_of(r8.overall_tps, 8, r1.overall_tps, 1);
    EXPECT_NEAR(s2.speedup, 1.13, 0.005);
    EXPECT_NEAR(s4.speedup, 1.84, 0.005);
    EXPECT_NEAR(s8.speedup, 2.12, 0.005);
    EXPECT_NEAR(s2.efficiency, 0.56, 0.005);
    EXPECT_NEAR(s4.efficiency, 0.46, 0.005);
    EXPECT_NEAR(s8.efficiency, 0.26, 0.005);
}

TEST(lockstep_metrics, zero_times_do_not_divide_by_zero) {
    const auto r = lockstep_rates_of(4, 128, 128, 0.0, 0.0);
    EXPECT_EQ(r.overall_tps, 0.0);
    EXPECT_EQ(scaling_of(100, 2, 0, 1).speedup, 0.0);
}

TEST(lockstep_validate, reachable_workers_follow_the_extension_up_to_max_workers) {
    lockstep_config c;
    c.workers = {1, 2, 4, 8};
    EXPECT_EQ(reachable_workers(c), (std::vector<int>{1, 2, 4, 8})) << "no extension: the requested ones";
    c.extend = true;
    c.max_workers = 32;
    EXPECT_EQ(reachable_workers(c), (std::vector<int>{1, 2, 4, 8, 16, 32}));
    c.workers = {1, 3};
    c.max_workers = 12;
    EXPECT_EQ(reachable_workers(c), (std::vector<int>{1, 3, 2, 4, 6, 8, 12}));
}

TEST(lockstep_validate, max_workers_is_bounded_by_llama_cpp) {
    lockstep_config c;
    c.extend = true;
    c.max_workers = static_cast<int>(llama_max_parallel_sequences()) + 1;
    try {
        validate(c, {});
        ADD_FAILURE() << "accepted --max-workers " << c.max_workers;
    } catch (const im::error & e) {
        EXPECT_EQ(e.kind(), im::error_kind::usage);
        EXPECT_NE(std::string(e.what()).find("--max-workers"), std::string::npos) << e.what();
    }
    c.max_workers = static_cast<int>(llama_max_parallel_sequences());
    EXPECT_NO_THROW(validate(c, {}));
}
