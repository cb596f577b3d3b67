#pragma once

#include "model/preset.h"

#include "llama.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace im::model {

struct synth_options {
    shape s;
    llama_ftype ftype = LLAMA_FTYPE_MOSTLY_Q4_K_M;
    std::filesystem::path out;         // written as core/fs.h output_file: atomic, devices written through
    std::string out_hint;              // ends write errors: which flag or variable names `out`
    std::filesystem::path vocab_path;  // empty: find s.vocab in vocab_dir()
    uint64_t seed = 42;
    int n_threads = 0;                 // 0: all cores
};

struct synth_result {
    std::filesystem::path path;
    double seconds = 0;
    uint64_t temp_bytes = 0;   // largest intermediate file written (0 when written directly)
    int n_rows_zeroed = 0;     // embedding rows zeroed so that the model can only emit text (DESIGN §6)
    int n_vocab = 0;
};

// Where llama.cpp's ggml-vocab-*.gguf files are: $INFERMETER_VOCAB_DIR, else the models/ folder
// of the llama.cpp this binary was built with.
std::filesystem::path vocab_dir();

// Token ids whose embedding/output rows must be zero for the model to generate only text:
// control, end-of-generation, byte, unknown and unused tokens, and tokens whose piece is not
// valid UTF-8 on its own (DESIGN §6). Loads the vocabulary only.
std::vector<int> non_text_tokens(const std::filesystem::path & vocab_path);

using progress_fn = std::function<void(const std::string & stage, double fraction)>;

// Writes a GGUF of the given shape with a real vocabulary and random weights (normal, std 0.02;
// norms 1; biases 0), quantized with llama_model_quantize when the file type needs it (from a
// Q8_0 intermediate). The file appears at opts.out only when complete (temporary + rename).
synth_result synthesize(const synth_options & opts, const progress_fn & progress = {});

}  // namespace im::model
