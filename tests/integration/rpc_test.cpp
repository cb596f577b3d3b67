// --rpc for real (issue 12): two ggml-rpc-server processes on 127.0.0.1 (CPU backends, free ports), bench
// and parallel across them, compared with the same run in-process (-t 1 on both sides: the servers run
// one thread each, and on a shared 2-core machine a polling 2-thread pool measures the neighbours); a dead endpoint and bad -ts/--rpc
// values fail cleanly. Skipped where build/bin/ggml-rpc-server was not built (INFERMETER_RPC=1 ./scripts/build).
#include "support/fault_server.h"
#include "support/run.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <chrono>
#include <cstdlib>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <netinet/in.h>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using nlohmann::json;

std::string rpc_server_bin() { return im::test::bin_path("ggml-rpc-server"); }

bool rpc_built() { return std::filesystem::exists(rpc_server_bin()); }

// A program started with its output appended to `log`, stopped by the destructor on every path (SIGTERM,
// then SIGKILL after 2 s). The three servers below are this with their own command and readiness check.
class child {
  public:
    child(const std::vector<std::string> & argv, const std::filesystem::path & log) {
        pid_ = fork();
        if (pid_ == 0) {
            const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
            std::vector<char *> args;
            for (const auto & a : argv) args.push_back(const_cast<char *>(a.c_str()));
            args.push_back(nullptr);
            execvp(args[0], args.data());
            _exit(127);
        }
    }
    ~child() { stop(); }
    child(const child &) = delete;
    child & operator=(const child &) = delete;

    // Polls `ready` every `poll` until it holds (true), the program exits or `limit` passes (false).
    bool wait_until(const std::function<bool()> & ready, std::chrono::milliseconds limit, std::chrono::milliseconds poll) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
            if (ready()) return true;
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return false;
            }
            std::this_thread::sleep_for(poll);
        }
        return false;
    }

    void stop() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        for (int i = 0; i < 40; ++i) {
            if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
    }

  private:
    pid_t pid_ = -1;
};

// One ggml-rpc-server on 127.0.0.1 (CPU backend, one thread); a new free port if the first was taken.
class rpc_server {
  public:
    explicit rpc_server(const std::filesystem::path & log) {
        for (int attempt = 0; attempt < 3 && !running(); ++attempt) {
            port_ = im::test::fault_server::unused_port();
            proc_.emplace(std::vector<std::string>{rpc_server_bin(), "-H", "127.0.0.1", "-p", std::to_string(port_), "-t", "1"},
                          log);
            const int port = port_;
            if (!proc_->wait_until([port] { return im::test::accepts_connections(port); }, std::chrono::seconds(30),
                                   std::chrono::milliseconds(50))) {
                proc_.reset();  // exited (the port was taken) or never listened: next attempt
            }
        }
    }
    bool running() const { return proc_.has_value(); }
    std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

  private:
    std::optional<child> proc_;
    int port_ = 0;
};

// bench/link_proxy on 127.0.0.1 in front of `to`: every byte `delay_ms` late each way, at most `rate_mbit`
// (0: no limit). The delay netem would add, for kernels without sch_netem.
class delay_link {
  public:
    delay_link(const std::string & to, double delay_ms, double rate_mbit, const std::filesystem::path & log)
        : port_(im::test::fault_server::unused_port()),
          proc_({im::test::bin_path("link_proxy"), "--listen", std::to_string(port_), "--to", to, "--delay-ms",
                 std::to_string(delay_ms), "--rate-mbit", std::to_string(rate_mbit)},
                log) {
        const int port = port_;
        up_ = proc_.wait_until([port] { return im::test::accepts_connections(port); }, std::chrono::seconds(10),
                               std::chrono::milliseconds(20));
    }
    bool up() const { return up_; }
    std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }

  private:
    int port_ = 0;
    child proc_;
    bool up_ = false;
};

json parse_rows(const im::test::run_result & r) {
    const auto j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json::array() : j;
}

