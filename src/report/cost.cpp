#include "report/cost.h"

namespace im::report {

double output_tokens_per_s(int workers, int n_predict, double e2e_s) {
    if (e2e_s <= 0 || workers <= 0 || n_predict <= 0) return 0;
    return static_cast<double>(workers) * n_predict / e2e_s;
}

double usd_per_million_output(double price_per_hour, double output_tps) {
    if (price_per_hour <= 0 || output_tps <= 0) return 0;
    return price_per_hour / (output_tps * 3600.0) * 1e6;
}

double usd_per_million_output_energy(double joules_per_output_token, double price_per_kwh) {
    if (joules_per_output_token <= 0 || price_per_kwh <= 0) return 0;
    return joules_per_output_token * 1e6 / 3.6e6 * price_per_kwh;
}

}  // namespace im::report
