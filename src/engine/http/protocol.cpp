#include "engine/http/protocol.h"

#include "core/error.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

namespace im::engine::http {

using json = nlohmann::json;

api parse_api(std::string_view name) {
    if (name == "completions") return api::completions;
    if (name == "chat") return api::chat;
    if (name == "llama") return api::llama;
    throw_usage("unknown endpoint '{}': --endpoint takes completions (/v1/completions), chat "
                "(/v1/chat/completions) or llama (llama-server's /completion)",
                name);
}

const char * api_name(api a) {
    switch (a) {
        case api::completions: return "completions";
        case api::chat: return "chat";
        case api::llama: return "llama";
    }
    return "?";
}

const char * api_path(api a) {
    switch (a) {
        case api::completions: return "/v1/completions";
        case api::chat: return "/v1/chat/completions";
        case api::llama: return "/completion";
    }
    return "/";
}

namespace {

std::string body_with(api a, const body_options & o, json prompt, int n_predict) {
    json b = json::object();
    if (!o.model.empty()) b["model"] = o.model;
    switch (a) {
        case api::completions:
            b["prompt"] = std::move(prompt);
            b["max_tokens"] = n_predict;
            break;
        case api::chat:
            b["messages"] = json::array({json{{"role", "user"}, {"content", std::move(prompt)}}});
            b["max_tokens"] = n_predict;
            break;
        case api::llama:
            b["prompt"] = std::move(prompt);
            b["n_predict"] = n_predict;
            break;
    }
    b["stream"] = true;
    if (a != api::llama && o.include_usage) b["stream_options"] = json{{"include_usage", true}};
    if (o.ignore_eos) b["ignore_eos"] = true;
    if (o.temperature >= 0) b["temperature"] = o.temperature;
    if (o.seed >= 0) b["seed"] = o.seed;
    // Invalid UTF-8 in a prompt is replaced rather than failing the whole run.
    return b.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string request_body(api a, const body_options & o, std::string_view prompt, int n_predict) {
    return body_with(a, o, json(std::string(prompt)), n_predict);
}

std::string request_body(api a, const body_options & o, const std::vector<int32_t> & prompt_tokens, int n_predict) {
    return body_with(a, o, json(prompt_tokens), n_predict);
}

namespace {

std::string message_of(const json & err) {
    if (err.is_string()) return err.get<std::string>();
    if (err.is_object()) {
        for (const char * key : {"message", "msg", "detail", "error"}) {
            auto it = err.find(key);
            if (it != err.end()) {
                if (it->is_string()) return it->get<std::string>();
                if (it->is_object()) return message_of(*it);
            }
        }
    }
    return err.dump(-1, ' ', false, json::error_handler_t::replace);
}

int int_or(const json & obj, const char * key, int fallback) {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number()) return fallback;
    const double v = it->get<double>();
    return v >= 0 && v < 2e9 ? int(v) : fallback;  // a count; anything else is not one
}

double double_or(const json & obj, const char * key, double fallback) {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number()) return fallback;
    return it->get<double>();
}

void read_usage_and_timings(const json & j, stream_chunk & out) {
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
        out.usage_completion_tokens = int_or(*u, "completion_tokens", out.usage_completion_tokens);
        out.usage_prompt_tokens = int_or(*u, "prompt_tokens", out.usage_prompt_tokens);
    }
    if (auto t = j.find("timings"); t != j.end() && t->is_object()) {
        out.timings_prompt_ms = double_or(*t, "prompt_ms", out.timings_prompt_ms);
        out.timings_predicted_per_second = double_or(*t, "predicted_per_second", out.timings_predicted_per_second);
    }
}

// The common case read without building a document (the client reads every chunk of thousands of
// streams on one thread; parsing each into a nlohmann document was most of its time): the events of
// json_scanner (below) collected into the fields interpret_event reads. Anything it does not read the
// way the document path would — an `error` field, a repeated key it reads, a field of an unexpected
// type — makes it give up, and the document path decides (and words the rejection).
// tests/fuzz/sse_fuzz.cpp and tests/unit/engine/protocol_test.cpp check that the two agree.
class chunk_reader {
  public:

