#include "report/kinds.h"

#include "core/error.h"

#include "report/measurements.h"
#include "report/requests.h"
#include "store/store.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>

using namespace im;

namespace {

report::run_context context() {
    report::run_context c;
    c.infermeter_version = "0.1.0";
    c.build_commit = "80fb11a";
    c.cpu_info = "Test CPU";
    c.model_type = "qwen2 1.5B Q4_K - Medium";
    c.test_time = "2026-11-26T10:00:00Z";
    return c;
}

// One closed-loop load level of two requests (TTFT 50 and 70 ms, E2E 250 and 330 ms).
workload::request_run one_load_level() {
    workload::request_run run;
    run.workload.concurrency = 2;
    run.engine = "fake";
    run.lengths = "fixed 128/11";
    run.sampling = "greedy, CPU sampling";
    run.n_slots = 2;
    for (int i = 0; i < 2; ++i) {
        workload::request_record r;
        r.id = static_cast<uint64_t>(i);
        r.n_prompt = 128;
        r.n_predict = r.n_output = 11;
        r.t_intended_ns = 0;
        r.t_sent_ns = r.t_admitted_ns = 1'000'000;
        r.t_first_ns = (50 + 20 * i) * 1'000'000;
        r.t_end_ns = (250 + 80 * i) * 1'000'000;
        run.records.push_back(r);
    }
    run.metrics = workload::compute_metrics(run.records, {}, run.workload);
    return run;
}

// What each kind's writer produces for one measured row. A kind added to the registry without an
// entry here fails `every_kind_has_a_writer_test`.
const std::map<std::string, std::function<report::table()>> & writers() {
    static const std::map<std::string, std::function<report::table()>> w = {
        {"bench",
         [] {
             workload::bench_result r;
             r.test.n_prompt = 512;
             r.samples_ts = {1000, 1010};
             r.samples_ns = {512000000, 506930693};
             return report::bench_table({r}, context());
         }},
        {"parallel",
         [] {
             workload::lockstep_result res;
             workload::lockstep_row row;
             row.workers = 2;
             row.n_prompt = 128;
             row.n_predict = 256;
             row.add_repetition(0.5, 5.0);
             row.summarize();
             res.rows.push_back(row);
             res.base_workers = 2;
             return report::parallel_table(res, workload::lockstep_config{}, context());
         }},
        {"continuous",
         [] {
             const engine::llama::engine_params params;
             return report::requests_table("continuous", {one_load_level()}, context(), &params);
         }},
        {"serve", [] { return report::requests_table("serve", {one_load_level()}, context(), nullptr); }},
    };
    return w;
}

bool has_field(const report::table & t, const std::string & name) {
    for (const auto & f : t.fields) {
        if (f.name == name) return true;
    }
    return false;
}

}  // namespace

TEST(result_kinds, every_kind_has_a_writer_test) {
    for (const auto & k : report::result_kinds()) EXPECT_TRUE(writers().count(k.name)) << k.name;
    EXPECT_EQ(report::result_kinds().size(), writers().size());
}

TEST(result_kinds, shape_is_what_the_writer_produces) {
    for (const auto & k : report::result_kinds()) {
        const auto it = writers().find(k.name);
        if (it == writers().end()) continue;
        const auto written = it->second();
        EXPECT_EQ(written.name, k.name);
        EXPECT_EQ(k.shape.name, k.name);
        EXPECT_TRUE(k.shape.rows.empty()) << k.name;
        ASSERT_EQ(written.fields.size(), k.shape.fields.size()) << k.name;
        for (size_t i = 0; i < written.fields.size(); ++i) {
            EXPECT_EQ(written.fields[i].name, k.shape.fields[i].name) << k.name << " field " << i;
            EXPECT_EQ(written.fields[i].type, k.shape.fields[i].type) << k.name << " " << written.fields[i].name;
        }
        // The store holds the same shape.
        EXPECT_EQ(store::result_shape(k.name).fields.size(), k.shape.fields.size()) << k.name;
    }
}

