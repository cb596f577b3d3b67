#pragma once

#include <string>
#include <vector>

// llama.cpp's RPC backend: remote ggml devices served by ggml-rpc-server (docs/scale-out.md).
namespace im::engine {

// True when this build has the RPC backend (-DGGML_RPC=ON; INFERMETER_RPC=1 ./scripts/build). Call after init().
bool rpc_supported();

// Registers each endpoint's devices with ggml's backend registry, the way llama.cpp's common/arg.cpp
// add_rpc_devices does, once per process: a later call with the same list does nothing. Each endpoint is
// probed first (TCP connect within 3 s, the RPC handshake within 5 s), because ggml aborts the process
// when it cannot connect and blocks while a server serves another client. Throws a usage error when
// the build has no RPC backend or a different list was registered already, a runtime error naming the
// endpoint when it does not answer. Not thread-safe; call before any model loads.
void add_rpc_servers(const std::vector<std::string> & endpoints);

// The probe alone: empty when `endpoint` ("host:port") answered the handshake, else why not (one line).
std::string probe_rpc_server(const std::string & endpoint, int connect_timeout_ms = 3000, int handshake_timeout_ms = 5000);

}  // namespace im::engine