    // Fields read, by where they sit.
    enum field : uint32_t {
        f_none = 0,
        // root
        f_usage = 1u << 0, f_timings = 1u << 1, f_choices = 1u << 2, f_content = 1u << 3, f_tokens = 1u << 4,
        f_stop = 1u << 5, f_tokens_predicted = 1u << 6, f_tokens_evaluated = 1u << 7, f_prompt_progress = 1u << 8,
        // usage / timings
        f_completion_tokens = 1u << 9, f_prompt_tokens = 1u << 10, f_prompt_ms = 1u << 11, f_predicted_per_second = 1u << 12,
        // choices[0]
        f_finish_reason = 1u << 13, f_text = 1u << 14, f_delta = 1u << 15,
        // choices[0].delta
        f_delta_content = 1u << 16, f_delta_reasoning = 1u << 17,
    };
    enum class where { root, usage, timings, choices, choice0, delta, tokens, skip };

    explicit chunk_reader(api a) : api_(a) {}

    // False: the DOM path must decide.
    bool finish(stream_chunk & out, std::string & why) {
        if (gave_up_ || !root_done_) return false;
        out.usage_completion_tokens = usage_completion_;  // -1 unless `usage` is an object holding them
        out.usage_prompt_tokens = usage_prompt_;
        out.timings_prompt_ms = timings_prompt_ms_;
        out.timings_predicted_per_second = timings_pps_;
        if (api_ == api::llama) {
            out.text = std::move(text_);
            out.n_token_ids = n_token_ids_;
            if (stop_) {
                out.finished = true;
                if (tokens_predicted_ >= 0) out.usage_completion_tokens = tokens_predicted_;
                if (tokens_evaluated_ >= 0) out.usage_prompt_tokens = tokens_evaluated_;
            }
            if (!(root_keys_ & f_content) && !out.finished && !(root_keys_ & f_prompt_progress)) {
                why = "no `content` in a /completion event";  // rejected, in the DOM path's words
            }
            return true;
        }
        if (!(root_keys_ & f_choices)) {  // present means an array: anything else gave up
            if (root_keys_ & f_usage) return true;  // a usage-only chunk with the choices left out
            why = "no `choices` array";
            return true;
        }
        if (n_choices_ == 0) return true;
        out.finished = finish_reason_;
        out.text = api_ == api::chat ? reasoning_ + text_ : std::move(text_);
        return true;
    }

    // --- json_scanner's events; false stops the scan ---
    bool null() { return value(kind::null); }
    bool boolean(bool v) {
        bool_ = v;
        return value(kind::boolean);
    }
    bool number(double v) {
        number_ = v;
        return value(kind::number);
    }
    bool string(std::string & v) {
        string_ = &v;
        return value(kind::string);
    }
    bool start_object() { return open(false); }
    bool end_object() { return close(); }
    bool start_array() { return open(true); }
    bool end_array() { return close(); }
    bool key(const std::string & k) {
        frame & f = stack_.back();
        f.key = f_none;
        f.skip_value = true;
        const auto pick = [&](field id) {
            if (f.seen & id) return false;  // a repeated key: the DOM keeps the last one; let it decide
            f.seen |= id;
            f.key = id;
            f.skip_value = false;
            return true;
        };
        switch (f.at) {
            case where::root:
                if (k == "error") return give_up();
                if (k == "usage") return pick(f_usage) || give_up();
                if (k == "timings") return pick(f_timings) || give_up();
                if (api_ == api::llama) {
                    if (k == "content") return pick(f_content) || give_up();
                    if (k == "tokens") return pick(f_tokens) || give_up();
                    if (k == "stop") return pick(f_stop) || give_up();
                    if (k == "tokens_predicted") return pick(f_tokens_predicted) || give_up();
                    if (k == "tokens_evaluated") return pick(f_tokens_evaluated) || give_up();
                    if (k == "prompt_progress") return pick(f_prompt_progress) || give_up();
                } else if (k == "choices") {
                    return pick(f_choices) || give_up();
                }
                return true;
            case where::usage:
                if (k == "completion_tokens") return pick(f_completion_tokens) || give_up();
                if (k == "prompt_tokens") return pick(f_prompt_tokens) || give_up();
                return true;
            case where::timings:
                if (k == "prompt_ms") return pick(f_prompt_ms) || give_up();
                if (k == "predicted_per_second") return pick(f_predicted_per_second) || give_up();
                return true;
            case where::choice0:
                if (k == "finish_reason") return pick(f_finish_reason) || give_up();
                if (api_ == api::completions && k == "text") return pick(f_text) || give_up();
                if (api_ == api::chat && k == "delta") return pick(f_delta) || give_up();
                return true;
            case where::delta:
                if (k == "content") return pick(f_delta_content) || give_up();
                if (k == "reasoning_content") return pick(f_delta_reasoning) || give_up();
                return true;
            default: return true;
        }
    }

