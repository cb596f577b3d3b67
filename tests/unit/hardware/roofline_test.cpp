#include "core/error.h"
#include "core/format.h"
#include "hardware/roofline.h"
#include "hardware/specs.h"

#include "llama.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

using namespace im::hardware;

namespace {

// Qwen2-1.5B-Instruct Q4_K_M, the reference's model: 934.69 MiB, 1.54 B params, tied embeddings.
im::model::info qwen2_1_5b_q4_k_m() {
    im::model::info m;
    m.arch = "qwen2";
    m.n_layer = 28;
    m.n_embd = 1536;
    m.n_ff = 8960;
    m.n_head = 12;
    m.n_head_kv.assign(28, 2);
    m.head_dim_k = m.head_dim_v = 128;
    m.n_vocab = 151936;
    m.file_type = LLAMA_FTYPE_MOSTLY_Q4_K_M;
    m.size_bytes = 980092928;
    m.n_params = 1543714304;
    m.tied_embeddings = true;
    return m;
}

model_cost qwen_cost() { return cost_of(qwen2_1_5b_q4_k_m(), GGML_TYPE_F16, GGML_TYPE_F16); }
ceilings m1_pro() { return *parse_device_spec("bw=200GB/s,flops=5.2TF"); }

observation decode(int w, double tps, double depth = 128 + 2048) {
    observation o;
    o.phase = "decode";
    o.workers = w;
    o.tokens_per_s = tps;
    o.mean_depth_tokens = depth;
    return o;
}

observation prefill(int w, double tps, int n_prompt = 128) {
    observation o;
    o.phase = "prefill";
    o.workers = w;
    o.tokens_per_s = tps;
    o.n_prompt = n_prompt;
    return o;
}

}  // namespace

TEST(roofline_cost, qwen2_1_5b_bytes_and_flops_per_step) {
    const auto c = qwen_cost();
    EXPECT_EQ(c.weight_type, "q4_K");
    EXPECT_EQ(c.weight_bytes_per_step, 980092928u);  // 934.69 MiB, tied embeddings once
    EXPECT_NEAR(static_cast<double>(c.weight_bytes_per_step) / (1024.0 * 1024.0), 934.69, 0.005);
    EXPECT_EQ(c.matmul_params, 1543714304u);
    EXPECT_EQ(c.kv_bytes_per_token, 28672u);
    EXPECT_EQ(c.attn_width, 12 * 128);
    // 8 sequences at mean depth 2176: 980,092,928 + 8 * 2176 * 28,672
    EXPECT_DOUBLE_EQ(decode_step_bytes(c, 8, 2176), 980092928.0 + 499122176.0);
    // 8 * (2 * 1,543,714,304 + 4 * 28 * 2176 * 1536)
    EXPECT_DOUBLE_EQ(decode_step_flops(c, 8, 2176), 27694161920.0);
    EXPECT_DOUBLE_EQ(decode_step_flops(c, 1, 0), 2.0 * 1543714304.0);
    // 128-token prefill: 2 * params * 128 + 4 * 28 * 1536 * (128 * 127 / 2)
    EXPECT_DOUBLE_EQ(prefill_flops(c, 128, 1), 2.0 * 1543714304.0 * 128 + 4.0 * 28 * 1536 * 8128);
    EXPECT_DOUBLE_EQ(prefill_bytes(c, 128, 8), 980092928.0 * 2 + 1024.0 * 28672);
}

TEST(roofline_cost, untied_embeddings_are_a_lookup_not_a_matmul) {
    auto m = qwen2_1_5b_q4_k_m();
    m.tied_embeddings = false;
    const auto c = cost_of(m, GGML_TYPE_F16, GGML_TYPE_F16);
    EXPECT_EQ(c.matmul_params, 1543714304u - 151936u * 1536u);
    EXPECT_LT(c.weight_bytes_per_step, m.size_bytes);
    EXPECT_GT(c.weight_bytes_per_step, m.size_bytes * 8 / 10);
}

TEST(roofline_cost, quantized_kv_shrinks_the_traffic) {
    const auto c = cost_of(qwen2_1_5b_q4_k_m(), GGML_TYPE_Q8_0, GGML_TYPE_Q8_0);
    EXPECT_EQ(c.kv_bytes_per_token, 28u * 2u * 272u);
    EXPECT_EQ(c.type_k, "q8_0");
}

