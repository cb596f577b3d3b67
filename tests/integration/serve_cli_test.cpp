// `infermeter serve` end to end against the fault server (in this process) and the real binary.
#include "support/fault_server.h"
#include "support/run.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <utility>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>

using im::test::fault_server;
using im::test::run_infermeter;

TEST(serve_cli, well_behaved_and_failing_endpoints_round_robin) {
    fault_server srv;
    const auto dir = im::test::temp_dir("serve-cli");
    const auto json = (dir / "serve.json").string();
    setenv("IM_SERVE_TEST_KEY", "sk-secret-serve-test", 1);
    const auto r = run_infermeter({"serve", "--url", srv.url("ok") + "," + srv.url("cut"), "--concurrency", "2",
                                   "--requests", "8", "-n", "6", "--api-key-env", "IM_SERVE_TEST_KEY", "--export", json,
                                   "--no-db"});
    unsetenv("IM_SERVE_TEST_KEY");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("| C=2 | 4 / 4 |"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("cut_stream=4"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("### Client self-check"), std::string::npos);
    EXPECT_NE(r.out.find("### Per endpoint"), std::string::npos);
    EXPECT_NE(r.out.find("`faultserver:requests_total` | 8"), std::string::npos) << r.out;
    std::ifstream f(json);
    std::stringstream ss;
    ss << f.rdbuf();
    EXPECT_NE(ss.str().find("\"serve\""), std::string::npos) << ss.str().substr(0, 400);
    for (const std::string * s : {&r.out, &r.err}) EXPECT_EQ(s->find("sk-secret"), std::string::npos);
    EXPECT_EQ(ss.str().find("sk-secret"), std::string::npos);
}

TEST(serve_cli, refused_server_is_counted_not_fatal) {
    const auto r = run_infermeter({"serve", "--url", "http://127.0.0.1:" + std::to_string(fault_server::unused_port()),
                                   "--concurrency", "1", "--requests", "3", "-n", "4", "--metrics-url", "none", "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("refused=3"), std::string::npos) << r.out;
}

TEST(serve_cli, usage_errors) {
    auto r = run_infermeter({"serve", "--concurrency", "1"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--url"), std::string::npos) << r.err;
    r = run_infermeter({"serve", "--url", "ftp://x", "--no-db"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--url 'ftp://x'"), std::string::npos) << r.err;
    unsetenv("IM_SERVE_NO_SUCH_KEY");
    r = run_infermeter({"serve", "--url", "http://127.0.0.1:1", "--api-key-env", "IM_SERVE_NO_SUCH_KEY", "--no-db"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("--api-key-env IM_SERVE_NO_SUCH_KEY"), std::string::npos) << r.err;
    r = run_infermeter({"serve", "--url", "http://127.0.0.1:1", "--token-prompts", "--no-db"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("-m MODEL or --vocab"), std::string::npos) << r.err;
}

// Issue 16 defect 1 for serve: --export and --trace onto character devices of the test's own (a
// mknod'd copy of /dev/null in a temp folder) are written through, in both JSON flavours; the nodes
// stay devices.
TEST(serve_cli, export_and_trace_write_through_a_device_node) {
    fault_server srv;
    const auto dir = im::test::temp_dir("serve-node");
    const auto trace = dir / "null", native = dir / "null.json", vllm = dir / "vllm.json";
    if (::mknod(trace.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) GTEST_SKIP() << "mknod needs root";
    for (const auto & p : {native, vllm}) ASSERT_EQ(::mknod(p.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
    for (const auto & [path, format] : {std::pair{native, "native"}, std::pair{vllm, "vllm"}}) {
        const auto r = run_infermeter({"serve", "--url", srv.url("ok"), "--concurrency", "2", "--requests", "4", "-n", "4",
                                       "--trace", trace.string(), "--export", path.string(), "--format", format, "--no-db"});
        ASSERT_EQ(r.exit_code, 0) << format << ": " << r.err;
    }
    for (const auto & p : {trace, native, vllm}) {
        struct stat st {};
        ASSERT_EQ(::lstat(p.c_str(), &st), 0);
        EXPECT_TRUE(S_ISCHR(st.st_mode)) << p << " was replaced by a regular file";
    }
    std::filesystem::remove_all(dir);
}
