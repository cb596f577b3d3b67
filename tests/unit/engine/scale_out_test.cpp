// -ts and --rpc parsing, the RPC probe, and the per-device placement read from llama.cpp's log (issue 12).
#include "cli/engine_flags.h"
#include "core/error.h"
#include "engine/llama/session.h"
#include "engine/rpc.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace im;

namespace {

void expect_usage(const std::function<void()> & f, const std::string & needle) {
    try {
        f();
        ADD_FAILURE() << "no error; expected one mentioning " << needle;
    } catch (const im::error & e) {
        EXPECT_EQ(e.kind(), error_kind::usage) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(tensor_split, forms_llama_bench_and_llama_server_take) {
    using v = std::vector<std::vector<float>>;
    EXPECT_EQ(cli::parse_tensor_split(""), (v{{}}));
    EXPECT_EQ(cli::parse_tensor_split("0"), (v{{}}));  // llama-bench's default spelling
    EXPECT_EQ(cli::parse_tensor_split("3/1"), (v{{3, 1}}));
    EXPECT_EQ(cli::parse_tensor_split("3;1"), (v{{3, 1}}));
    EXPECT_EQ(cli::parse_tensor_split("3,1"), (v{{3, 1}}));  // llama-server's form: one split
    EXPECT_EQ(cli::parse_tensor_split("3/1,1/1"), (v{{3, 1}, {1, 1}}));  // llama-bench's sweep
    EXPECT_EQ(cli::parse_tensor_split("0.75/0.25/0"), (v{{0.75f, 0.25f, 0}}));
    EXPECT_EQ(engine::llama::tensor_split_name({3, 1}), "3/1");
    EXPECT_EQ(engine::llama::tensor_split_name({0.75f, 0.25f}), "0.75/0.25");
    EXPECT_EQ(engine::llama::tensor_split_name({}), "0");
}

TEST(tensor_split, bad_values_are_usage_errors_naming_the_flag) {
    for (const char * bad : {"abc", "3/x", "-1/1", "nan/1", "inf/1", "0/0", "1e99/1", "/"}) {
        expect_usage([&] { cli::parse_tensor_split(bad); }, "-ts");
    }
    std::string many;
    for (size_t i = 0; i <= llama_max_devices(); ++i) many += (many.empty() ? "" : "/") + std::string("1");
    expect_usage([&] { cli::parse_tensor_split(many); }, "at most");
}

TEST(tensor_split, flows_into_every_configuration_and_one_value_commands_explain_the_comma) {
    cli::engine_flags f;
    f.tensor_split = "3/1,1/1";
    f.rpc = "127.0.0.1:50052";
    const auto all = cli::expand(f);
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].tensor_split, (std::vector<float>{3, 1}));
    EXPECT_EQ(all[1].tensor_split, (std::vector<float>{1, 1}));
    EXPECT_EQ(all[0].rpc, (std::vector<std::string>{"127.0.0.1:50052"}));
    EXPECT_FALSE(engine::llama::model::same_load(all[0], all[1]));
    expect_usage([&] { cli::single(f, "parallel"); }, "write one split as 3/1");
}

TEST(rpc_flag, endpoints_are_checked_up_front) {
    EXPECT_EQ(cli::parse_rpc_endpoints("127.0.0.1:50052, host-b:1"),
              (std::vector<std::string>{"127.0.0.1:50052", "host-b:1"}));
    EXPECT_TRUE(cli::parse_rpc_endpoints("").empty());
    for (const char * bad : {"nohost", ":50052", "h:", "h:0", "h:65536", "h:12x", "::1:5000", "[::1]:5000",
                             "a:1,a:1", "h:-1", ","}) {
        expect_usage([&] { cli::parse_rpc_endpoints(bad); }, "--rpc");
    }
    std::string many;
    for (int i = 0; i < 17; ++i) many += (many.empty() ? "" : ",") + std::string("h:") + std::to_string(1000 + i);
    expect_usage([&] { cli::parse_rpc_endpoints(many); }, "at most 16");
}

TEST(rpc_probe, refused_and_silent_endpoints_are_named_not_hung) {
    // Refused: a port bound and closed again.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len);
    const int port = ntohs(addr.sin_port);
    close(fd);
    EXPECT_NE(engine::probe_rpc_server("127.0.0.1:" + std::to_string(port), 1000, 1000).find("cannot connect"),
              std::string::npos);
    // Silent: listens (the kernel accepts) but never answers the handshake.
    fd = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_port = 0;
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(fd, 4), 0);
    getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len);
    const auto t0 = std::chrono::steady_clock::now();
    const std::string why = engine::probe_rpc_server("127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), 1000, 300);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
    EXPECT_NE(why.find("no answer to the RPC handshake"), std::string::npos) << why;
    close(fd);
}

