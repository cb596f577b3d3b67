#include "dataset/analysis.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/format.h"
#include "core/interrupt.h"
#include "core/log.h"
#include "core/stats.h"
#include "dataset/vocab.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace im::dataset {

namespace {

// Records handed from the reader to the tokenizing workers; `seq` keeps results in file order.
struct batch {
    size_t seq = 0;
    std::vector<conversation> convs;
};

struct batch_result {
    std::vector<int32_t> prompt, output;
    size_t without_output = 0;
};

// A bounded FIFO: the reader blocks when the workers fall behind, so memory stays flat.
class batch_queue {
  public:
    explicit batch_queue(size_t capacity) : capacity_(capacity) {}
    void push(batch && b) {
        std::unique_lock lock(mutex_);
        not_full_.wait(lock, [&] { return items_.size() < capacity_ || closed_; });
        if (closed_) return;
        items_.push_back(std::move(b));
        not_empty_.notify_one();
    }
    bool pop(batch & b) {
        std::unique_lock lock(mutex_);
        not_empty_.wait(lock, [&] { return !items_.empty() || closed_; });
        if (items_.empty()) return false;
        b = std::move(items_.front());
        items_.pop_front();
        not_full_.notify_one();
        return true;
    }
    // No more pushes; pop drains what is queued, then returns false.
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        not_empty_.notify_all();
        not_full_.notify_all();
    }

  private:
    std::mutex mutex_;
    std::condition_variable not_empty_, not_full_;
    std::deque<batch> items_;
    size_t capacity_;
    bool closed_ = false;
};

const char * role_name(role r) {
    switch (r) {
        case role::system: return "system";
        case role::assistant: return "assistant";
        default: return "user";
    }
}

// Prompt text with the chat template applied and the assistant's opening added (add_ass).
// Returns false when llama.cpp does not know the template.
bool apply_template(const std::string & tmpl, const conversation & conv, size_t n_msg, std::string & out) {
    std::vector<llama_chat_message> msgs;
    msgs.reserve(n_msg);
    size_t total = 0;
    for (size_t i = 0; i < n_msg; ++i) {
        msgs.push_back({role_name(conv[i].speaker), conv[i].content.c_str()});
        total += conv[i].content.size();
    }
    out.resize(2 * total + 256);
    int32_t n = llama_chat_apply_template(tmpl.c_str(), msgs.data(), msgs.size(), true, out.data(),
                                          static_cast<int32_t>(out.size()));
    if (n < 0) return false;
    if (static_cast<size_t>(n) > out.size()) {
        out.resize(static_cast<size_t>(n));
        n = llama_chat_apply_template(tmpl.c_str(), msgs.data(), msgs.size(), true, out.data(),
                                      static_cast<int32_t>(out.size()));
    }
    out.resize(static_cast<size_t>(n));
    return true;
}

// Every assistant turn after at least one message is a sample: its prompt is everything before it.
// Without a template each message is tokenized once and the prompt is the sum of what precedes.
void tokenize_conversation(const llama_vocab * vocab, const analyze_options & opts, const conversation & conv,
                           batch_result & out, std::vector<llama_token> & buf, std::string & scratch) {
    int64_t prompt_sum = 0;
    size_t samples = 0;
    for (size_t i = 0; i < conv.size(); ++i) {
        const int32_t n = count_tokens(vocab, conv[i].content, false, buf);
        if (conv[i].speaker == role::assistant && i > 0) {
            int64_t prompt = prompt_sum;
            if (opts.chat_template) {
                apply_template(opts.chat_template_text, conv, i, scratch);
                prompt = count_tokens(vocab, scratch, true, buf);
            }
            out.prompt.push_back(static_cast<int32_t>(std::min<int64_t>(prompt, INT32_MAX)));
            out.output.push_back(n);
            ++samples;
        }
        prompt_sum += n;
    }
    if (samples == 0) ++out.without_output;
}

size_t content_bytes(const conversation & conv) {
    size_t n = 0;
    for (const auto & m : conv) n += m.content.size();
    return n;
}