// The row's value of `field` where `pick` holds.
double value_where(const json & rows, const std::string & field, const std::function<bool(const json &)> & pick) {
    for (const auto & row : rows) {
        if (pick(row)) return row.value(field, 0.0);
    }
    return 0;
}

}  // namespace

TEST(rpc, bench_and_parallel_across_two_servers_match_local_shape) {
    if (!rpc_built()) GTEST_SKIP() << "build/bin/ggml-rpc-server was not built (INFERMETER_RPC=1 ./scripts/build)";
    const auto dir = im::test::temp_dir("rpc");
    rpc_server a(dir / "rpc-a.log"), b(dir / "rpc-b.log");
    ASSERT_TRUE(a.running() && b.running()) << im::test::read_text(dir / "rpc-a.log") << im::test::read_text(dir / "rpc-b.log");
    const std::string rpc = a.endpoint() + "," + b.endpoint();
    const auto tiny = im::test::tiny_model().string();

    const std::vector<std::string> bench = {"bench", "-m", tiny, "-ngl", "99", "-p", "32", "-n", "16", "-r", "2", "-t", "1", "-o", "json",
                                         "--no-db"};
    auto with_rpc = bench;
    with_rpc.insert(with_rpc.end(), {"--rpc", rpc});
    const auto remote = im::test::run_infermeter(with_rpc);
    ASSERT_EQ(remote.exit_code, 0) << remote.err;
    const auto local = im::test::run_infermeter(bench);
    ASSERT_EQ(local.exit_code, 0) << local.err;
    const auto rrows = parse_rows(remote), lrows = parse_rows(local);
    ASSERT_EQ(rrows.size(), 2u) << remote.out;
    ASSERT_EQ(lrows.size(), 2u) << local.out;
    const auto pp = [](const json & r) { return r.value("n_prompt", 0) > 0; };
    const auto tg = [](const json & r) { return r.value("n_gen", 0) > 0; };
    for (const auto & row : rrows) {
        EXPECT_EQ(row.value("rpc", ""), rpc);
        const std::string devices = row.value("devices", "");
        EXPECT_NE(devices.find(a.endpoint()), std::string::npos) << devices;
        EXPECT_NE(devices.find(b.endpoint()), std::string::npos) << devices;
        EXPECT_GT(row.value("avg_ts", 0.0), 1.0) << row.dump();
        EXPECT_LT(row.value("avg_ts", 0.0), 1e7) << row.dump();
    }
    EXPECT_NE(remote.err.find("devices: RPC"), std::string::npos) << remote.err;
    const double pp_ratio = value_where(rrows, "avg_ts", pp) / value_where(lrows, "avg_ts", pp);
    const double tg_ratio = value_where(rrows, "avg_ts", tg) / value_where(lrows, "avg_ts", tg);
    std::printf("[ rpc ] bench synth:tiny pp32 local %.1f t/s, rpc %.1f t/s (x%.3f); tg16 local %.1f t/s, rpc %.1f t/s (x%.3f)\n",
                value_where(lrows, "avg_ts", pp), value_where(rrows, "avg_ts", pp), pp_ratio,
                value_where(lrows, "avg_ts", tg), value_where(rrows, "avg_ts", tg), tg_ratio);

    const std::vector<std::string> par = {"parallel", "-m", tiny, "-ngl", "99", "-w", "1,2", "-p", "16", "-n", "16", "-t", "1", "-o", "json",
                                       "--no-db"};
    auto par_rpc = par;
    par_rpc.insert(par_rpc.end(), {"--rpc", rpc});
    const auto premote = im::test::run_infermeter(par_rpc);
    ASSERT_EQ(premote.exit_code, 0) << premote.err;
    const auto plocal = im::test::run_infermeter(par);
    ASSERT_EQ(plocal.exit_code, 0) << plocal.err;
    const auto prows = parse_rows(premote), plrows = parse_rows(plocal);
    ASSERT_EQ(prows.size(), 2u) << premote.out;
    ASSERT_EQ(plrows.size(), 2u) << plocal.out;
    for (const auto & row : prows) {
        EXPECT_NE(row.value("devices", "").find(a.endpoint()), std::string::npos) << row.dump();
        EXPECT_GT(row.value("gen_tps", 0.0), 1.0) << row.dump();
        EXPECT_GT(row.value("prompt_tps", 0.0), 1.0) << row.dump();
        EXPECT_EQ(row.value("kv_bytes", int64_t{0}), row.value("kv_bytes_allocated", int64_t{-1})) << row.dump();
    }
    for (int w : {1, 2}) {
        const auto at = [w](const json & r) { return r.value("workers", 0) == w; };
        std::printf("[ rpc ] parallel W=%d gen local %.1f t/s, rpc %.1f t/s (x%.3f)\n", w, value_where(plrows, "gen_tps", at),
                    value_where(prows, "gen_tps", at), value_where(prows, "gen_tps", at) / value_where(plrows, "gen_tps", at));
    }

    // model info: which device holds which layers, and a -ts that puts every layer on the second server.
    const auto info = im::test::run_infermeter({"model", "info", tiny, "--json", "--rpc", rpc, "-ts", "0/1"});
    ASSERT_EQ(info.exit_code, 0) << info.err;
    const auto ij = json::parse(info.out);
    ASSERT_TRUE(ij.contains("devices")) << info.out;
    bool second_holds_all = false;
    for (const auto & d : ij["devices"]) {
        if (d["description"] == b.endpoint()) second_holds_all = d["layers"].size() == ij["n_layer"].get<size_t>() && d["output"];
        if (d["description"] == a.endpoint()) EXPECT_TRUE(d["layers"].empty()) << d.dump();
    }
    EXPECT_TRUE(second_holds_all) << info.out;
}