  private:
    enum class kind { null, boolean, number, string, container };
    struct frame {
        where at;
        bool array = false;
        size_t n = 0;          // elements so far (arrays)
        uint32_t seen = 0;     // fields read in this object
        field key = f_none;    // the field the next value is
        bool skip_value = true;
    };

    bool give_up() {
        gave_up_ = true;
        return false;  // stops the parse
    }

    // Where a value at the current position goes: the field it is, or f_none.
    field slot() {
        if (stack_.empty()) return f_none;
        frame & f = stack_.back();
        if (f.array) {
            ++f.n;
            return f_none;
        }
        return f.skip_value ? f_none : f.key;
    }

    bool count_ok(double v) const { return v >= 0 && v < 2e9; }

    bool value(kind k) {
        if (stack_.empty()) return give_up();  // a scalar document: not an object
        if (stack_.back().at == where::skip) return true;
        const bool in_tokens = stack_.back().at == where::tokens;
        const bool in_choices = stack_.back().at == where::choices;
        const field id = slot();
        if (in_tokens) {
            ++n_token_ids_;
            return true;
        }
        if (in_choices) return stack_.back().n == 1 ? give_up() : true;  // choices[0] must be an object
        switch (id) {
            case f_none: return true;
            case f_completion_tokens:
            case f_prompt_tokens:
            case f_tokens_predicted:
            case f_tokens_evaluated: {
                const int v = k == kind::number && count_ok(number_) ? int(number_) : -1;
                if (id == f_completion_tokens) usage_completion_ = v;
                else if (id == f_prompt_tokens) usage_prompt_ = v;
                else if (id == f_tokens_predicted) tokens_predicted_ = v;
                else tokens_evaluated_ = v;
                return true;
            }
            case f_prompt_ms:
                if (k == kind::number) timings_prompt_ms_ = number_;
                return true;
            case f_predicted_per_second:
                if (k == kind::number) timings_pps_ = number_;
                return true;
            case f_stop:
                stop_ = k == kind::boolean && bool_;
                return true;
            case f_finish_reason:
                finish_reason_ = k == kind::string;
                return true;
            case f_content:
            case f_text:
            case f_delta_content:
            case f_delta_reasoning:
                if (k == kind::null) return true;
                if (k != kind::string) return give_up();  // the DOM path words the rejection
                (id == f_delta_reasoning ? reasoning_ : text_) = std::move(*string_);
                return true;
            case f_usage:  // usage or timings not an object: read as absent
            case f_timings:
            case f_prompt_progress:
            case f_tokens:  // not an array: no token ids
                return true;
            case f_delta:
                return k == kind::null ? true : give_up();
            case f_choices:
                return give_up();  // not an array
            default: return true;
        }
    }

    bool open(bool array) {
        if (stack_.empty()) {
            if (array || root_seen_) return give_up();  // the document is not an object
            root_seen_ = true;
            stack_.push_back({where::root});
            return true;
        }
        frame & parent = stack_.back();
        where at = where::skip;
        if (parent.at != where::skip) {
            const bool in_choices = parent.at == where::choices;
            const field id = slot();
            if (parent.at == where::tokens) {
                ++n_token_ids_;
            } else if (in_choices) {
                if (parent.n == 1) {
                    if (array) return give_up();  // choices[0] is not an object
                    at = where::choice0;
                }
            } else if (id == f_usage && !array) {
                at = where::usage;
            } else if (id == f_timings && !array) {
                at = where::timings;
            } else if (id == f_choices) {
                if (!array) return give_up();
                at = where::choices;
            } else if (id == f_tokens && array) {
                at = where::tokens;
                n_token_ids_ = 0;
            } else if (id == f_delta) {
                if (array) return give_up();
                at = where::delta;
            } else if (id == f_content || id == f_text || id == f_delta_content || id == f_delta_reasoning) {
                return give_up();  // a container where a string belongs
            }
        }
        stack_.push_back({at, array});
        return true;
    }

    bool close() {
        const frame & f = stack_.back();
        if (f.at == where::choices) n_choices_ = f.n;
        if (f.at == where::root) {
            root_keys_ = f.seen;
            root_done_ = true;
        }
        stack_.pop_back();
        return true;
    }

