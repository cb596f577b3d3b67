#pragma once

#include <filesystem>
#include <string>
#include <vector>

// Helpers for tests that run the real infermeter binary.
namespace im::test {

struct run_result {
    int exit_code = -1;
    std::string out;  // stdout
    std::string err;  // stderr
};

// Runs build/bin/infermeter (INFERMETER_BIN) with `args`; captures both streams and the exit code.
run_result run_infermeter(const std::vector<std::string> & args, const std::string & stdin_text = "");
// Runs any program by path.
run_result run_program(const std::string & program, const std::vector<std::string> & args,
                       const std::string & stdin_text = "");

// $INFERMETER_BIN_DIR/<name> (llama-bench, llama-server, ...).
std::string bin_path(const std::string & name);
// A file under tests/data.
std::filesystem::path data_path(const std::string & name);
// The whole file as bytes; empty when it cannot be read (tests poll files a child is still writing).
std::string read_text(const std::filesystem::path & path);
// A fresh empty directory for one test.
std::filesystem::path temp_dir(const std::string & tag);
// The synthesized tiny model (created once per test cache).
std::filesystem::path tiny_model();
// True when something accepts TCP connections on 127.0.0.1:port.
bool accepts_connections(int port);

}  // namespace im::test
