#include "report/telemetry.h"

#include "core/escape.h"
#include "core/format.h"
#include "report/svg.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

namespace im::report {

namespace {

using json = nlohmann::ordered_json;

// Millisecond / milli-unit resolution: the readings themselves are no finer (NVML reports mW and MiB).
double round3(double v) { return std::round(v * 1e3) / 1e3; }

void put(json & j, const char * key, const std::optional<double> & v) {
    if (v) j[key] = round3(*v);
}

struct mean_peak {
    double sum = 0;
    size_t n = 0;
    std::optional<double> peak;
    void add(const std::optional<double> & v) {
        if (!v) return;
        sum += *v;
        ++n;
        if (!peak || *v > *peak) peak = v;
    }
    std::optional<double> mean() const { return n ? std::optional<double>(sum / static_cast<double>(n)) : std::nullopt; }
};

}  // namespace

json telemetry_json(const telemetry::series & s, size_t max_samples) {
    json j;
    j["interval_s"] = s.interval_s;
    j["sources"] = s.sources;
    j["gpu"] = s.gpu_name.empty() ? json(nullptr) : json(s.gpu_name);
    json absent = json::object();
    if (!s.nvml_why_not.empty()) absent["nvml"] = s.nvml_why_not;
    if (!s.rapl_why_not.empty()) absent["rapl"] = s.rapl_why_not;
    j["unavailable"] = absent;
    j["power_note"] = s.has_power() ? json(nullptr) : json(s.why_no_power());
    const auto kept = telemetry::decimate(s.samples, max_samples);
    j["samples_recorded"] = s.samples_recorded;
    j["samples_kept"] = kept.size();
    j["decimated"] = kept.size() < s.samples_recorded;
    json stages = json::array();
    for (const auto & st : s.stages) stages.push_back({{"stage", st.stage}, {"start_s", round3(st.start_s)}, {"end_s", round3(st.end_s)}});
    j["stages"] = stages;
    json series = json::array();
    for (const auto & x : kept) {
        json o;
        o["t_s"] = round3(x.t_s);
        o["stage"] = x.stage.empty() ? json(nullptr) : json(x.stage);
        o["level"] = x.level > 0 ? json(x.level) : json(nullptr);
        put(o, "gpu_power_w", x.gpu_power_w);
        put(o, "gpu_memory_used_mib", x.gpu_memory_used_mib);
        put(o, "gpu_util_pct", x.gpu_util_pct);
        put(o, "gpu_sm_clock_mhz", x.gpu_sm_clock_mhz);
        put(o, "cpu_package_power_w", x.cpu_package_power_w);
        put(o, "process_rss_mib", x.process_rss_mib);
        put(o, "process_cpu_s", x.process_cpu_s);
        put(o, "process_cpu_cores", x.process_cpu_cores);
        series.push_back(std::move(o));
    }
    j["series"] = std::move(series);
    return j;
}

std::vector<stage_summary> stage_summaries(const telemetry::series & s) {
    std::vector<stage_summary> out;
    for (const auto & span : s.stages) {
        // A stage may run twice (it never does in evaluate); its spans are summarized as one.
        if (std::any_of(out.begin(), out.end(), [&](const auto & o) { return o.stage == span.stage; })) continue;
        stage_summary r;
        r.stage = span.stage;
        mean_peak gpu_w, cpu_w, gpu_mem, rss, cores;
        for (const auto & sp : s.stages) {
            if (sp.stage == span.stage) r.seconds += sp.end_s - sp.start_s;
        }
        for (const auto & x : s.samples) {
            if (x.stage != span.stage) continue;
            ++r.n_samples;
            gpu_w.add(x.gpu_power_w);
            cpu_w.add(x.cpu_package_power_w);
            gpu_mem.add(x.gpu_memory_used_mib);
            rss.add(x.process_rss_mib);
            cores.add(x.process_cpu_cores);
        }
        r.gpu_power_mean_w = gpu_w.mean();
        r.gpu_power_peak_w = gpu_w.peak;
        r.cpu_package_power_mean_w = cpu_w.mean();
        r.cpu_package_power_peak_w = cpu_w.peak;
        r.gpu_memory_peak_mib = gpu_mem.peak;
        r.process_rss_peak_mib = rss.peak;
        r.process_cpu_cores_mean = cores.mean();
        out.push_back(r);
    }
    return out;
}

std::string telemetry_markdown(const telemetry::series & s) {
    std::string md = "### Telemetry During the Run\n\n";
    md += fmt::format("Sampled every {} ms from {} ({} samples{}); the series is in report.json (`telemetry`).\n",
                      fmtx::thousands(s.interval_s * 1e3, 0), s.sources.empty() ? std::string("no source") : fmt::format("{}", fmt::join(s.sources, ", ")),
                      fmtx::thousands(static_cast<int64_t>(s.samples_recorded)),
                      s.samples.size() < s.samples_recorded ? fmt::format(", {} kept", fmtx::thousands(static_cast<int64_t>(s.samples.size()))) : "");
    if (!s.has_power()) md += "\n" + esc::md_text(s.why_no_power()) + ".\n";
    const auto rows = stage_summaries(s);
    if (rows.empty()) return md + "\n";
    const auto w = [](const std::optional<double> & mean, const std::optional<double> & peak) {
        return mean ? fmt::format("{} / {} W", fmtx::thousands(*mean, 1), fmtx::thousands(*peak, 1)) : std::string("-");
    };
    const auto m = [](const std::optional<double> & v) { return v ? fmtx::thousands(*v, 0) + " MiB" : std::string("-"); };
    md += "\n| Stage | Time | Samples | GPU power (mean / peak) | CPU package power (mean / peak) | Peak GPU memory | Peak RSS | CPU cores busy (mean) |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto & r : rows) {
        md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", esc::md_text(r.stage), fmtx::duration(r.seconds), r.n_samples,
                          w(r.gpu_power_mean_w, r.gpu_power_peak_w), w(r.cpu_package_power_mean_w, r.cpu_package_power_peak_w),
                          m(r.gpu_memory_peak_mib), m(r.process_rss_peak_mib),
                          r.process_cpu_cores_mean ? fmtx::thousands(*r.process_cpu_cores_mean, 2) : std::string("-"));
    }
    return md + "\n";
}