TEST(roofline_ideal, h100_bandwidth_ceiling_at_one_worker_is_about_3200_tps) {
    const auto h100 = *parse_device_spec("H100 SXM");
    const double t = ideal_decode_tokens_per_s(qwen_cost(), h100, 1, 128 + 2048);
    EXPECT_NEAR(t, 3200.0, 50.0);  // 3.35e12 / 1,042,483,200 B = 3,213 t/s (DESIGN §7)
    // llama.cpp's 540 t/s on an H100 (DESIGN §7) is ~17% of it
    EXPECT_NEAR(540.0 / t, 0.17, 0.01);
}

TEST(roofline_ideal, sharing_weight_reads_makes_ideal_throughput_grow_with_workers) {
    const auto c = qwen_cost();
    const auto m1 = m1_pro();
    double prev = 0;
    for (int w : {1, 2, 4, 8, 16}) {
        const double t = ideal_decode_tokens_per_s(c, m1, w, 2176);
        EXPECT_GT(t, prev * 1.3) << "W=" << w;
        prev = t;
    }
    // At very large W compute caps it: W / (W * flops per token / F) = F / flops per token.
    const double cap = 5.2e12 / decode_step_flops(c, 1, 2176);
    EXPECT_LE(ideal_decode_tokens_per_s(c, m1, 4096, 2176), cap * 1.0000001);
}

TEST(roofline_classify, reference_8_workers_on_m1_pro_is_overhead_bound_not_compute_bound) {
    const auto v = classify(qwen_cost(), m1_pro(), decode(8, 181.59));
    EXPECT_NEAR(v.bw_fraction, 0.17, 0.01);         // 33.6 GB/s of 200 GB/s
    EXPECT_GE(v.flops_fraction, 0.11);              // 629 GFLOP/s of 5.2 TFLOP/s
    EXPECT_LT(v.flops_fraction, 0.125);
    EXPECT_NEAR(v.achieved_bw_bytes_per_s, 33.58e9, 0.05e9);
    EXPECT_NEAR(v.step_s, 8 / 181.59, 1e-12);
    EXPECT_EQ(v.kind, bound::overhead);
    EXPECT_GT(v.ideal_tokens_per_s, 181.59 * 4);    // the roof is far above the measurement
    EXPECT_GT(v.unexplained_s, 0.0);
    ASSERT_GE(v.sentences.size(), 3u);
    bool says_not_compute = false;
    for (const auto & s : v.sentences) says_not_compute |= s.find("Not a compute ceiling") != std::string::npos;
    EXPECT_TRUE(says_not_compute);
}

TEST(roofline_classify, reference_rows_1_2_4_8) {
    const auto c = qwen_cost();
    const auto m1 = m1_pro();
    struct row {
        int w;
        double gen_tps, bw, flops;
    };
    // bw fraction = (weights + W * 2176 * 28,672 B) * gen_tps / W / 200 GB/s;
    // flops fraction = (2 * params + 4 * 28 * 2176 * 1536) * gen_tps / 5.2 TFLOP/s
    for (const row & r : {row{1, 85.62, 0.4463, 0.0570}, row{2, 96.72, 0.2672, 0.0644}, row{4, 157.62, 0.2423, 0.1049},
                          row{8, 181.59, 0.1679, 0.1209}}) {
        const auto v = classify(c, m1, decode(r.w, r.gen_tps));
        EXPECT_NEAR(v.bw_fraction, r.bw, 0.0005) << "W=" << r.w;
        EXPECT_NEAR(v.flops_fraction, r.flops, 0.0005) << "W=" << r.w;
        EXPECT_EQ(v.kind, bound::overhead) << "W=" << r.w;
    }
    // Prompt processing of the same rows runs at 72-79% of 5.2 TFLOP/s: compute-bound.
    for (auto [w, pp] : {std::pair{1, 1211.25}, {2, 1277.32}, {4, 1312.08}, {8, 1319.90}}) {
        const auto v = classify(c, m1, prefill(w, pp));
        EXPECT_EQ(v.kind, bound::compute) << "W=" << w;
        EXPECT_GT(v.flops_fraction, 0.7) << "W=" << w;
        EXPECT_LT(v.flops_fraction, 0.8) << "W=" << w;
    }
}