    api api_;
    std::vector<frame> stack_;
    bool gave_up_ = false, root_seen_ = false, root_done_ = false;
    uint32_t root_keys_ = 0;  // the fields present at the root (whatever their type)
    // the value being delivered
    double number_ = 0;
    bool bool_ = false;
    std::string * string_ = nullptr;
    // collected
    int usage_completion_ = -1, usage_prompt_ = -1, tokens_predicted_ = -1, tokens_evaluated_ = -1;
    double timings_prompt_ms_ = -1, timings_pps_ = -1;
    int n_token_ids_ = -1;
    size_t n_choices_ = 0;
    bool stop_ = false, finish_reason_ = false;
    std::string text_, reasoning_;
};

// A strict JSON scanner (RFC 8259, as nlohmann's parser accepts it: no comments, nothing after the
// value) that drives a handler like chunk_reader; nlohmann's parser cost 10–16 µs per
// 200-byte chunk on the 2-core VM. Returns false on anything it is not sure of — a lexical error, a
// surrogate escape, a number out of range — or when the handler stops; the caller then lets the
// document path decide, so being stricter than nlohmann is safe and being looser is not.
template <class Handler>
class json_scanner {
  public:
    json_scanner(std::string_view s, Handler & h) : s_(s), h_(h) {}

    bool run() {
        for (;;) {
            skip_ws();
            if (at_end()) return false;
            const char c = s_[i_];
            if (c == '{' || c == '[') {
                ++i_;
                const bool object = c == '{';
                stack_.push_back(object ? '}' : ']');
                if (!(object ? h_.start_object() : h_.start_array())) return false;
                skip_ws();
                if (!at_end() && s_[i_] == stack_.back()) {
                    ++i_;
                    if (!close()) return false;
                } else {
                    if (object && !key()) return false;
                    continue;  // the first value
                }
            } else if (!scalar()) {
                return false;
            }
            // After a value: close containers, or a comma and the next value.
            for (;;) {
                skip_ws();
                if (stack_.empty()) return at_end();
                if (at_end()) return false;
                if (s_[i_] == ',') {
                    ++i_;
                    if (stack_.back() == '}' && !key()) return false;
                    break;
                }
                if (s_[i_] != stack_.back()) return false;
                ++i_;
                if (!close()) return false;
            }
        }
    }

