#pragma once

#include "tune/search.h"

#include "llama.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

// The evaluator of `infermeter tune --workload serve` (issue 11): a candidate is a set of llama-server
// flags that change speed but not results; each probe launches the server with them (-np = the tuned
// concurrency C), runs a short closed loop of fixed requests through the HTTP client (greedy,
// temperature 0, fixed seed and prompts), and stops it. Score: aggregate output t/s; p50 TTFT and TPOT
// beside it. HTTP cannot teacher-force, so the output check compares each probe request's streamed text
// with the baseline's reference answer to the same request up to the first divergence, judged by the
// baseline's own top-2 probabilities there (llama-server's n_probs). docs/tune.md has the definitions.
namespace im::tune {

// The baseline's greedy answer to one probe request, token by token (llama-server /completion with
// "n_probs": 2: the probabilities before sampling, i.e. the softmax of the logits).
struct reference_token {
    std::string piece;      // the token's bytes
    double p1 = 0, p2 = 0;  // the baseline's top-2 probabilities here (p1: the token it chose)
};
using reference_answer = std::vector<reference_token>;

// Where a streamed answer first leaves its reference.
struct divergence {
    bool diverged = false;
    size_t byte = 0;        // first byte that differs (or the shorter text's length)
    int token = -1;         // the reference token judged (-1: no divergence)
    bool near_tie = false;  // the baseline's p1 - p2 there is below the tie margin
    double gap = 0;         // that p1 - p2 (the smaller of the two positions judged at a token boundary)
};

// The first divergence of `text` from `ref`. The reference token holding the first differing byte is
// judged; when that byte starts a token, the candidate may have taken a longer token just before it
// ("there" for "the" + "re"), so the previous token is judged too and a near tie at either is a tie.
// A text that is a strict prefix of the reference, or extends it, diverges where the shorter one ends.
divergence first_divergence(const reference_answer & ref, std::string_view text, double tie_margin);

// Every answer against its reference (same index): same when none diverges or every divergence is a
// near tie. n_rows = answers, n_flips = answers that diverged, n_near_ties = those at near ties.
output_check compare_answers(const std::vector<reference_answer> & ref, const std::vector<std::string> & texts,
                             double tie_margin);

// The share of the reference's tokens that are near ties themselves (p1 - p2 < margin): close to 1 on a
// random-weight model, whose distributions are near-flat; there the tie rule, not the text, decides.
double near_tie_share(const std::vector<reference_answer> & ref, double tie_margin);

// Parses a non-streamed /completion answer with n_probs >= 2 (completion_probabilities, each with
// top_logprobs or top_probs). Throws im::error (runtime) when it has no such list.
reference_answer parse_reference(std::string_view completion_json);

struct serve_config {
    std::filesystem::path model_path;
    std::vector<std::string> fixed_args;  // flags the search leaves alone (-ngl, -ctk, ..., --server-arg)
    // The baseline (the user's flags; llama-server's defaults otherwise).
    std::string flash_attn = "auto";
    int n_batch = 2048, n_ubatch = 512;
    int n_threads = 0;  // 0: llama-server's default (physical cores)
    bool backend_sampling = false, kv_unified = false;
    bool offloaded = false;  // layers on a GPU: -t and --threads-http are not searched
    int concurrency = 8;     // C: closed-loop users and the server's -np
    int n_prompt = 128, n_predict = 64;
    int requests_per_user = 3;  // the first request of each user is warmup
    double tie_margin = 0.03;   // p1 - p2 below this at a divergence: a near tie (docs/tune.md)
    uint64_t seed = 1;          // prompts and the requests' "seed"
    double request_timeout_s = 300;
};

// The axes, each with the baseline's value first: --backend-sampling, -fa, --kv-unified, -ub (<= -b),
// -b (>= -ub), and on a CPU -t and --threads-http.
std::vector<axis> serve_axes(const serve_config & c);
// The server's context: C slots of the longest request + 64 (BOS and template slack), as serve
// --launch-server sizes it.
int64_t serve_ctx(const serve_config & c);
// llama-server's arguments for a candidate (after --host/--port): -m, -np C, -c, the fixed flags, then
// the candidate's flags (a switch at "1" is its flag, at "0" nothing: llama-server's default with -np).
std::vector<std::string> server_args(const serve_config & c, const std::vector<axis> & axes, const candidate & cand);
// "llama-server -m PATH -np C -c N ..." for a candidate: the recommended command line.
std::string server_command(const serve_config & c, const std::vector<axis> & axes, const candidate & cand);

// A server started for one probe; stopped when destroyed.
class running_server {
  public:
    virtual ~running_server() = default;
    virtual std::string url() const = 0;  // http://127.0.0.1:PORT
};
// Starts llama-server with `args` (cli/: serve --launch-server's machinery) and waits until it is ready;
// throws im::error when it cannot.
using server_launcher = std::function<std::unique_ptr<running_server>(const std::vector<std::string> & args)>;

// same_outputs launches the candidate's server, runs the probe, keeps its measurement for the measure
// call that follows, and compares the answers with the reference (taken on the baseline's server after
// its probe, one request at a time, with n_probs = 2); check_baseline is set, so the baseline's probe is
// compared with its own reference and its detail reports the share of near ties. measure launches a
// fresh server (confirmation runs). `vocab` (the model's) makes the prompts token ids of exact lengths;
// it must outlive the evaluator.
evaluator serve_evaluator(const serve_config & c, const std::vector<axis> & axes, server_launcher launch,
                          const llama_vocab * vocab);

}  // namespace im::tune
