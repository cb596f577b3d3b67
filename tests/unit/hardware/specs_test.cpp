#include "core/error.h"
#include "hardware/specs.h"

#include <gtest/gtest.h>

using namespace im::hardware;

TEST(device_spec, bandwidth_and_flops_units) {
    auto c = parse_device_spec("bw=200GB/s,flops=5.2TF");
    ASSERT_TRUE(c);
    EXPECT_DOUBLE_EQ(c->mem_bw_bytes_per_s, 200e9);
    EXPECT_DOUBLE_EQ(c->matmul_f16_flops_per_s, 5.2e12);
    EXPECT_DOUBLE_EQ(c->matmul_quant_flops_per_s, 5.2e12);
    EXPECT_EQ(c->source, "user");

    c = parse_device_spec(" bw = 3.35 TB/s , flops = 989.4 TFLOPS , launch=8us, name=my gpu");
    EXPECT_DOUBLE_EQ(c->mem_bw_bytes_per_s, 3.35e12);
    EXPECT_NEAR(c->matmul_f16_flops_per_s, 989.4e12, 1);
    EXPECT_NEAR(c->launch_overhead_s, 8e-6, 1e-15);
    EXPECT_EQ(c->device, "my gpu");

    c = parse_device_spec("bw=100GiB/s,flops=5200GFLOP/s");
    EXPECT_DOUBLE_EQ(c->mem_bw_bytes_per_s, 100.0 * 1024 * 1024 * 1024);
    EXPECT_DOUBLE_EQ(c->matmul_f16_flops_per_s, 5.2e12);

    c = parse_device_spec("bw=5e10,f16=2e12,quant=1TF");
    EXPECT_DOUBLE_EQ(c->mem_bw_bytes_per_s, 5e10);
    EXPECT_DOUBLE_EQ(c->matmul_f16_flops_per_s, 2e12);
    EXPECT_DOUBLE_EQ(c->matmul_quant_flops_per_s, 1e12);

    c = parse_device_spec("bw=68MB/s,flops=3GF");
    EXPECT_DOUBLE_EQ(c->mem_bw_bytes_per_s, 68e6);
    EXPECT_DOUBLE_EQ(c->matmul_f16_flops_per_s, 3e9);
}

TEST(device_spec, datasheet_names) {
    auto c = parse_device_spec("M1 Pro");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->source, "spec:M1 Pro");
    EXPECT_DOUBLE_EQ(c->mem_bw_bytes_per_s, 200e9);
    EXPECT_DOUBLE_EQ(c->matmul_f16_flops_per_s, 5.2e12);
    c = parse_device_spec("h100-sxm");
    ASSERT_TRUE(c);
    EXPECT_DOUBLE_EQ(c->mem_bw_bytes_per_s, 3.35e12);
    EXPECT_FALSE(parse_device_spec(""));
    for (const char * name : {"H100 SXM", "H100 PCIe", "A100 SXM", "L4", "RTX 4090", "M1 Pro", "M1 Max", "M1 Ultra",
                              "M2 Pro", "M2 Max", "M2 Ultra", "M3 Pro", "M3 Max", "M3 Ultra", "EPYC 9654"}) {
        const auto d = find_datasheet(name);
        ASSERT_TRUE(d) << name;
        EXPECT_GT(d->mem_bw_bytes_per_s, 50e9) << name;
        EXPECT_GT(d->flops_per_s, 1e12) << name;
    }
}

TEST(device_spec, bad_input_is_a_usage_error_naming_the_flag) {
    for (const char * bad : {"bw=fast,flops=1TF", "flops=5TF", "bw=200GB/s", "bw=200XB/s,flops=1TF",
                             "bw=200GB/s,flops=1QF", "bw=-5GB/s,flops=1TF", "bw=200GB/s,flops=1TF,color=red",
                             "no such device", "bw200GB/s,flops=1TF", "bw=1GB/s,flops=1TF,launch=5 weeks"}) {
        try {
            parse_device_spec(bad);
            ADD_FAILURE() << "accepted: " << bad;
        } catch (const im::error & e) {
            EXPECT_EQ(e.kind(), im::error_kind::usage) << bad;
            EXPECT_NE(std::string(e.what()).find("--device-spec"), std::string::npos) << e.what();
        }
    }
}

TEST(device_spec, matmul_ceiling_for_weight_type) {
    ceilings c;
    c.matmul_f16_flops_per_s = 100;
    c.matmul_quant_flops_per_s = 300;
    c.quant_type = "q4_K";
    EXPECT_DOUBLE_EQ(matmul_ceiling_for(c, "q4_K"), 300);
    EXPECT_DOUBLE_EQ(matmul_ceiling_for(c, "f16"), 100);
    EXPECT_DOUBLE_EQ(matmul_ceiling_for(c, "q8_0"), 100);  // not measured: the f16 rate stands in
}

TEST(device_spec, formatting) {
    EXPECT_EQ(format_bytes_per_s(200e9), "200.0 GB/s");
    EXPECT_EQ(format_bytes_per_s(3.35e12), "3.35 TB/s");
    EXPECT_EQ(format_flops_per_s(5.2e12), "5.20 TFLOP/s");
    EXPECT_EQ(format_flops_per_s(628.6e9), "628.6 GFLOP/s");
}