TEST(result_kinds, declared_fields_exist_and_metrics_have_values) {
    for (const auto & k : report::result_kinds()) {
        EXPECT_FALSE(k.key_fields.empty()) << k.name;
        EXPECT_FALSE(k.key_description.empty()) << k.name;
        for (const auto & f : k.key_fields) EXPECT_TRUE(has_field(k.shape, f)) << k.name << " key " << f;
        for (const auto & s : k.setting_fields) EXPECT_TRUE(has_field(k.shape, s.name)) << k.name << " setting " << s.name;
        if (!k.skipped_field.empty()) EXPECT_TRUE(has_field(k.shape, k.skipped_field)) << k.name;
        ASSERT_FALSE(k.metrics.empty()) << k.name;
        std::set<std::string> names;
        for (const auto & m : k.metrics) {
            EXPECT_TRUE(names.insert(m.name).second) << k.name << " metric " << m.name << " twice";
            EXPECT_FALSE(m.unit.empty()) << k.name << " " << m.name;
            EXPECT_TRUE(has_field(k.shape, m.value_field)) << k.name << " " << m.name << " " << m.value_field;
            if (!m.samples_field.empty()) EXPECT_TRUE(has_field(k.shape, m.samples_field)) << k.name << " " << m.samples_field;
        }
        ASSERT_TRUE(k.label && k.headline_of) << k.name;
        // Every headline key is present for a run without rows of this kind (null), so that
        // `history -o json` has the same keys on every line.
        const auto empty = k.headline_of(k.shape);
        EXPECT_TRUE(empty.text.empty()) << k.name;
        EXPECT_FALSE(empty.fields.empty()) << k.name;
        for (const auto & [key, v] : empty.fields.items()) EXPECT_TRUE(v.is_null()) << k.name << " " << key;
        // A written row has a figure for every metric, and a label.
        const auto it = writers().find(k.name);
        if (it == writers().end()) continue;
        const auto t = it->second();
        EXPECT_FALSE(k.label(t, 0).empty());
        const auto h = k.headline_of(t);
        EXPECT_FALSE(h.text.empty()) << k.name;
    }
}

TEST(result_kinds, lookups) {
    EXPECT_EQ(report::find_result_kind("bench")->name, "bench");
    EXPECT_EQ(report::find_result_kind("evaluate"), nullptr);
    EXPECT_THROW(report::result_kind_of("nonsense"), im::error);
    const auto runs = report::run_kind_names();
    EXPECT_EQ(runs.back(), "evaluate");
    EXPECT_EQ(runs.size(), report::result_kinds().size() + 1);
}

TEST(result_kinds, export_rows_are_recognised_by_their_fields) {
    for (const auto & [name, write] : writers()) {
        const auto rows = nlohmann::json::parse(report::to_json(write()).dump());
        const auto * k = report::kind_of_json_rows(rows);
        ASSERT_NE(k, nullptr) << name;
        EXPECT_EQ(k->name, name);
        const auto back = report::table_from_json(rows, k->shape);
        ASSERT_EQ(back.rows.size(), 1u);
        EXPECT_EQ(report::to_json(back).dump(), report::to_json(write()).dump()) << name << ": the JSON round trip is exact";
    }
    EXPECT_EQ(report::kind_of_json_rows(nlohmann::json::parse(R"([{"test_time": "2026", "cpu_info": "x"}])")), nullptr)
        << "context fields alone identify no kind";
    EXPECT_EQ(report::kind_of_json_rows(nlohmann::json::array()), nullptr);
}

TEST(result_kinds, metric_values_prefer_samples_and_fall_back_to_the_figure) {
    const auto & bench = report::result_kind_of("bench");
    auto t = bench.shape;
    auto & row = t.add_row();
    t.set(row, "avg_ts", 7.0);
    auto v = report::values_of(bench.metrics[0], t, 0);
    EXPECT_TRUE(v.samples.empty());
    EXPECT_DOUBLE_EQ(*v.value, 7.0);
    t.set(t.rows[0], "samples_ts", std::vector<double>{1, 2, 6});
    v = report::values_of(bench.metrics[0], t, 0);
    EXPECT_EQ(v.samples.size(), 3u);
    EXPECT_DOUBLE_EQ(*v.value, 3.0);
    report::metric_def p99{"x", "ms", report::direction::lower_is_better, "avg_ts", "samples_ts", 99, {}};
    EXPECT_NEAR(*report::values_of(p99, t, 0).value, 2 + 4 * 0.98, 1e-12) << "type-7 percentile of the samples";
}