std::string extension_of(const std::filesystem::path & path) {
    std::filesystem::path p = path;
    std::string ext = p.extension().string();
    for (auto & c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (ext == ".gz") {
        p = p.stem();
        ext = p.extension().string();
        for (auto & c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return ext;
}

std::string bad_list(const analysis & a) {
    std::string out;
    for (size_t i = 0; i < a.bad_lines.size(); ++i) {
        out += fmt::format("{}line {} ({})", i ? ", " : "", a.bad_lines[i], a.bad_reasons[i]);
    }
    if (a.bad_records > a.bad_lines.size()) out += ", ...";
    return out;
}

// 1, 2, 5 times a power of ten, at least `x`.
int64_t nice_width(double x) {
    if (x <= 1.0) return 1;
    const double p = std::pow(10.0, std::floor(std::log10(x)));
    for (double m : {1.0, 2.0, 5.0, 10.0}) {
        if (m * p >= x) return static_cast<int64_t>(m * p);
    }
    return static_cast<int64_t>(10 * p);
}

int hardware_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace

double coverage_at(std::span<const int32_t> lengths, int64_t limit) {
    if (lengths.empty()) return 0.0;
    const auto n = std::count_if(lengths.begin(), lengths.end(), [&](int32_t x) { return x <= limit; });
    return static_cast<double>(n) / static_cast<double>(lengths.size());
}

length_stats compute_length_stats(std::span<const int32_t> lengths) {
    length_stats s;
    s.count = lengths.size();
    if (lengths.empty()) return s;
    std::vector<double> sorted(lengths.begin(), lengths.end());
    std::sort(sorted.begin(), sorted.end());
    stats::welford w;
    for (double x : sorted) w.add(x);
    s.mean = w.mean();
    s.std = w.stddev();
    s.min = static_cast<int64_t>(sorted.front());
    s.max = static_cast<int64_t>(sorted.back());
    s.p50 = stats::percentile_sorted(sorted, 50);
    s.p75 = stats::percentile_sorted(sorted, 75);
    s.p90 = stats::percentile_sorted(sorted, 90);
    s.p95 = stats::percentile_sorted(sorted, 95);
    s.p99 = stats::percentile_sorted(sorted, 99);

    // Linear bins of a round width over [min, p99]; one more bin holds the tail up to max.
    const int64_t width = nice_width((s.p99 - static_cast<double>(s.min)) / 16.0);
    const int64_t lo0 = s.min / width * width;
    const auto n_bins = std::clamp<int64_t>(static_cast<int64_t>(std::ceil((s.p99 - static_cast<double>(lo0) + 1) /
                                                                          static_cast<double>(width))), 1, 40);
    for (int64_t k = 0; k < n_bins; ++k) s.histogram.push_back({lo0 + k * width, lo0 + (k + 1) * width, 0});
    if (s.max >= s.histogram.back().hi_tokens) s.histogram.push_back({s.histogram.back().hi_tokens, s.max + 1, 0});
    for (double x : sorted) {
        const auto v = static_cast<int64_t>(x);
        const auto k = std::min<int64_t>((v - lo0) / width, static_cast<int64_t>(s.histogram.size()) - 1);
        ++s.histogram[static_cast<size_t>(k)].count;
    }

    for (int64_t t = 16; t <= 131072; t *= 2) {
        const auto it = std::upper_bound(sorted.begin(), sorted.end(), static_cast<double>(t));
        s.coverage.push_back({t, static_cast<double>(it - sorted.begin()) / static_cast<double>(sorted.size())});
    }
    return s;
}

rounding parse_rounding(const std::string & name) {
    if (name == "pow2") return rounding::pow2;
    if (name == "128") return rounding::multiple_128;
    if (name == "exact") return rounding::exact;
    throw_usage("--round: '{}' is not one of pow2, 128, exact", name);
}

const char * rounding_name(rounding r) {
    switch (r) {
        case rounding::multiple_128: return "128";
        case rounding::exact:        return "exact";
        default:                     return "pow2";
    }
}

int n_predict_for_coverage(std::span<const int32_t> lengths, double target, rounding r) {
    if (lengths.empty() || !(target > 0.0 && target <= 1.0)) {
        throw std::logic_error("n_predict_for_coverage: needs lengths and 0 < target <= 1");
    }
    std::vector<int32_t> sorted(lengths.begin(), lengths.end());
    std::sort(sorted.begin(), sorted.end());
    // The fewest samples k with k / n >= target (a hair of slack for 0.9 * n not being exact in
    // binary), then the k-th shortest length: every limit >= it covers k samples.
    const auto n = static_cast<double>(sorted.size());
    auto k = static_cast<size_t>(std::ceil(target * n - 1e-9));
    k = std::clamp<size_t>(k, 1, sorted.size());
    const int64_t need = std::max<int64_t>(1, sorted[k - 1]);
    switch (r) {
        case rounding::exact: return static_cast<int>(need);
        case rounding::multiple_128: return static_cast<int>((need + 127) / 128 * 128);
        default: break;
    }
    int64_t p = 1;
    while (p < need) p *= 2;
    return static_cast<int>(std::min<int64_t>(p, INT32_MAX));
}

int n_prompt_for_percentile(double p_90) {
    const double e = std::ceil(std::log2(std::max(1.0, p_90)));
    return std::max(32, static_cast<int>(std::lround(std::exp2(std::min(e, 30.0)))));
}

std::vector<recommendation> recommend(const length_stats & prompt, std::span<const int32_t> prompt_lengths,
                                      const length_stats & output, std::span<const int32_t> output_lengths,
                                      rounding round) {
    (void)output;
    const int n_prompt = n_prompt_for_percentile(prompt.p90);
    const double prompt_cov = coverage_at(prompt_lengths, n_prompt);
    std::vector<recommendation> out;
    for (const auto & [name, c] : {std::pair{"conservative", 0.75}, std::pair{"recommended", 0.90},
                                   std::pair{"comprehensive", 0.99}}) {
        const int n_predict = n_predict_for_coverage(output_lengths, c, round);
        recommendation r{name, c, n_prompt, n_predict, coverage_at(output_lengths, n_predict), prompt_cov, {}};
        for (const auto & earlier : out) {
            if (earlier.n_prompt == r.n_prompt && earlier.n_predict == r.n_predict) {
                r.same_as = earlier.same_as.empty() ? earlier.scenario : earlier.same_as;
                break;
            }
        }
        out.push_back(r);
    }
    return out;
}

analysis analyze(const analyze_options & opts, const llama_vocab * vocab) {
    analysis a;
    a.path = opts.path;
    a.tokenizer_name = opts.tokenizer_name.empty() ? "vocab" : opts.tokenizer_name;
    a.tokenizer_type = vocab_type_name(vocab);
    a.n_vocab = llama_vocab_n_tokens(vocab);
    a.chat_template = opts.chat_template;
    a.n_threads = opts.n_threads > 0 ? opts.n_threads : hardware_threads();
    if (opts.max_bad_fraction < 0.0 || opts.max_bad_fraction > 1.0) {
        throw_usage("--max-bad-records: {} is not a fraction between 0 and 1", opts.max_bad_fraction);
    }
    if (opts.chat_template) {
        std::string probe;
        if (opts.chat_template_text.empty()) {
            throw_runtime("--chat-template: {} has no chat template (tokenizer.chat_template); drop --chat-template "
                          "or pass -m with an instruct model", a.tokenizer_name);
        }
        if (!apply_template(opts.chat_template_text, {{role::user, "x"}}, 1, probe)) {
            throw_runtime("--chat-template: llama.cpp does not know the chat template of {}; drop --chat-template",
                          a.tokenizer_name);
        }
    }
    std::error_code ec;
    a.file_bytes = std::filesystem::is_regular_file(opts.path, ec) ? std::filesystem::file_size(opts.path, ec) : 0;

    const int64_t t0 = clock::now_ns();
    reader_options ro{opts.fmt, opts.prompt_field, opts.output_field, opts.path.string(), extension_of(opts.path)};
    record_reader reader(open_file(opts.path), ro);

    batch_queue queue(static_cast<size_t>(2 * a.n_threads + 2));
    std::mutex results_mutex;
    std::vector<batch_result> results;
    std::exception_ptr worker_error;
    std::vector<std::thread> workers;
    // Joins the workers on every exit path, exceptions from the reader included.
    struct joiner {
        batch_queue & q;
        std::vector<std::thread> & ts;
        ~joiner() {
            q.close();
            for (auto & t : ts) t.join();
        }
    } join_guard{queue, workers};
    for (int i = 0; i < a.n_threads; ++i) {
        workers.emplace_back([&] {
            std::vector<llama_token> buf;
            std::string scratch;
            batch b;
            while (queue.pop(b)) {
                batch_result r;
                try {
                    for (const auto & conv : b.convs) tokenize_conversation(vocab, opts, conv, r, buf, scratch);
                } catch (...) {
                    std::lock_guard lock(results_mutex);
                    if (!worker_error) worker_error = std::current_exception();
                    queue.close();
                    return;
                }
                std::lock_guard lock(results_mutex);
                if (results.size() <= b.seq) results.resize(b.seq + 1);
                results[b.seq] = std::move(r);
            }
        });
    }

    constexpr size_t batch_bytes = 128 * 1024;
    batch cur;
    size_t cur_bytes = 0, next_seq = 0;
    int64_t last_progress_ns = t0;
    read_result r;
    while (reader.next(r)) {
        if (interrupt::requested()) {
            a.interrupted = true;
            break;
        }
        if (!r.ok) {
            ++a.bad_records;
            if (a.bad_lines.size() < 5) {
                a.bad_lines.push_back(r.line);
                a.bad_reasons.push_back(r.why);
            }
            continue;
        }
        ++a.records;
        if (r.n_utf8_replaced > 0) ++a.utf8_records;
        cur_bytes += content_bytes(r.conv);
        cur.convs.push_back(std::move(r.conv));
        if (cur_bytes >= batch_bytes) {
            cur.seq = next_seq++;
            queue.push(std::move(cur));
            cur = batch{};
            cur_bytes = 0;
        }
        const int64_t now = clock::now_ns();
        if (now - last_progress_ns > 2'000'000'000) {
            last_progress_ns = now;
            const double done = static_cast<double>(reader.position());
            log::info("analyze: {} of {} MB read ({}), {} records",
                      fmtx::thousands(done / 1e6, 1), fmtx::thousands(static_cast<double>(a.file_bytes) / 1e6, 1),
                      fmtx::percent(a.file_bytes ? done / static_cast<double>(a.file_bytes) : 0.0),
                      fmtx::thousands(static_cast<int64_t>(a.records)));
        }
    }
    if (!cur.convs.empty()) {
        cur.seq = next_seq++;
        queue.push(std::move(cur));
    }
    queue.close();
    for (auto & t : workers) t.join();
    workers.clear();
    if (worker_error) std::rethrow_exception(worker_error);

    a.bytes = reader.bytes_read();
    a.format = reader.format_key();
    a.format_description = reader.format_description();
    for (auto & br : results) {
        a.prompt_lengths.insert(a.prompt_lengths.end(), br.prompt.begin(), br.prompt.end());
        a.output_lengths.insert(a.output_lengths.end(), br.output.begin(), br.output.end());
        a.records_without_output += br.without_output;
    }
    results.clear();
    a.seconds = static_cast<double>(clock::now_ns() - t0) / 1e9;
    a.bytes_per_s = a.seconds > 0 ? static_cast<double>(a.bytes) / a.seconds : 0.0;

    const size_t total = a.records + a.bad_records;
    if (total == 0) {
        if (a.interrupted) throw error(error_kind::interrupted, "analyze: interrupted before the first record");
        throw_runtime("dataset {} has no records (the file is empty)", opts.path.string());
    }
    const double bad_fraction = static_cast<double>(a.bad_records) / static_cast<double>(total);
    if (a.bad_records > 0 && bad_fraction > opts.max_bad_fraction) {
        throw_runtime("dataset {}: {} of {} records are malformed ({}), more than --max-bad-records {}: {}; fix them "
                      "or raise --max-bad-records",
                      opts.path.string(), a.bad_records, total, fmtx::percent(bad_fraction, 1),
                      fmtx::percent(opts.max_bad_fraction, 1), bad_list(a));
    }
    if (a.bad_records > 0) {
        log::warn("dataset {}: skipped {} malformed record{}: {}", opts.path.string(), a.bad_records,
                  a.bad_records == 1 ? "" : "s", bad_list(a));
    }
    if (a.utf8_records > 0) {
        log::warn("dataset {}: {} record{} held invalid UTF-8, replaced by U+FFFD before tokenizing",
                  opts.path.string(), a.utf8_records, a.utf8_records == 1 ? "" : "s");
    }
    if (a.prompt_lengths.empty()) {
        throw_runtime("dataset {}: none of its {} records has an output after a prompt (an assistant turn after "
                      "another message); check --format",
                      opts.path.string(), a.records);
    }
    a.prompt_tokens = compute_length_stats(a.prompt_lengths);
    a.output_tokens = compute_length_stats(a.output_lengths);
    a.round = opts.round;
    a.recommendations = recommend(a.prompt_tokens, a.prompt_lengths, a.output_tokens, a.output_lengths, opts.round);
    a.rationale = rationale_for(a);
    return a;
}

tokenizer_rate measure_tokenizer(const analyze_options & opts, const llama_vocab * vocab) {
    reader_options ro{opts.fmt, opts.prompt_field, opts.output_field, opts.path.string(), extension_of(opts.path)};
    record_reader reader(open_file(opts.path), ro);
    std::vector<std::string> texts;
    read_result r;
    while (reader.next(r)) {
        if (!r.ok) continue;
        for (auto & m : r.conv) texts.push_back(std::move(m.content));
    }
    tokenizer_rate out;
    std::vector<llama_token> buf;
    const int64_t t0 = clock::now_ns();
    for (const auto & t : texts) {
        out.tokens += static_cast<uint64_t>(count_tokens(vocab, t, false, buf));
        out.text_bytes += t.size();
    }
    out.seconds = static_cast<double>(clock::now_ns() - t0) / 1e9;
    return out;
}

}  // namespace im::dataset
