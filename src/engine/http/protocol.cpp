#include "engine/http/protocol.h"

#include "core/error.h"

#include <nlohmann/json.hpp>

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

}  // namespace

bool interpret_event(api a, const sse_event & e, stream_chunk & out, std::string & why) {
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