TEST(roofline_classify, thresholds) {
    const auto c = qwen_cost();
    auto spec = m1_pro();
    // Exactly at the bandwidth roof: bandwidth-bound.
    const double roof = ideal_decode_tokens_per_s(c, spec, 1, 0);
    EXPECT_EQ(classify(c, spec, decode(1, roof, 0)).kind, bound::bandwidth);
    EXPECT_EQ(classify(c, spec, decode(1, roof * 0.61, 0)).kind, bound::bandwidth);
    EXPECT_EQ(classify(c, spec, decode(1, roof * 0.59, 0)).kind, bound::overhead);
    // A tiny compute ceiling makes the same run compute-bound.
    spec.matmul_f16_flops_per_s = spec.matmul_quant_flops_per_s = 1e11;
    EXPECT_EQ(classify(c, spec, decode(1, 30, 0)).kind, bound::compute);
    EXPECT_THROW(classify(c, spec, decode(1, 0, 0)), im::error);
    spec.mem_bw_bytes_per_s = 0;
    EXPECT_THROW(classify(c, spec, decode(1, 30, 0)), im::error);
}

TEST(roofline_observation, parses_decode_and_prefill) {
    auto o = parse_observation("workers=8,gen_tps=181.59,depth=2176");
    ASSERT_EQ(o.size(), 1u);
    EXPECT_EQ(o[0].phase, "decode");
    EXPECT_EQ(o[0].workers, 8);
    EXPECT_DOUBLE_EQ(o[0].tokens_per_s, 181.59);
    EXPECT_DOUBLE_EQ(o[0].mean_depth_tokens, 2176);
    o = parse_observation("w=4, gen_tps=157.62, n_prompt=128, n_gen=4096, pp_tps=1312.08");
    ASSERT_EQ(o.size(), 2u);
    EXPECT_DOUBLE_EQ(o[0].mean_depth_tokens, 128 + 2048);
    EXPECT_EQ(o[1].phase, "prefill");
    EXPECT_EQ(o[1].n_prompt, 128);
    EXPECT_EQ(o[1].workers, 4);
    for (const char * bad : {"workers=8", "workers=0,gen_tps=1", "gen_tps=fast", "workers=2.5,gen_tps=1",
                             "workers=8,pp_tps=100", "bogus=1,gen_tps=1", "gen_tps"}) {
        try {
            parse_observation(bad);
            ADD_FAILURE() << bad;
        } catch (const im::error & e) {
            EXPECT_EQ(e.kind(), im::error_kind::usage) << bad;
            EXPECT_NE(std::string(e.what()).find("--observed"), std::string::npos) << e.what();
        }
    }
}

TEST(roofline_report, markdown_and_json_say_overhead_not_compute) {
    std::vector<observation> obs = {decode(1, 85.62), decode(2, 96.72), decode(4, 157.62), decode(8, 181.59),
                                    prefill(8, 1319.90)};
    const auto r = make_report(system_info{}, m1_pro(), qwen_cost(), obs, {1, 2, 4, 8, 16, 32, 64}, 2176);
    ASSERT_EQ(r.verdicts.size(), 5u);
    ASSERT_EQ(r.ideal_curve.size(), 7u);
    EXPECT_EQ(r.ideal_curve.front().first, 1);
    EXPECT_EQ(r.ideal_curve.back().first, 64);
    const std::string md = to_markdown(r);
    EXPECT_EQ(md.rfind("### Interpretation", 0), 0u);
    EXPECT_NE(md.find("overhead-bound"), std::string::npos);
    EXPECT_NE(md.find("contradict a \"compute ceiling\""), std::string::npos) << md;
    EXPECT_NE(md.find("934.69 MiB"), std::string::npos);
    EXPECT_NE(md.find("| 8 | 2,176 | 181.59 |"), std::string::npos) << md;
    const auto j = to_json(r);
    EXPECT_EQ(j["verdicts"].size(), 5u);
    EXPECT_EQ(j["verdicts"][3]["bound"], "overhead-bound");
    EXPECT_EQ(j["verdicts"][4]["bound"], "compute-bound");
    EXPECT_NEAR(j["verdicts"][3]["bw_fraction"].get<double>(), 0.168, 0.001);
    EXPECT_EQ(j["model_cost"]["weight_bytes_per_step"], 980092928u);
    EXPECT_EQ(j["ceilings"]["source"], "user");
    EXPECT_EQ(j["ideal_curve"]["points"].size(), 7u);
}