TEST(placement_log, layers_and_buffers_per_device) {
    // Lines as llama.cpp 80fb11a logs them (two RPC servers, -ngl 99, a 2-layer model).
    const std::vector<std::string> lines = {
        "llama_prepare_model_devices: using device RPC0 (127.0.0.1:50052) (unknown id) - 20000 MiB free",
        "llama_prepare_model_devices: using device RPC1 (127.0.0.1:50053) (unknown id) - 20000 MiB free",
        "load_tensors: layer   0 assigned to device RPC0, is_swa = 0",
        "load_tensors: layer   1 assigned to device RPC1, is_swa = 0",
        "load_tensors: layer   2 assigned to device RPC1, is_swa = 0",
        "load_tensors: RPC0[127.0.0.1:50052] model buffer size =     1.50 MiB",
        "load_tensors: RPC1[127.0.0.1:50053] model buffer size =    20.25 MiB",
        "load_tensors:   CPU_Mapped model buffer size =    19.00 MiB",
    };
    const auto buffer_device = [](const std::string & b) {
        if (b.rfind("RPC0", 0) == 0) return std::string("RPC0");
        if (b.rfind("RPC1", 0) == 0) return std::string("RPC1");
        return std::string("CPU");
    };
    auto rows = engine::llama::parse_placement_log(lines, 2, buffer_device);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].name, "RPC0");
    EXPECT_EQ(rows[0].layers, (std::vector<int>{0}));
    EXPECT_FALSE(rows[0].output);
    EXPECT_EQ(rows[0].model_bytes, 1572864u);
    EXPECT_EQ(rows[1].name, "RPC1");
    EXPECT_EQ(rows[1].layers, (std::vector<int>{1}));
    EXPECT_TRUE(rows[1].output);
    EXPECT_EQ(rows[2].name, "CPU");
    EXPECT_TRUE(rows[2].input);
    rows[0].description = "127.0.0.1:50052";
    rows[0].type = "rpc";
    EXPECT_EQ(engine::llama::describe_devices(rows),
              "RPC0 (127.0.0.1:50052): layer 0, 1.5 MiB weights; RPC1: layer 1 + output, 20.2 MiB weights; "
              "CPU: input, 19.0 MiB weights");
    EXPECT_EQ(engine::llama::layer_ranges({0, 1, 2, 5, 7, 8}), "0-2, 5, 7-8");
}

TEST(placement_log, kv_and_compute_buffers_per_device) {
    engine::llama::allocation a;
    engine::llama::parse_allocation_log(
        {"llama_kv_cache: RPC0[127.0.0.1:50052] KV buffer size =     4.00 MiB",
         "llama_kv_cache: RPC1[127.0.0.1:50053] KV buffer size =     4.00 MiB",
         "llama_kv_cache: size =    8.00 MiB (  4096 cells,   2 layers,  1/1 seqs), K (f16):    4.00 MiB, V (f16):    4.00 MiB",
         "sched_reserve: RPC0[127.0.0.1:50052] compute buffer size =     2.50 MiB",
         "sched_reserve:        CPU compute buffer size =     1.00 MiB"},
        a);
    EXPECT_EQ(a.kv_bytes, 8u << 20);
    ASSERT_EQ(a.kv_by_buffer.size(), 2u);
    EXPECT_EQ(a.kv_by_buffer[1].first, "RPC1[127.0.0.1:50053]");
    EXPECT_EQ(a.compute_bytes, (7u << 19));
    ASSERT_EQ(a.compute_by_buffer.size(), 2u);
    EXPECT_EQ(a.compute_by_buffer[1].first, "CPU");
}
