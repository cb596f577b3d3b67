#include "engine/scheduler.h"

#include "core/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace im::engine {

continuous_scheduler::continuous_scheduler(scheduler_config c) : c_(c), slots_(static_cast<size_t>(std::max(1, c.n_slots))) {
    if (c_.step_tokens < 1) c_.step_tokens = 1;
}

std::optional<std::string> continuous_scheduler::check(const request & r) const {
    if (r.n_predict < 1) return fmt::format("request {} asks for {} output tokens (must be >= 1)", r.id, r.n_predict);
    if (r.prompt_tokens.empty()) return fmt::format("request {} has an empty prompt", r.id);
    const int64_t need = static_cast<int64_t>(r.prompt_tokens.size()) + r.n_predict;
    if (c_.n_ctx_seq > 0 && need > c_.n_ctx_seq) {
        return fmt::format("request {} needs {} KV cells ({} prompt + {} output tokens) but a slot holds {}", r.id, need,
                           r.prompt_tokens.size(), r.n_predict, c_.n_ctx_seq);
    }
    return std::nullopt;
}

void continuous_scheduler::enqueue(request r) { waiting_.push_back(std::move(r)); }

step_plan continuous_scheduler::plan(int64_t now_ns) {
    step_plan p;
    // Admit in FIFO order while slots are free (a later request never overtakes an earlier one).
    for (auto & s : slots_) {
        if (waiting_.empty() || waiting_.front().t_intended_ns > now_ns) break;
        if (s.busy) continue;
        s = slot{};
        s.busy = true;
        s.req = std::move(waiting_.front());
        s.admit_seq = admissions_++;
        waiting_.pop_front();
        p.admitted.push_back(s.req.id);
    }
    int budget = c_.step_tokens;
    // Decoders first: one token each, always (an admitted request is never starved).
    for (size_t i = 0; i < slots_.size(); ++i) {
        auto & s = slots_[i];
        if (!s.busy || s.prompt_done < static_cast<int>(s.req.prompt_tokens.size())) continue;
        step_item it;
        it.slot = static_cast<int>(i);
        it.id = s.req.id;
        it.pos = s.n_past;
        it.n = 1;
        it.token = s.last_token;
        it.wants_output = true;
        p.items.push_back(it);
        ++p.n_decoding;
        p.n_tokens += 1;
        budget -= 1;
    }
    // Then prompt chunks, oldest admission first, within what is left of the budget.
    std::vector<size_t> order;
    for (size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].busy && slots_[i].prompt_done < static_cast<int>(slots_[i].req.prompt_tokens.size())) order.push_back(i);
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return slots_[a].admit_seq < slots_[b].admit_seq; });
    for (size_t i : order) {
        if (budget <= 0) break;
        auto & s = slots_[i];
        const int left = static_cast<int>(s.req.prompt_tokens.size()) - s.prompt_done;
        const int n = std::min(left, budget);
        step_item it;
        it.slot = static_cast<int>(i);
        it.id = s.req.id;
        it.pos = s.n_past;
        it.n = n;
        it.prompt_offset = s.prompt_done;
        it.wants_output = n == left;
        p.items.push_back(it);
        ++p.n_prefilling;
        p.n_tokens += n;
        budget -= n;
    }
    return p;
}

const int32_t * continuous_scheduler::prompt_tokens(const step_item & it) const {
    return slots_[static_cast<size_t>(it.slot)].req.prompt_tokens.data() + it.prompt_offset;
}

std::vector<continuous_scheduler::outcome> continuous_scheduler::complete(const step_plan & p, const std::vector<int32_t> & chosen,
                                                                          bool honour_eos, const std::vector<bool> & is_eog) {
    std::vector<outcome> out;
    for (size_t k = 0; k < p.items.size(); ++k) {
        const step_item & it = p.items[k];
        slot & s = slots_[static_cast<size_t>(it.slot)];
        if (!s.busy || s.req.id != it.id) continue;  // cancelled meanwhile
        s.n_past += it.n;
        if (it.prompt_offset >= 0) s.prompt_done += it.n;
        if (!it.wants_output) continue;
        s.last_token = chosen[k];
        ++s.n_output;
        outcome o;
        o.id = it.id;
        o.slot = it.slot;
        o.n_output = s.n_output;
        const bool eog = honour_eos && k < is_eog.size() && is_eog[k];
        o.finished = s.n_output >= s.req.n_predict || eog;
        if (o.finished) s.busy = false;
        out.push_back(o);
    }
    return out;
}

std::vector<std::pair<uint64_t, int>> continuous_scheduler::cancel_all() {
    std::vector<std::pair<uint64_t, int>> out;
    for (size_t i = 0; i < slots_.size(); ++i) {
        if (!slots_[i].busy) continue;
        out.push_back({slots_[i].req.id, static_cast<int>(i)});
        slots_[i].busy = false;
    }
    for (const auto & r : waiting_) out.push_back({r.id, -1});
    waiting_.clear();
    return out;
}

size_t continuous_scheduler::active() const {
    return static_cast<size_t>(std::count_if(slots_.begin(), slots_.end(), [](const slot & s) { return s.busy; }));
}

size_t continuous_scheduler::in_flight() const { return active() + waiting_.size(); }

std::optional<int64_t> continuous_scheduler::next_intended() const {
    if (waiting_.empty()) return std::nullopt;
    return waiting_.front().t_intended_ns;
}

int64_t continuous_scheduler::kv_cells_used() const {
    return std::accumulate(slots_.begin(), slots_.end(), int64_t{0},
                           [](int64_t a, const slot & s) { return a + (s.busy ? s.n_past : 0); });
}

}  // namespace im::engine