TEST(roofline_report, ideal_curve_includes_observed_workers) {
    const auto r = make_report(system_info{}, m1_pro(), qwen_cost(), {decode(6, 170)}, {1, 2, 4, 8}, 0);
    std::vector<int> ws;
    for (const auto & p : r.ideal_curve) ws.push_back(p.first);
    EXPECT_EQ(ws, (std::vector<int>{1, 2, 4, 6, 8}));
}

TEST(roofline_ftype, dominant_weight_types) {
    EXPECT_EQ(weight_type_of_ftype(LLAMA_FTYPE_MOSTLY_Q4_K_M), GGML_TYPE_Q4_K);
    EXPECT_EQ(weight_type_of_ftype(LLAMA_FTYPE_MOSTLY_Q8_0), GGML_TYPE_Q8_0);
    EXPECT_EQ(weight_type_of_ftype(LLAMA_FTYPE_MOSTLY_F16), GGML_TYPE_F16);
    EXPECT_EQ(weight_type_of_ftype(-1), GGML_TYPE_COUNT);
}

namespace {

// Every "N%" in `text` as a number.
std::vector<double> percentages(const std::string & text) {
    std::vector<double> out;
    for (size_t i = text.find('%'); i != std::string::npos; i = text.find('%', i + 1)) {
        size_t b = i;
        while (b > 0 && (std::isdigit(static_cast<unsigned char>(text[b - 1])) || text[b - 1] == '.' || text[b - 1] == ',')) --b;
        std::string digits;
        for (size_t k = b; k < i; ++k) {
            if (text[k] != ',') digits += text[k];
        }
        if (!digits.empty()) out.push_back(std::stod(digits));
    }
    return out;
}

ceilings measured(const std::string & backend, double bw, double flops, double launch_s) {
    ceilings c;
    c.backend = backend;
    c.device = backend == "CPU" ? "AMD EPYC" : "NVIDIA H200";
    c.source = "measured";
    c.mem_bw_bytes_per_s = c.mem_read_bytes_per_s = bw;
    c.mem_bw_kind = "read";
    c.matmul_f16_flops_per_s = c.matmul_quant_flops_per_s = flops;
    c.quant_type = "q4_K";
    c.launch_overhead_s = launch_s;
    c.n_threads = backend == "CPU" ? 2 : 0;
    return c;
}

}  // namespace

TEST(roofline_classify, no_phase_is_printed_above_100_percent_the_text_names_the_ceiling) {
    // The CPU case: prefill measured at 108% of the q4_K matmul "ceiling", and a decode row
    // faster than the probed bandwidth allows.
    auto ceil = measured("CPU", 10e9, 100e9, 20e-6);
    const auto c = qwen_cost();
    const double pp_tps = 1.08 * 100e9 / (prefill_flops(c, 128, 1) / 128.0);
    std::vector<observation> obs = {decode(1, 20.0, 0), prefill(1, pp_tps)};
    const auto r = make_report(system_info{}, ceil, c, obs, {1, 2}, 0);
    ASSERT_GT(r.verdicts[0].bw_fraction, 1.0);
    ASSERT_NEAR(r.verdicts[1].flops_fraction, 1.08, 0.001);
    const std::string md = to_markdown(r);
    for (double p : percentages(md)) EXPECT_LE(p, 100.0) << md;
    EXPECT_NE(md.find("above the bandwidth ceiling"), std::string::npos) << md;
    EXPECT_NE(md.find("exceeds the bandwidth ceiling"), std::string::npos) << md;
    EXPECT_NE(md.find("The measured prefill (108.0 GFLOP/s) exceeds the matmul (q4_K probe shape) ceiling"),
              std::string::npos) << md;
    EXPECT_NE(md.find("ceiling is wrong"), std::string::npos) << md;
    const auto j = to_json(r);  // a range-for over to_json(r)["summary"] would iterate a destroyed temporary (C++20)
    for (const auto & s : j["summary"]) {
        for (double p : percentages(s.get<std::string>())) EXPECT_LE(p, 100.0) << s;
    }
}