  private:
    bool at_end() const { return i_ >= s_.size(); }
    void skip_ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool close() {
        const bool object = stack_.back() == '}';
        stack_.pop_back();
        return object ? h_.end_object() : h_.end_array();
    }
    bool key() {
        skip_ws();
        if (at_end() || s_[i_] != '"' || !string()) return false;
        if (!h_.key(str_)) return false;
        skip_ws();
        if (at_end() || s_[i_] != ':') return false;
        ++i_;
        return true;
    }
    bool scalar() {
        const char c = s_[i_];
        if (c == '"') return string() && h_.string(str_);
        if (c == '-' || (c >= '0' && c <= '9')) {
            double v = 0;
            return number(v) && h_.number(v);
        }
        for (const auto & [word, call] : {std::pair<std::string_view, int>{"true", 0}, {"false", 1}, {"null", 2}}) {
            if (s_.substr(i_, word.size()) == word) {
                i_ += word.size();
                return call == 2 ? h_.null() : h_.boolean(call == 0);
            }
        }
        return false;
    }
    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }
    // Length of the well-formed UTF-8 sequence at i_ (RFC 3629: no overlong forms, no surrogates,
    // nothing past U+10FFFF), 0 if it is not one.
    size_t utf8_length() const {
        const auto b = [&](size_t k) { return i_ + k < s_.size() ? static_cast<unsigned char>(s_[i_ + k]) : 0u; };
        const auto in = [](unsigned v, unsigned lo, unsigned hi) { return v >= lo && v <= hi; };
        const unsigned b0 = b(0);
        if (in(b0, 0xC2, 0xDF)) return in(b(1), 0x80, 0xBF) ? 2 : 0;
        if (in(b0, 0xE0, 0xEF)) {
            const unsigned lo = b0 == 0xE0 ? 0xA0 : 0x80, hi = b0 == 0xED ? 0x9F : 0xBF;
            return in(b(1), lo, hi) && in(b(2), 0x80, 0xBF) ? 3 : 0;
        }
        if (in(b0, 0xF0, 0xF4)) {
            const unsigned lo = b0 == 0xF0 ? 0x90 : 0x80, hi = b0 == 0xF4 ? 0x8F : 0xBF;
            return in(b(1), lo, hi) && in(b(2), 0x80, 0xBF) && in(b(3), 0x80, 0xBF) ? 4 : 0;
        }
        return 0;
    }
    bool string() {
        ++i_;  // the opening quote
        str_.clear();
        for (;;) {
            size_t j = i_;
            while (j < s_.size()) {
                const auto u = static_cast<unsigned char>(s_[j]);
                if (u == '"' || u == '\\' || u < 0x20 || u >= 0x80) break;
                ++j;
            }
            str_.append(s_.data() + i_, j - i_);
            i_ = j;
            if (at_end()) return false;
            const auto u = static_cast<unsigned char>(s_[i_]);
            if (u == '"') {
                ++i_;
                return true;
            }
            if (u < 0x20) return false;
            if (u >= 0x80) {
                const size_t len = utf8_length();
                if (len == 0) return false;
                str_.append(s_.data() + i_, len);
                i_ += len;
                continue;
            }
            // an escape
            if (i_ + 1 >= s_.size()) return false;
            const char esc = s_[i_ + 1];
            i_ += 2;
            switch (esc) {
                case '"': str_ += '"'; break;
                case '\\': str_ += '\\'; break;
                case '/': str_ += '/'; break;
                case 'b': str_ += '\b'; break;
                case 'f': str_ += '\f'; break;
                case 'n': str_ += '\n'; break;
                case 'r': str_ += '\r'; break;
                case 't': str_ += '\t'; break;
                case 'u': {
                    if (i_ + 4 > s_.size()) return false;
                    unsigned cp = 0;
                    for (int k = 0; k < 4; ++k) {
                        const int h = hex(s_[i_ + size_t(k)]);
                        if (h < 0) return false;
                        cp = cp * 16 + unsigned(h);
                    }
                    i_ += 4;
                    if (cp >= 0xD800 && cp <= 0xDFFF) return false;  // surrogates: the document path
                    if (cp < 0x80) {
                        str_ += char(cp);
                    } else if (cp < 0x800) {
                        str_ += char(0xC0 | (cp >> 6));
                        str_ += char(0x80 | (cp & 0x3F));
                    } else {
                        str_ += char(0xE0 | (cp >> 12));
                        str_ += char(0x80 | ((cp >> 6) & 0x3F));
                        str_ += char(0x80 | (cp & 0x3F));
                    }
                    break;
                }
                default: return false;
            }
        }
    }
    bool number(double & v) {
        const size_t start = i_;
        const auto digit = [&] { return !at_end() && s_[i_] >= '0' && s_[i_] <= '9'; };
        const auto digits = [&] {
            if (!digit()) return false;
            while (digit()) ++i_;
            return true;
        };
        if (s_[i_] == '-') ++i_;
        if (!at_end() && s_[i_] == '0') {
            ++i_;
        } else if (!digits()) {
            return false;
        }
        if (!at_end() && s_[i_] == '.') {
            ++i_;
            if (!digits()) return false;
        }
        if (!at_end() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            if (!at_end() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
            if (!digits()) return false;
        }
        const std::string_view text = s_.substr(start, i_ - start);
        // Integers (ids, counts, "created") exactly; anything else through strtod in the "C" locale
        // (std::from_chars for double is missing from older libc++, i.e. macOS). Out of range: the
        // document path decides.
        if (text.find_first_of(".eE") == std::string_view::npos && text.size() <= 16) {
            int64_t n = 0;
            for (char c : text) {
                if (c != '-') n = n * 10 + (c - '0');
            }
            v = double(text.front() == '-' ? -n : n);
            return true;
        }
        num_.assign(text);
        errno = 0;
        char * end = nullptr;
        v = std::strtod(num_.c_str(), &end);
        return errno == 0 && end == num_.c_str() + num_.size();
    }

    std::string_view s_;
    Handler & h_;
    size_t i_ = 0;
    std::vector<char> stack_;  // the closing bracket of each open container
    std::string str_, num_;
};

}  // namespace

bool interpret_event(api a, const sse_event & e, stream_chunk & out, std::string & why) {
    if (e.type != "error" && e.data != "[DONE]") {
        chunk_reader r(a);
        json_scanner<chunk_reader> scan(e.data, r);
        const bool scanned = scan.run();
        stream_chunk fast;
        std::string fast_why;
        if (scanned && r.finish(fast, fast_why)) {
            out = std::move(fast);
            why = std::move(fast_why);
            return why.empty();
        }
    }
    return interpret_event_dom(a, e, out, why);
}

