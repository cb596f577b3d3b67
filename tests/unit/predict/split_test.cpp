#include "predict/split.h"

#include <gtest/gtest.h>

#include <vector>

using namespace im::predict;

namespace {

// The reference model, Qwen2-1.5B: 28 layers, n_embd 1536, n_vocab 151,936, FFN 8960, 2 KV heads of 128.
split_shape qwen2_1_5b() {
    split_shape s;
    s.n_layer = 28;
    s.n_embd = 1536;
    s.n_vocab = 151936;
    s.layer_matmuls = {{1536, 1536}, {1536, 256}, {1536, 256}, {1536, 1536}, {1536, 8960}, {1536, 8960}, {8960, 1536}};
    return s;
}

std::vector<int> range(int a, int b) {
    std::vector<int> v;
    for (int i = a; i < b; ++i) v.push_back(i);
    return v;
}

// Two ggml-rpc-servers, split at layer 14; the output layer on the second (llama.cpp's default placement
// gives the last device the output layer), the input on the client's CPU.
std::vector<split_device> two_rpc_servers() {
    return {{"RPC0", false, true, range(0, 14), false, false},
            {"RPC1", false, true, range(14, 28), false, true},
            {"CPU", true, false, {}, true, false}};
}

}  // namespace

TEST(split, layer_split_over_two_rpc_servers_moves_the_hidden_state_and_the_logits) {
    const auto p = plan_split(qwen2_1_5b(), two_rpc_servers(), split_kind::layer);
    ASSERT_EQ(p.crossings.size(), 3u);
    EXPECT_EQ(p.n_devices, 2);
    // the input going up, one boundary (through the client: down from RPC0, up to RPC1), logits down
    EXPECT_EQ(p.crossings[0].what, "input hidden state");
    EXPECT_DOUBLE_EQ(p.crossings[0].bytes_per_token, 1536 * 4);
    EXPECT_EQ(p.crossings[1].what, "hidden state after layer 13");
    EXPECT_DOUBLE_EQ(p.crossings[1].bytes_per_token, 1536 * 4);
    EXPECT_EQ(p.crossings[1].legs.size(), 2u);
    EXPECT_EQ(p.crossings[2].what, "logits");
    EXPECT_DOUBLE_EQ(p.crossings[2].bytes_per_token, 151936 * 4);
    EXPECT_TRUE(p.crossings[2].per_output);
    // one decode token: 6,144 up + 2 x 6,144 between the servers + 607,744 of logits
    const split_step tg{1, 1, 512};
    EXPECT_DOUBLE_EQ(bytes_per_step(p, tg), 6144.0 + 2 * 6144.0 + 607744.0);
    EXPECT_EQ(round_trips_per_step(p, tg), 2);  // RPC0's hidden state read back, RPC1's logits
    // decode at W = 4: every term x 4
    EXPECT_DOUBLE_EQ(bytes_per_step(p, {4, 4, 512}), 4 * (6144.0 + 2 * 6144.0 + 607744.0));
    // a 1024-token prefill in ubatches of 512 with one output: activations per token, logits once,
    // the round trips per ubatch
    EXPECT_DOUBLE_EQ(bytes_per_step(p, {1024, 1, 512}), 1024 * 3 * 6144.0 + 607744.0);
    EXPECT_EQ(round_trips_per_step(p, {1024, 1, 512}), 4);
}

TEST(split, output_layer_on_the_host_brings_back_the_last_hidden_state_per_output) {
    auto devs = two_rpc_servers();
    devs[1].output = false;
    devs[2].output = true;
    const auto p = plan_split(qwen2_1_5b(), devs, split_kind::layer);
    ASSERT_EQ(p.crossings.size(), 3u);
    EXPECT_EQ(p.crossings[2].what, "hidden state after layer 27");
    EXPECT_TRUE(p.crossings[2].per_output);
    EXPECT_DOUBLE_EQ(bytes_per_step(p, {512, 1, 512}), 512 * 3 * 6144.0 + 6144.0);
}