TEST(roofline_classify, the_rate_at_the_models_shapes_is_the_phases_matmul_ceiling) {
    auto ceil = measured("CPU", 10e9, 100e9, 20e-6);
    ceil.matmul_model = {{1, 20e9}, {512, 150e9}};
    ceil.matmul_model_shapes = "attn_q q4_K 1536x1536";
    const auto c = qwen_cost();
    const auto pre = classify(c, ceil, prefill(4, 500.0, 128));  // 4 x 128 = one 512-token micro-batch
    EXPECT_DOUBLE_EQ(pre.matmul_ceiling_flops_per_s, 150e9);
    EXPECT_EQ(pre.matmul_ceiling, "matmul (model's shapes, N = 512)");
    const auto dec = classify(c, ceil, decode(1, 5.0, 0));
    EXPECT_DOUBLE_EQ(dec.matmul_ceiling_flops_per_s, 20e9);
    const auto dec2 = classify(c, ceil, decode(2, 5.0, 0));  // N = 2 not probed: the generic rate
    EXPECT_DOUBLE_EQ(dec2.matmul_ceiling_flops_per_s, 100e9);
    const std::string md = to_markdown(make_report(system_info{}, ceil, c, {prefill(4, 500.0, 128)}, {1}, 0));
    EXPECT_NE(md.find("| Matmul at the model's shapes, N = 512 | 150.0 GFLOP/s |"), std::string::npos) << md;
}

TEST(roofline_text, a_cpu_has_no_kernel_launches) {
    const auto c = qwen_cost();
    std::vector<observation> obs = {decode(1, 2.0, 0), decode(2, 3.0, 0)};  // far below the roof: overhead-bound
    const auto cpu = to_markdown(make_report(system_info{}, measured("CPU", 50e9, 100e9, 20e-6), c, obs, {1, 2}, 0));
    EXPECT_EQ(cpu.find("trivial graph"), std::string::npos) << cpu;
    EXPECT_EQ(cpu.find("the gap equals"), std::string::npos) << cpu;
    EXPECT_EQ(cpu.find("launch"), std::string::npos) << cpu;
    EXPECT_NE(cpu.find("thread synchronization"), std::string::npos) << cpu;
    const auto gpu = to_markdown(make_report(system_info{}, measured("CUDA", 4.4e12, 400e12, 5e-6), c,
                                             {decode(1, 20.0, 0)}, {1}, 0));
    EXPECT_NE(gpu.find("One trivial graph costs 5.0 us to launch"), std::string::npos) << gpu;
    EXPECT_NE(gpu.find("the gap equals"), std::string::npos) << gpu;
    EXPECT_NE(gpu.find("kernel launches"), std::string::npos) << gpu;
}

TEST(roofline_cost, prefill_traffic_uses_the_runs_ubatch) {
    const auto c = qwen_cost();
    // 8 x 128 prompt tokens in micro-batches of 128: the weights stream 8 times, not twice.
    EXPECT_DOUBLE_EQ(prefill_bytes(c, 128, 8, 128), 980092928.0 * 8 + 1024.0 * 28672);
    auto o = prefill(8, 1000.0, 128);
    o.n_ubatch = 128;
    const auto v = classify(c, m1_pro(), o);
    EXPECT_DOUBLE_EQ(v.bytes_per_step, 980092928.0 * 8 + 1024.0 * 28672);
    EXPECT_NE(v.sentences[0].find("weights once per 128-token micro-batch, -ub 128"), std::string::npos)
        << v.sentences[0];
    // A single 100-token prompt at -ub 512 is one 100-token micro-batch.
    auto one = prefill(1, 1000.0, 100);
    EXPECT_EQ(prefill_ubatch_tokens(one), 100);
    const auto parsed = parse_observation("workers=2,pp_tps=100,n_prompt=64,ub=32");
    ASSERT_EQ(parsed.size(), 1u);
    EXPECT_EQ(parsed[0].n_ubatch, 32);
    EXPECT_EQ(parse_observation("workers=2,pp_tps=100,n_prompt=64", 256)[0].n_ubatch, 256);
}