bool interpret_event_dom(api a, const sse_event & e, stream_chunk & out, std::string & why) {
    out = stream_chunk{};
    if (e.data == "[DONE]") {
        out.done = true;
        return true;
    }
    json j = json::parse(e.data, nullptr, false);
    if (e.type == "error") {  // `event: error`: the data is the error, JSON or not
        out.is_error = true;
        out.error_message = j.is_discarded() ? error_text(e.data) : error_text(message_of(j));
        return true;
    }
    if (j.is_discarded()) {
        why = "event data is not JSON";
        return false;
    }
    if (!j.is_object()) {
        why = "event data is not a JSON object";
        return false;
    }
    if (auto err = j.find("error"); err != j.end() && !err->is_null()) {
        out.is_error = true;
        out.error_message = error_text(message_of(*err));
        return true;
    }
    read_usage_and_timings(j, out);
    if (a == api::llama) {
        auto c = j.find("content");
        if (c != j.end() && !c->is_null()) {
            if (!c->is_string()) {
                why = "`content` is not a string";
                return false;
            }
            out.text = c->get<std::string>();
        }
        if (auto t = j.find("tokens"); t != j.end() && t->is_array()) out.n_token_ids = int(t->size());
        if (auto s = j.find("stop"); s != j.end() && s->is_boolean() && s->get<bool>()) {
            out.finished = true;
            out.usage_completion_tokens = int_or(j, "tokens_predicted", out.usage_completion_tokens);
            out.usage_prompt_tokens = int_or(j, "tokens_evaluated", out.usage_prompt_tokens);
        }
        if (c == j.end() && !out.finished && j.find("prompt_progress") == j.end()) {
            why = "no `content` in a /completion event";
            return false;
        }
        return true;
    }
    auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array()) {
        if (j.contains("usage")) return true;  // a usage-only chunk with the choices left out
        why = "no `choices` array";
        return false;
    }
    if (choices->empty()) return true;  // the include_usage chunk has "choices": []
    const json & c0 = (*choices)[0];
    if (!c0.is_object()) {
        why = "`choices[0]` is not an object";
        return false;
    }
    if (auto fr = c0.find("finish_reason"); fr != c0.end() && fr->is_string()) out.finished = true;
    if (a == api::completions) {
        auto t = c0.find("text");
        if (t != c0.end() && !t->is_null()) {
            if (!t->is_string()) {
                why = "`choices[0].text` is not a string";
                return false;
            }
            out.text = t->get<std::string>();
        }
    } else {
        auto d = c0.find("delta");
        if (d != c0.end() && d->is_object()) {
            for (const char * key : {"reasoning_content", "content"}) {  // reasoning models stream both
                auto t = d->find(key);
                if (t == d->end() || t->is_null()) continue;
                if (!t->is_string()) {
                    why = fmt::format("`choices[0].delta.{}` is not a string", key);
                    return false;
                }
                out.text += t->get<std::string>();
            }
        } else if (d != c0.end() && !d->is_null()) {
            why = "`choices[0].delta` is not an object";
            return false;
        }
    }
    return true;
}

std::string error_text(std::string_view body, size_t max_chars) {
    std::string msg;
    json j = json::parse(body, nullptr, false);
    if (!j.is_discarded() && (j.is_object() || j.is_string())) {
        if (j.is_object() && j.contains("error")) {
            msg = message_of(j["error"]);
        } else {
            msg = message_of(j);
        }
    } else {
        msg.assign(body);
    }
    std::string out;
    for (char ch : msg) {
        if (out.size() >= max_chars) {
            // never end inside a UTF-8 sequence: if the next byte continues one, drop its start
            if ((static_cast<unsigned char>(ch) & 0xC0) == 0x80) {
                while (!out.empty()) {
                    const auto b = static_cast<unsigned char>(out.back());
                    out.pop_back();
                    if ((b & 0xC0) != 0x80) break;
                }
            }
            out += "...";
            break;
        }
        const auto u = static_cast<unsigned char>(ch);
        out.push_back(u < 0x20 || u == 0x7f ? ' ' : ch);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    size_t start = 0;
    while (start < out.size() && out[start] == ' ') ++start;
    return out.substr(start);
}

}  // namespace im::engine::http
