#include "report/split.h"

#include <gtest/gtest.h>

using namespace im;

namespace {

workload::split_analysis two_servers() {
    predict::split_shape shape{28, 1536, 151936, {}};
    std::vector<int> a, b;
    for (int i = 0; i < 14; ++i) a.push_back(i), b.push_back(i + 14);
    std::vector<predict::split_device> devs{{"RPC0", false, true, a, false, false},
                                            {"RPC1", false, true, b, false, true},
                                            {"CPU", true, false, {}, true, false}};
    workload::split_analysis s;
    s.split_mode = "layer";
    s.devices = {"RPC0 (10.0.0.1:50052): layers 0-13", "RPC1 (<b>&): layers 14-27 + output"};
    s.plan = predict::plan_split(shape, devs, predict::split_kind::layer);
    s.plan.note = "from llama.cpp's load log";
    s.links = {{"RPC0", "", 2e-3, 125e6, 125e6}, {"RPC1", "", 2e-3, 125e6, 125e6}};
    s.steps.push_back(predict::attribute("tg16", 0.020, s.plan, {1, 1, 512}, s.links, 0.008));
    s.baseline_source = "local.json";
    return s;
}

}  // namespace

TEST(split_report, markdown_prints_the_step_with_its_transfer_share_and_remainder) {
    const auto md = report::split_markdown(two_servers());
    EXPECT_NE(md.find("## Split Analysis (layer split over 2 devices)"), std::string::npos) << md;
    EXPECT_NE(md.find("| RPC0 | RPC1 | hidden state after layer 13 | 6,144 | tokens | RPC0 -> host, host -> RPC1 | 1 (RPC0) |"),
              std::string::npos) << md;
    EXPECT_NE(md.find("| host <-> RPC0 | 2.000 | 125.0 | 125.0 |"), std::string::npos) << md;
    // 626,176 B at 125 MB/s = 5.009 ms + 2 round trips x 2 ms = 9.009 ms of a 20 ms step; 20 - 8 - 9.009 = 2.991
    EXPECT_NE(md.find("| tg16 | 20.000 | 611.5 KiB | 2 | 9.009 | 45.0% | 8.000 | 2.991 |"), std::string::npos) << md;
}

TEST(split_report, json_carries_numbers_and_html_escapes) {
    const auto s = two_servers();
    const auto j = report::split_json(s);
    EXPECT_DOUBLE_EQ(j["decode_bytes_per_token"].get<double>(), 626176.0);
    EXPECT_EQ(j["decode_round_trips_per_step"], 2);
    EXPECT_NEAR(j["steps"][0]["transfer_s"].get<double>(), 0.00900941, 1e-8);
    EXPECT_NEAR(j["steps"][0]["other_s"].get<double>(), 0.00299059, 1e-8);
    const auto h = report::split_html(s);
    EXPECT_EQ(h.find("<b>&"), std::string::npos);
    EXPECT_NE(h.find("&lt;b&gt;&amp;"), std::string::npos) << h;
}
