#include "pipeline/evaluate.h"
#include "workload/lockstep.h"

#include <gtest/gtest.h>

using namespace im;

TEST(resume_configuration, differences_name_each_key_with_both_values) {
    pipeline::evaluate_options o;
    const nlohmann::ordered_json id = {{"file_bytes", 100}, {"header_fnv1a64", "00000000000000ab"}};
    const auto saved = pipeline::run_configuration(o, id, 128, 1024, {1, 2, 4, 8}, 32, 5);
    EXPECT_TRUE(pipeline::configuration_differences(saved, saved).empty());

    o.ctx_min = 8192;
    o.kv_unified = true;
    o.params.type_v = GGML_TYPE_Q8_0;
    const auto now = pipeline::run_configuration(o, {{"file_bytes", 101}, {"header_fnv1a64", "00000000000000ab"}}, 128,
                                                 2048, {1, 2, 4, 8}, 32, 5);
    const auto diff = pipeline::configuration_differences(saved, now);
    // Keys in alphabetical order (nlohmann::json's object order).
    const std::vector<std::string> want{"ctx_min: 0 → 8192", "engine.type_v: \"f16\" → \"q8_0\"", "kv_unified: false → true",
                                        "model.file_bytes: 100 → 101", "n_predict: 1024 → 2048"};
    EXPECT_EQ(diff, want);

    auto fewer = nlohmann::json(saved);
    fewer.erase("bench_repetitions");
    EXPECT_EQ(pipeline::configuration_differences(fewer, saved),
              std::vector<std::string>{"bench_repetitions: (none) → 5"});
}

TEST(resume_configuration, workers_and_max_workers_count) {
    pipeline::evaluate_options o;
    const auto a = pipeline::run_configuration(o, {}, 128, 1024, {1, 2, 4, 8}, 32, 5);
    const auto b = pipeline::run_configuration(o, {}, 128, 1024, {1, 2, 4}, 64, 5);
    EXPECT_EQ(pipeline::configuration_differences(a, b).size(), 2u);
}
