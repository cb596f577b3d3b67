#include "workload/metrics.h"

namespace im::workload {

lockstep_rates lockstep_rates_of(int workers, int n_prompt, int n_predict, double t_pp_s, double t_tg_s) {
    lockstep_rates r;
    const double w = workers;
    r.prompt_tps = t_pp_s > 0 ? w * n_prompt / t_pp_s : 0;
    r.gen_tps = t_tg_s > 0 ? w * n_predict / t_tg_s : 0;
    r.overall_tps = t_pp_s + t_tg_s > 0 ? w * (n_prompt + n_predict) / (t_pp_s + t_tg_s) : 0;
    r.total_kv = static_cast<long>(workers) * (n_prompt + n_predict);
    return r;
}

scaling scaling_of(double overall_tps, int workers, double base_overall_tps, int base_workers) {
    scaling s;
    if (base_overall_tps <= 0 || workers <= 0) {
        return s;
    }
    s.speedup = overall_tps / base_overall_tps;
    s.efficiency = s.speedup / (static_cast<double>(workers) / base_workers);
    return s;
}

}  // namespace im::workload