TEST(rpc, dead_endpoint_is_a_runtime_error_naming_it) {
    if (!rpc_built()) GTEST_SKIP() << "build/bin/ggml-rpc-server was not built (INFERMETER_RPC=1 ./scripts/build)";
    const std::string dead = "127.0.0.1:" + std::to_string(im::test::fault_server::unused_port());
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = im::test::run_infermeter({"bench", "-m", im::test::tiny_model().string(), "-p", "32", "-n", "0", "-r", "1",
                                             "--rpc", dead, "--no-db"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_NE(r.err.find(dead), std::string::npos) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
}

TEST(rpc, bad_ts_and_rpc_values_are_usage_errors) {
    const auto tiny = im::test::tiny_model().string();
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"-ts", "a/1"}, "-ts"},          {{"-ts", "-1/1"}, "-ts"},          {{"-ts", "0/0"}, "-ts"},
        {{"-ts", "nan"}, "-ts"},          {{"--tensor-split", "1/1/1/1/1/1/1/1/1/1/1/1/1/1/1/1/1"}, "-ts"},
        {{"--rpc", "nohost"}, "--rpc"},   {{"--rpc", "127.0.0.1:0"}, "--rpc"}, {{"-rpc", "127.0.0.1:70000"}, "--rpc"},
        {{"--rpc", "a:1,a:1"}, "--rpc"},
    };
    for (const auto & [flags, needle] : cases) {
        for (const char * cmd : {"bench", "parallel"}) {
            std::vector<std::string> args = {cmd, "-m", tiny, "--no-db"};
            args.insert(args.end(), flags.begin(), flags.end());
            const auto r = im::test::run_infermeter(args);
            EXPECT_EQ(r.exit_code, 2) << cmd << " " << flags.back() << ": " << r.err;
            EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
        }
    }
}

