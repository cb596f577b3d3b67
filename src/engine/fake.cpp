#include "engine/fake.h"

#include <fmt/format.h>

#include <algorithm>

namespace im::engine {

fake_engine::fake_engine(fake_config c) : c_(std::move(c)), sched_(c_.slots), stall_used_(c_.stalls.size(), false) {}

void fake_engine::submit(request r) {
    if (auto why = sched_.check(r)) {
        rejected_.push_back(make_failure(r.id, std::max(now_, r.t_intended_ns), failure::rejected, *why));
        return;
    }
    sched_.enqueue(std::move(r));
}

void fake_engine::poll(int64_t deadline_ns, std::vector<event> & out) {
    if (!rejected_.empty()) {
        out.insert(out.end(), rejected_.begin(), rejected_.end());
        rejected_.clear();
        return;
    }
    const step_plan p = sched_.plan(now_);
    if (p.items.empty()) {
        // Idle: jump to the next arrival or the deadline, whichever is first.
        int64_t to = deadline_ns;
        if (auto t = sched_.next_intended()) to = std::min(to, std::max(*t, now_));
        now_ = std::max(now_, to);
        return;
    }
    const int64_t t0 = now_;
    for (uint64_t id : p.admitted) {
        out.push_back(make_event(id, event_kind::sent, t0));
        out.push_back(make_event(id, event_kind::admitted, t0));
    }
    int n_prompt_tokens = p.n_tokens - p.n_decoding;
    int64_t decode = c_.step_base_ns + c_.per_decode_ns * p.n_decoding + c_.per_prompt_token_ns * n_prompt_tokens;
    for (size_t i = 0; i < c_.stalls.size(); ++i) {
        if (!stall_used_[i] && t0 >= c_.stalls[i].at_ns) {
            decode += c_.stalls[i].extra_ns;
            stall_used_[i] = true;
        }
    }
    int n_sampled = 0;
    std::vector<int32_t> chosen(p.items.size(), -1);
    for (size_t k = 0; k < p.items.size(); ++k) {
        if (p.items[k].wants_output) {
            chosen[k] = 7;
            ++n_sampled;
        }
    }
    const int64_t sample = c_.sample_ns * n_sampled;
    now_ = t0 + decode + sample;
    for (const auto & o : sched_.complete(p, chosen, false, {})) {
        out.push_back(make_event(o.id, event_kind::tokens, now_, 1));
        if (o.finished) {
            out.push_back(make_event(o.id, event_kind::finished, now_, o.n_output));
        }
    }
    step_stats s;
    s.t_start_ns = t0;
    s.t_decode_ns = decode;
    s.t_sample_ns = sample;
    s.n_tokens = p.n_tokens;
    s.n_decoding = p.n_decoding;
    s.n_prefilling = p.n_prefilling;
    s.kv_cells_used = sched_.kv_cells_used();
    max_kv_ = std::max(max_kv_, s.kv_cells_used);
    steps_.push_back(s);
}

void fake_engine::cancel_all() {
    for (const auto & [id, slot] : sched_.cancel_all()) {
        rejected_.push_back(make_failure(id, now_, failure::cancelled, "cancelled"));
    }
}

std::vector<step_stats> fake_engine::take_steps() {
    std::vector<step_stats> s;
    s.swap(steps_);
    return s;
}

std::string fake_engine::describe() const { return fmt::format("fake engine, {} slots", c_.slots.n_slots); }

}  // namespace im::engine
