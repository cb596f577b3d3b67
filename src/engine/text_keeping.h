#pragma once

#include "engine/request.h"

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace im::engine {

// Passes everything through to another engine (the HTTP client) and keeps each request's streamed
// text: `serve` counts it with infermeter's own tokenizer (DESIGN §2.5: token counts three ways), and
// `tune --workload serve` compares it with the baseline's. Not thread-safe beyond the inner engine's
// submit/poll contract (one poller).
class text_keeping_engine : public request_engine {
  public:
    explicit text_keeping_engine(request_engine & inner) : inner_(inner) {}
    int64_t now_ns() const override { return inner_.now_ns(); }
    void submit(request r) override { inner_.submit(std::move(r)); }
    void poll(int64_t deadline_ns, std::vector<event> & out) override {
        const size_t first = out.size();
        inner_.poll(deadline_ns, out);
        for (size_t i = first; i < out.size(); ++i) {
            if (out[i].kind == event_kind::tokens) text_[out[i].id] += out[i].text;
        }
    }
    size_t in_flight() const override { return inner_.in_flight(); }
    void cancel_all() override { inner_.cancel_all(); }
    std::string describe() const override { return inner_.describe(); }
    // The text of request `id` so far; forgets it.
    std::string take_text(uint64_t id) {
        auto it = text_.find(id);
        if (it == text_.end()) return {};
        std::string t = std::move(it->second);
        text_.erase(it);
        return t;
    }

  private:
    request_engine & inner_;
    std::unordered_map<uint64_t, std::string> text_;
};

}  // namespace im::engine