TEST(split, local_gpus_copy_device_to_device_without_a_host_wait) {
    std::vector<split_device> devs{{"CUDA0", false, false, range(0, 14), false, false},
                                   {"CUDA1", false, false, range(14, 28), false, true},
                                   {"CPU", true, false, {}, true, false}};
    const auto p = plan_split(qwen2_1_5b(), devs, split_kind::layer);
    ASSERT_EQ(p.crossings.size(), 3u);
    ASSERT_EQ(p.crossings[1].legs.size(), 1u);
    EXPECT_EQ(p.crossings[1].legs[0].device, "CUDA0");
    EXPECT_EQ(p.crossings[1].legs[0].peer, "CUDA1");
    EXPECT_EQ(p.crossings[1].round_trips, 0);
    EXPECT_EQ(round_trips_per_step(p, {1, 1, 512}), 1);  // the logits only
    EXPECT_DOUBLE_EQ(bytes_per_step(p, {1, 1, 512}), 6144.0 + 6144.0 + 607744.0);
}

TEST(split, one_device_holding_everything_crosses_only_at_the_ends) {
    std::vector<split_device> devs{{"CUDA0", false, false, range(0, 28), false, true}, {"CPU", true, false, {}, true, false}};
    const auto p = plan_split(qwen2_1_5b(), devs, split_kind::layer);
    EXPECT_EQ(p.n_devices, 1);
    EXPECT_EQ(p.crossings.size(), 2u);  // input up, logits down
}

TEST(split, row_split_moves_every_matmuls_inputs_and_partial_results) {
    std::vector<split_device> devs{{"CUDA0", false, false, range(0, 28), false, true},
                                   {"CUDA1", false, false, {}, false, false},
                                   {"CPU", true, false, {}, true, false}};
    const auto p = plan_split(qwen2_1_5b(), devs, split_kind::row);
    EXPECT_EQ(p.n_devices, 2);
    ASSERT_EQ(p.crossings.size(), 4u);  // input, matmul inputs to CUDA1, partial results back, logits
    // per token: 28 layers x (6 x 1536 + 8960) inputs x 4 B to the other device; half the output rows
    // (1536 + 256 + 256 + 1536 + 8960 + 8960 + 1536 = 23,040) x 4 B back
    EXPECT_EQ(p.crossings[1].what, "row-split matmul inputs");
    EXPECT_DOUBLE_EQ(p.crossings[1].bytes_per_token, 28 * 18176 * 4.0);
    EXPECT_EQ(p.crossings[2].what, "row-split partial results");
    EXPECT_DOUBLE_EQ(p.crossings[2].bytes_per_token, 28 * 0.5 * 23040 * 4.0);
    EXPECT_DOUBLE_EQ(bytes_per_step(p, {1, 1, 512}), 6144.0 + 2035712.0 + 1290240.0 + 607744.0);
    // -ts 3/1: a quarter of the rows on CUDA1
    const auto q = plan_split(qwen2_1_5b(), devs, split_kind::row, {3, 1});
    EXPECT_DOUBLE_EQ(q.crossings[2].bytes_per_token, 28 * 0.25 * 23040 * 4.0);
}

TEST(split, attribution_adds_bytes_at_the_probed_rates_and_round_trips) {
    const auto p = plan_split(qwen2_1_5b(), two_rpc_servers(), split_kind::layer);
    // 1 Gb/s links (125 MB/s each way), 2 ms round trips
    const std::vector<link_rate> links{{"RPC0", "", 2e-3, 125e6, 125e6}, {"RPC1", "", 2e-3, 125e6, 125e6}};
    const auto a = attribute("tg", 0.020, p, {1, 1, 512}, links, 0.008);
    EXPECT_DOUBLE_EQ(a.transfer.bytes, 626176.0);
    EXPECT_EQ(a.transfer.round_trips, 2);
    EXPECT_NEAR(a.transfer.bytes_s, 626176.0 / 125e6, 1e-12);
    EXPECT_NEAR(a.transfer.round_trips_s, 4e-3, 1e-12);
    EXPECT_NEAR(a.transfer.transfer_s(), 0.00500941 + 0.004, 1e-8);
    EXPECT_NEAR(a.share, (0.00500941 + 0.004) / 0.020, 1e-6);
    ASSERT_TRUE(a.other_s.has_value());
    EXPECT_NEAR(*a.other_s, 0.020 - 0.008 - 0.00900941, 1e-8);
    EXPECT_TRUE(a.transfer.missing.empty());
    // without a baseline there is no remainder; without a probe of RPC1 it is named as missing
    const auto b = attribute("tg", 0.020, p, {1, 1, 512}, {links[0]});
    EXPECT_FALSE(b.other_s.has_value());
    EXPECT_EQ(b.transfer.missing.size(), 3u);  // host -> RPC1, host <- RPC1 and its round trip
    EXPECT_LT(b.transfer.transfer_s(), a.transfer.transfer_s());
}
