#pragma once

// What throughput costs (issue 11, `evaluate --price-per-hour` and `--price-per-kwh`): dollars per
// million output tokens of a machine rented by the hour, and of the energy measured while they were made. Output tokens are counted over the whole request time, prefill
// included: a lockstep row of W workers delivers W·n_predict tokens in T_PP + T_TG seconds.
namespace im::report {

// W·n_predict / e2e_s; 0 when e2e_s <= 0.
double output_tokens_per_s(int workers, int n_predict, double e2e_s);

// price_per_hour / (output_tps · 3600) · 1e6; 0 when output_tps <= 0 or no price.
double usd_per_million_output(double price_per_hour, double output_tps);

// Energy cost (`--price-per-kwh`): joules_per_output_token · 1e6 / 3.6e6 · price_per_kwh, the measured
// joules of a million output tokens in kWh (1 kWh = 3.6 MJ) at that price; 0 when either is <= 0.
double usd_per_million_output_energy(double joules_per_output_token, double price_per_kwh);

}  // namespace im::report
