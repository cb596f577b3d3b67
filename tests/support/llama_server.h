#pragma once

#include "cli/server_launch.h"
#include "core/error.h"
#include "support/run.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace im::test {

// llama-server from the same build, through the launcher `serve --launch-server` uses (its own
// process group, stopped by the destructor: SIGTERM, then SIGKILL after 10 s).
class llama_server {
  public:
    explicit llama_server(std::vector<std::string> args) : args_(std::move(args)) {}

    // Starts it and waits for /health to answer 200; false (the reason in log_text) after `limit_s`
    // or if the process died.
    bool wait_ready(double limit_s) {
        try {
            server_.emplace(im::cli::launch_options{bin_path("llama-server"), args_, limit_s});
            return true;
        } catch (const im::error & e) {
            why_ = e.what();
            return false;
        }
    }
    void stop() {
        if (server_) server_->stop();
    }
    std::string base() const { return server_ ? server_->url() : ""; }
    std::string log_text() const { return server_ ? server_->log_tail() : why_; }

  private:
    std::vector<std::string> args_;
    std::optional<im::cli::launched_server> server_;
    std::string why_;
};

}  // namespace im::test
