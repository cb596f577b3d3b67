#pragma once

#include <optional>

// Lockstep (batched-bench) throughput arithmetic (DESIGN §2.3, normative).
namespace im::workload {

struct lockstep_rates {
    double prompt_tps = 0;   // W·n_prompt / T_PP
    double gen_tps = 0;      // W·n_predict / T_TG
    double overall_tps = 0;  // W·(n_prompt + n_predict) / (T_PP + T_TG)
    long total_kv = 0;       // W·(n_prompt + n_predict)
};

lockstep_rates lockstep_rates_of(int workers, int n_prompt, int n_predict, double t_pp_s, double t_tg_s);

// speedup(W) = overall(W) / overall(base); efficiency = speedup / (W / W_base).
struct scaling {
    double speedup = 0;
    double efficiency = 0;
};
scaling scaling_of(double overall_tps, int workers, double base_overall_tps, int base_workers);

}  // namespace im::workload