// The H200 report (2026-12-03): the model-shape rate at N = 1 (then probed one launch per matmul) sat
// below what decode reached, so each W's own roofline read below the measurement; the ideal-curve
// table printed "above the roofline (a ceiling is wrong)" beside an Ideal column ten times the
// measured rate. The ratio is taken against the Ideal column's own ceilings at the row's depth.
TEST(roofline_report, ideal_table_ratio_uses_the_same_ceilings_as_its_ideal_column) {
    auto ceil = measured("CUDA", 4.5e12, 180e12, 5e-6);
    ceil.matmul_model = {{1, 1.2e12}};
    ceil.matmul_model_shapes = "attn_q q4_K 1536x1536";
    const auto c = qwen_cost();
    const double depth = 1152;
    const auto r = make_report(system_info{}, ceil, c, {decode(1, 564.5, depth)}, {1}, depth);
    ASSERT_LT(r.verdicts[0].ideal_tokens_per_s, 564.5);  // the verdict's own (model-shape) roofline is below
    const std::string md = to_markdown(r);
    EXPECT_EQ(md.find("above the roofline"), std::string::npos) << md;
    const double ideal = ideal_decode_tokens_per_s(c, ceil, 1, depth);
    const auto row = fmt::format("| 1 | {} |", im::fmtx::thousands(ideal, 0));
    const auto at = md.find("**Ideal generation throughput vs workers**");
    ASSERT_NE(at, std::string::npos);
    const auto line_end = md.find('\n', md.find("| 1 |", at));
    const std::string line = md.substr(md.find("| 1 |", at), line_end - md.find("| 1 |", at));
    EXPECT_NE(line.find(im::fmtx::percent(564.5 / ideal)), std::string::npos) << line << " / " << row;
}

// The H200 (2026-12-03): decode at 75-87% of the model-shape rate at N = W, a rate that is a few
// percent of the 181 TFLOP/s q4_K peak. That is the kernels at this batch, not a compute ceiling:
// "compute-bound ... more workers cannot add throughput" was printed while every doubling of W added
// 40-70% generation throughput.
TEST(roofline_classify, near_a_small_batch_kernel_rate_is_kernel_bound_not_compute_bound) {
    auto ceil = measured("CUDA", 4.5e12, 181e12, 7.5e-6);
    ceil.matmul_model = {{1, 2.46e12}, {32, 22.48e12}, {512, 99.18e12}};
    ceil.matmul_model_shapes = "attn_q q4_K 1536x1536";
    const auto c = qwen_cost();
    const auto w1 = classify(c, ceil, decode(1, 564.49, 1152));
    EXPECT_EQ(w1.kind, bound::kernel) << w1.flops_fraction;
    EXPECT_EQ(std::string(bound_name(w1.kind)), "kernel-bound");
    const auto w32 = classify(c, ceil, decode(32, 5656.64, 1152));
    EXPECT_EQ(w32.kind, bound::kernel);
    std::string text;
    for (const auto & s : w1.sentences) text += s + "\n";
    EXPECT_NE(text.find("Kernel-bound at this batch"), std::string::npos) << text;
    EXPECT_EQ(text.find("more workers cannot add throughput"), std::string::npos) << text;
    // Near a model-shape rate that is itself near the peak: compute-bound as before.
    ceil.matmul_model = {{256, 150e12}};
    EXPECT_EQ(classify(c, ceil, decode(256, 256 * 0.7 * 150e12 / decode_step_flops(c, 256, 1152), 1152)).kind, bound::compute);
}

// The 2-core VM's demo (2026-12-03): decode at W = 1 ran at 95% of the model-shape rate at N = 1 (about
// 75 GFLOP/s), a rate at which the matrix-vector kernel streams q4_K weights at ~24 GB/s, most of the
// 31 GB/s bandwidth ceiling: bandwidth-bound through the kernel, not "compute-bound ... more workers
// cannot add throughput" (W = 2 and 4 added 17% and 52%).
TEST(roofline_classify, near_a_bandwidth_limited_kernel_rate_is_bandwidth_bound) {
    auto ceil = measured("CPU", 31e9, 120e9, 20e-6);
    ceil.matmul_model = {{1, 75e9}};
    ceil.matmul_model_shapes = "attn_q q4_K 1536x1536";
    const auto c = qwen_cost();
    const auto v = classify(c, ceil, decode(1, 21.46, 192));
    ASSERT_GT(v.flops_fraction, v.bw_fraction);
    EXPECT_GT(v.kernel_bw_fraction, 0.6);
    EXPECT_EQ(v.kind, bound::bandwidth);
    std::string text;
    for (const auto & s : v.sentences) text += s + "\n";
    EXPECT_NE(text.find("Bandwidth-bound through the matmul kernel"), std::string::npos) << text;
    EXPECT_EQ(text.find("more workers cannot add throughput"), std::string::npos) << text;
}