namespace {

int sh(const std::string & cmd) {
    const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// A network namespace joined to this one by a veth pair whose both ends shape traffic with netem (delay
// each way, rate limit): a separate host on a realistic link. Removed by the destructor.
class emulated_host {
  public:
    emulated_host(const std::string & delay, const std::string & rate) {
        const int id = static_cast<int>(getpid() % 200) + 20;
        ns_ = "imrpc" + std::to_string(getpid());
        host_if_ = "imh" + std::to_string(getpid());
        ns_if_ = "imn" + std::to_string(getpid());
        host_ip_ = "10.213." + std::to_string(id) + ".1";
        ns_ip_ = "10.213." + std::to_string(id) + ".2";
        if (sh("ip netns add " + ns_) != 0) {
            why_ = "`ip netns add` failed (no permission, or no iproute2: apt-get install iproute2)";
            ns_.clear();
            return;
        }
        const std::string in = "ip netns exec " + ns_ + " ";
        // netem adds the delay and the rate limit; a kernel without sch_netem (this project's 2-core VM)
        // still has tbf: the rate limit alone, and the test says so.
        const std::vector<std::string> steps = {
            "ip link add " + host_if_ + " type veth peer name " + ns_if_,
            "ip link set " + ns_if_ + " netns " + ns_,
            "ip addr add " + host_ip_ + "/30 dev " + host_if_,
            "ip link set " + host_if_ + " up",
            in + "ip addr add " + ns_ip_ + "/30 dev " + ns_if_,
            in + "ip link set " + ns_if_ + " up",
            in + "ip link set lo up",
        };
        for (const auto & s : steps) {
            if (sh(s) != 0) {
                why_ = "`" + s + "` failed";
                return;
            }
        }
        std::string shape = " root netem delay " + delay + " rate " + rate;
        if (sh("tc qdisc add dev " + host_if_ + shape) != 0) {
            shape = " root tbf rate " + rate + " burst 256kb latency 50ms";
            delay_emulated_ = false;
            if (sh("tc qdisc add dev " + host_if_ + shape) != 0) {
                why_ = "neither netem nor tbf qdiscs are available";
                return;
            }
        }
        if (sh(in + "tc qdisc add dev " + ns_if_ + shape) != 0) {
            why_ = "`tc qdisc add dev " + ns_if_ + shape + "` failed in the namespace";
            return;
        }
        ok_ = true;
    }
    ~emulated_host() {
        if (!host_if_.empty()) sh("ip link del " + host_if_);  // removes the peer too
        if (!ns_.empty()) sh("ip netns del " + ns_);
    }
    emulated_host(const emulated_host &) = delete;
    emulated_host & operator=(const emulated_host &) = delete;

    bool ok() const { return ok_; }
    bool delay_emulated() const { return delay_emulated_; }
    const std::string & why() const { return why_; }
    const std::string & ns() const { return ns_; }
    const std::string & ip() const { return ns_ip_; }

  private:
    std::string ns_, host_if_, ns_if_, host_ip_, ns_ip_, why_;
    bool ok_ = false;
    bool delay_emulated_ = true;
};

// ggml-rpc-server inside a namespace, on its veth address (`ip netns exec` execs the server in place:
// the child's pid is the server's).
class ns_rpc_server {
  public:
    ns_rpc_server(const emulated_host & h, int port, const std::filesystem::path & log)
        : endpoint_(h.ip() + ":" + std::to_string(port)),
          proc_({"ip", "netns", "exec", h.ns(), rpc_server_bin(), "-H", h.ip(), "-p", std::to_string(port), "-t", "1"}, log) {
        const std::string listening = "ip netns exec " + h.ns() + " sh -c 'ss -ltn | grep -q " + endpoint_ + "'";
        up_ = proc_.wait_until([&] { return sh(listening) == 0; }, std::chrono::seconds(30), std::chrono::milliseconds(100));
    }
    bool up() const { return up_; }
    const std::string & endpoint() const { return endpoint_; }

  private:
    std::string endpoint_;
    child proc_;
    bool up_ = false;
};

// tg16 of synth:tiny with every layer on the ggml-rpc-server at `endpoint` (one thread each side).
double tg16_over(const std::string & endpoint) {
    const auto r = im::test::run_infermeter({"bench", "-m", im::test::tiny_model().string(), "-ngl", "99", "-p", "0", "-n",
                                             "16", "-r", "2", "-t", "1", "--rpc", endpoint, "-o", "json", "--no-db"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return value_where(parse_rows(r), "avg_ts", [](const json &) { return true; });
}

}  // namespace

// One decode step over RPC is several request/response round trips (set the inputs, compute the graph,
// read the logits back), so 1 ms each way must add at least 2 ms to every generated token, and bench must
// see it. The link is bench/link_proxy on loopback (portable: no namespaces, no netem).
TEST(rpc, a_link_delay_adds_its_round_trips_to_every_token) {
    if (!rpc_built()) GTEST_SKIP() << "build/bin/ggml-rpc-server was not built (INFERMETER_RPC=1 ./scripts/build)";
    const auto dir = im::test::temp_dir("rpc-delay");
    rpc_server server(dir / "server.log");
    ASSERT_TRUE(server.running());
    const double tg_direct = tg16_over(server.endpoint());
    delay_link link(server.endpoint(), 1.0, 0, dir / "link.log");
    ASSERT_TRUE(link.up()) << im::test::read_text(dir / "link.log");
    const double tg_delayed = tg16_over(link.endpoint());
    ASSERT_GT(tg_direct, 0);
    ASSERT_GT(tg_delayed, 0);
    const double added_ms = 1e3 / tg_delayed - 1e3 / tg_direct;
    std::printf("[ rpc ] tg16 synth:tiny: loopback %.1f t/s, through a 1 ms link %.1f t/s: +%.2f ms a token = %.1f round trips\n",
                tg_direct, tg_delayed, added_ms, added_ms / 2.0);
    EXPECT_GE(added_ms, 2.0 * 0.9) << "a 1 ms link must cost at least one 2 ms round trip per token";
    EXPECT_LT(added_ms, 2.0 * 40) << "more round trips per token than a decode step makes: the link or bench is wrong";
}

// tg over emulated links (1 Gb/s with 1 ms each way; 10 Gb/s with 0.2 ms) against the same server
// on loopback: the per-token round trips of RPC show up as the latency added to each decode step.
TEST(rpc, token_generation_over_emulated_links) {
    if (!rpc_built()) GTEST_SKIP() << "build/bin/ggml-rpc-server was not built (INFERMETER_RPC=1 ./scripts/build)";
    if (sh("command -v ip") != 0 || sh("command -v tc") != 0) GTEST_SKIP() << "no ip/tc (apt-get install iproute2)";
    if (getenv("INFERMETER_SKIP_NETNS")) GTEST_SKIP() << "INFERMETER_SKIP_NETNS is set";
    const auto dir = im::test::temp_dir("rpc-netns");
    rpc_server loop(dir / "loopback.log");
    ASSERT_TRUE(loop.running());
    const double tg_loopback = tg16_over(loop.endpoint());
    EXPECT_GT(tg_loopback, 1.0);
    for (const auto & [delay, rate] : std::vector<std::pair<std::string, std::string>>{{"0.2ms", "10gbit"}, {"1ms", "1gbit"}}) {
        emulated_host host(delay, rate);
        if (!host.ok()) GTEST_SKIP() << "network namespaces are not available here: " << host.why();
        ns_rpc_server server(host, 50052, dir / ("ns-" + rate + ".log"));
        ASSERT_TRUE(server.up()) << im::test::read_text(dir / ("ns-" + rate + ".log"));
        // Without netem the delay comes from bench/link_proxy in front of the veth (tbf keeps the rate).
        std::optional<delay_link> link;
        if (!host.delay_emulated()) {
            link.emplace(server.endpoint(), std::stod(delay), 0, dir / ("link-" + rate + ".log"));
            ASSERT_TRUE(link->up()) << im::test::read_text(dir / ("link-" + rate + ".log"));
        }
        const double tg = tg16_over(link ? link->endpoint() : server.endpoint());
        EXPECT_GT(tg, 0.5);
        if (delay == "1ms") EXPECT_LT(tg, tg_loopback) << "a link with 1 ms each way must slow token generation";
        std::printf("[ rpc ] tg16 synth:tiny, one rpc server: loopback %.1f t/s, veth %s with %s each way (%s) %.1f t/s (x%.3f)\n",
                    tg_loopback, rate.c_str(), delay.c_str(), host.delay_emulated() ? "netem" : "tbf rate + link_proxy delay",
                    tg, tg / tg_loopback);
    }
}

namespace {

// The cells of the Markdown table row whose first cell is `first`, from the split section; empty when absent.
std::vector<std::string> md_row(const std::string & text, const std::string & first) {
    size_t at = text.find("## Split Analysis");
    if (at == std::string::npos) return {};
    while ((at = text.find("\n| " + first + " |", at)) != std::string::npos) {
        const size_t end = text.find('\n', at + 1);
        const std::string line = text.substr(at + 2, end - at - 2);
        std::vector<std::string> cells;
        size_t p = 1;
        while (p < line.size()) {
            const size_t q = line.find('|', p);
            if (q == std::string::npos) break;
            std::string c = line.substr(p, q - p);
            c.erase(0, c.find_first_not_of(' '));
            c.erase(c.find_last_not_of(' ') + 1);
            cells.push_back(c);
            p = q + 1;
        }
        return cells;
    }
    return {};
}

double number(std::string s) {
    std::erase(s, ',');
    return s.empty() ? -1 : std::atof(s.c_str());
}

struct split_run {
    double rtt_ms = -1;       // the probed RTT of RPC0
    double tg_step_ms = -1;   // one tg16 step
    double tg_transfer_ms = -1;
    double tg_bytes_kib = -1;
    std::string out;
};

split_run bench_split(const std::string & endpoint) {
    const auto r = im::test::run_infermeter({"bench", "-m", im::test::tiny_model().string(), "-ngl", "99", "-p", "16", "-n",
                                             "16", "-r", "2", "-t", "1", "--rpc", endpoint, "--no-db"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    split_run s;
    s.out = r.out;
    const auto link = md_row(r.out, "host <-> RPC0");
    if (link.size() >= 2) s.rtt_ms = number(link[1]);
    const auto tg = md_row(r.out, "tg16");
    if (tg.size() >= 5) {
        s.tg_step_ms = number(tg[1]);
        s.tg_bytes_kib = number(tg[2]);  // "596.5 KiB"
        s.tg_transfer_ms = number(tg[4]);
    }
    return s;
}

}  // namespace

// The split analysis (issue 12): bench over one RPC server prints what crosses per step (synth:tiny, 256
// hidden, 151,936 logits: 1 KiB up, 593.5 KiB of logits down per token) with a probed RTT; behind a link
// that delays 1 ms each way the probed RTT is >= 2 ms and the attributed transfer of a token grows by at
// least the one round trip that reading the logits back costs. model info --json carries the same plan.
TEST(rpc, split_analysis_probes_the_link_and_attributes_the_step) {
    if (!rpc_built()) GTEST_SKIP() << "build/bin/ggml-rpc-server was not built (INFERMETER_RPC=1 ./scripts/build)";
    const auto dir = im::test::temp_dir("rpc-split");
    rpc_server server(dir / "server.log");
    ASSERT_TRUE(server.running());

    const auto info = im::test::run_infermeter({"model", "info", im::test::tiny_model().string(), "--json", "--rpc", server.endpoint()});
    ASSERT_EQ(info.exit_code, 0) << info.err;
    const auto ij = json::parse(info.out);
    ASSERT_TRUE(ij.contains("split")) << info.out;
    const double per_token = (ij["n_embd"].get<double>() + ij["n_vocab"].get<double>()) * 4;
    EXPECT_DOUBLE_EQ(ij["split"]["decode_bytes_per_token"].get<double>(), per_token) << ij["split"].dump();
    EXPECT_EQ(ij["split"]["decode_round_trips_per_step"], 1) << ij["split"].dump();
    ASSERT_EQ(ij["split"]["links"].size(), 1u);
    EXPECT_GT(ij["split"]["links"][0]["rtt_s"].get<double>(), 0);
    EXPECT_GT(ij["split"]["links"][0]["down_bytes_per_s"].get<double>(), 1e6);

    const auto direct = bench_split(server.endpoint());
    ASSERT_NE(direct.out.find("## Split Analysis"), std::string::npos) << direct.out;
    EXPECT_GT(direct.rtt_ms, 0) << direct.out;
    EXPECT_LT(direct.rtt_ms, 2.0) << direct.out;
    EXPECT_NEAR(direct.tg_bytes_kib, per_token / 1024, 0.1) << direct.out;
    EXPECT_GT(direct.tg_transfer_ms, 0) << direct.out;
    EXPECT_LT(direct.tg_transfer_ms, direct.tg_step_ms) << direct.out;

    delay_link link(server.endpoint(), 1.0, 0, dir / "link.log");
    ASSERT_TRUE(link.up()) << im::test::read_text(dir / "link.log");
    const auto delayed = bench_split(link.endpoint());
    std::printf("[ rpc ] split: RTT loopback %.3f ms, 1 ms link %.3f ms; tg16 step %.2f -> %.2f ms, transfer %.3f -> %.3f ms\n",
                direct.rtt_ms, delayed.rtt_ms, direct.tg_step_ms, delayed.tg_step_ms, direct.tg_transfer_ms, delayed.tg_transfer_ms);
    EXPECT_GE(delayed.rtt_ms, 2.0) << delayed.out;
    EXPECT_LT(delayed.rtt_ms, 20.0) << delayed.out;
    EXPECT_GE(delayed.tg_transfer_ms, direct.tg_transfer_ms + 2.0 * 0.95) << delayed.out;
    EXPECT_LT(delayed.tg_transfer_ms, delayed.tg_step_ms) << delayed.out;
}

// A CPU-only run without --rpc has nothing crossing devices: no probe, no section.
TEST(rpc, split_analysis_absent_on_one_device) {
    const auto r = im::test::run_infermeter({"bench", "-m", im::test::tiny_model().string(), "-ngl", "0", "-p", "16", "-n", "0",
                                             "-r", "1", "-t", "1", "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find("Split Analysis"), std::string::npos) << r.out;
}

// evaluate over --rpc: the split analysis is a section of the report, and the roofline, whose probes would
// send GiB-sized tensors to the servers (over five minutes on loopback), is not run but says why.
TEST(rpc, evaluate_reports_the_split_and_says_why_there_is_no_roofline) {
    if (!rpc_built()) GTEST_SKIP() << "build/bin/ggml-rpc-server was not built (INFERMETER_RPC=1 ./scripts/build)";
    const auto dir = im::test::temp_dir("rpc-evaluate");
    rpc_server server(dir / "server.log");
    ASSERT_TRUE(server.running());
    const auto out = dir / "report";
    const auto r = im::test::run_infermeter({"evaluate", "-m", im::test::tiny_model().string(), "--rpc", server.endpoint(),
                                             "-ngl", "99", "-t", "1", "--profile", "quick", "--no-serving", "-w", "1", "-p", "16",
                                             "-n", "8", "--out", out.string(), "--no-db"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.err.find("roofline: the model runs on RPC servers"), std::string::npos) << r.err;
    const auto md = im::test::read_text(out / "report.md");
    EXPECT_NE(md.find("Not run: the model runs on RPC servers (--rpc)"), std::string::npos) << md;
    EXPECT_NE(md.find("Split Analysis"), std::string::npos) << md;
    const auto j = json::parse(im::test::read_text(out / "report.json"));
    EXPECT_TRUE(j["roofline"].is_null());
    EXPECT_NE(j.value("roofline_note", "").find("--device-spec"), std::string::npos) << j.dump().substr(0, 400);
    EXPECT_TRUE(j.contains("split"));
    EXPECT_NE(im::test::read_text(out / "report.html").find("Not run: the model runs on RPC servers"), std::string::npos);
}