std::string telemetry_html(const std::optional<telemetry::series> & s) {
    std::string h = "<h2>Telemetry during the run</h2>";
    if (!s || s->samples.empty()) {
        return h + "<p class=\"note\">No telemetry series: this report was written without a sampler running "
                   "(an older infermeter, or a run that ended before the first sample).</p>";
    }
    const auto samples = telemetry::decimate(s->samples, telemetry_chart_points);
    std::vector<svg::marker> stages;
    for (const auto & st : s->stages) stages.push_back({st.start_s, st.stage});
    h += "<p>" + svg::escape(fmt::format("Sampled every {} ms from {} ({} samples). Dashed lines mark where each stage began.",
                                         fmtx::thousands(s->interval_s * 1e3, 0),
                                         s->sources.empty() ? std::string("no source") : fmt::format("{}", fmt::join(s->sources, ", ")),
                                         fmtx::thousands(static_cast<int64_t>(s->samples_recorded)))) + "</p>";
    const auto line = [&](const std::string & name, const std::string & color, std::optional<double> telemetry::sample::*field) {
        svg::series out{name, color, {}, false, false};
        for (const auto & x : samples) {
            if (const auto & v = x.*field) out.points.emplace_back(x.t_s, *v);
        }
        return out;
    };
    const auto present = [](std::vector<svg::series> all) {
        all.erase(std::remove_if(all.begin(), all.end(), [](const auto & x) { return x.points.empty(); }), all.end());
        return all;
    };
    const svg::axis time{"seconds since the run started"};
    h += "<div class=\"charts\">";
    if (const auto power = present({line("GPU power (W)", "#d9480f", &telemetry::sample::gpu_power_w),
                                    line("CPU package power (W)", "#2463eb", &telemetry::sample::cpu_package_power_w)});
        !power.empty()) {
        h += svg::line_chart("Power over time", time, {"watts"}, power, 1120, 320, stages);
    } else {
        h += "<p class=\"note\">No power chart: " + svg::escape(s->why_no_power()) + ".</p>";
    }
    if (const auto memory = present({line("GPU memory used (MiB)", "#7048e8", &telemetry::sample::gpu_memory_used_mib),
                                     line("process RSS (MiB)", "#0f9d58", &telemetry::sample::process_rss_mib)});
        !memory.empty()) {
        h += svg::line_chart("Memory over time", time, {"MiB"}, memory, 1120, 320, stages);
    } else {
        h += "<p class=\"note\">No memory chart: neither NVML nor this process's resident memory could be read here.</p>";
    }
    return h + "</div>";
}

}  // namespace im::report
