#include "core/build_info.h"
#include "core/escape.h"
#include "core/format.h"
#include "dataset/analysis.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

namespace im::dataset {

namespace {

// A percentile as people read it: "2,088", or "2,087.5" when it falls between two samples.
std::string tokens_text(double v) {
    return std::fabs(v - std::round(v)) < 1e-9 ? fmtx::thousands(static_cast<int64_t>(std::llround(v)))
                                               : fmtx::thousands(v, 1);
}

// "~89%", or "<1%" / ">99%" rather than a rounded 0 or 100 that is not exact.
std::string approx_percent(double f) {
    if (f >= 1.0) return "100%";
    if (f <= 0.0) return "0%";
    if (f > 0.995) return ">99%";
    if (f < 0.005) return "<1%";
    return "~" + fmtx::percent(f);
}

const recommendation * find_scenario(const analysis & a, const char * name) {
    for (const auto & r : a.recommendations) {
        if (r.scenario == name) return &r;
    }
    return nullptr;
}

std::string title_case(const std::string & s) {
    std::string t = s;
    if (!t.empty()) t[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(t[0])));
    return t;
}

const char * use_case(const std::string & scenario) {
    if (scenario == "conservative") return "Quick benchmarks";
    if (scenario == "recommended") return "Standard evaluation";
    return "Thorough testing";
}

// "the smallest power of two", as the rationale lines say how n_predict was chosen.
std::string rounding_phrase(rounding r) {
    switch (r) {
        case rounding::multiple_128: return "the smallest multiple of 128";
        case rounding::exact:        return "the shortest length";
        default:                     return "the smallest power of two";
    }
}

std::string name_list(const std::vector<std::string> & names) {
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) {
        out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + names[i];
    }
    return out;
}

nlohmann::ordered_json stats_json(const length_stats & s) {
    nlohmann::ordered_json j;
    j["count"] = s.count;
    j["mean"] = s.mean;
    j["std"] = s.std ? nlohmann::ordered_json(*s.std) : nlohmann::ordered_json(nullptr);
    j["min"] = s.min;
    j["p50"] = s.p50;
    j["p75"] = s.p75;
    j["p90"] = s.p90;
    j["p95"] = s.p95;
    j["p99"] = s.p99;
    j["max"] = s.max;
    j["histogram"] = nlohmann::ordered_json::array();
    for (const auto & b : s.histogram) {
        j["histogram"].push_back({{"lo", b.lo_tokens}, {"hi", b.hi_tokens}, {"count", b.count}});
    }
    j["coverage"] = nlohmann::ordered_json::array();
    for (const auto & c : s.coverage) j["coverage"].push_back({{"tokens", c.tokens}, {"fraction", c.fraction}});
    return j;
}

// Bars of Unicode eighth blocks, `width` cells for the largest bin.
std::string histogram_text(const length_stats & s, int width = 40) {
    static const char * eighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    size_t peak = 1;
    for (const auto & b : s.histogram) peak = std::max(peak, b.count);
    // Labels are right-aligned by display width: "–" is three bytes but one column.
    const auto columns = [](const std::string & t) { return t.size() - (t.find("–") != std::string::npos ? 2 : 0); };
    size_t label_w = 0;
    std::vector<std::string> labels;
    for (const auto & b : s.histogram) {
        labels.push_back(b.hi_tokens - b.lo_tokens == 1
                             ? fmtx::thousands(b.lo_tokens)
                             : fmt::format("{} – {}", fmtx::thousands(b.lo_tokens), fmtx::thousands(b.hi_tokens - 1)));
        label_w = std::max(label_w, columns(labels.back()));
    }
    std::string out;
    for (size_t i = 0; i < s.histogram.size(); ++i) {
        const auto & b = s.histogram[i];
        const auto eighth_cells = static_cast<int>(std::lround(static_cast<double>(b.count) / static_cast<double>(peak) *
                                                               width * 8));
        std::string bar;
        for (int k = 0; k < eighth_cells / 8; ++k) bar += "█";
        bar += eighths[eighth_cells % 8];
        const int pad_bar = width - (eighth_cells + 7) / 8;
        out += fmt::format("{}{} │{}{}│ {}\n", std::string(label_w - columns(labels[i]), ' '), labels[i], bar,
                           std::string(static_cast<size_t>(std::max(0, pad_bar)), ' '),
                           fmtx::thousands(static_cast<int64_t>(b.count)));
    }
    return out;
}

}  // namespace

std::vector<std::string> rationale_for(const analysis & a) {
    std::vector<std::string> lines;
    const auto * rec = find_scenario(a, "recommended");
    const auto * low = find_scenario(a, "conservative");
    const auto * high = find_scenario(a, "comprehensive");
    if (!rec || !low || !high) return lines;
    const auto & p = a.prompt_tokens;
    const auto & o = a.output_tokens;

    const std::string what = a.format == "alpaca" ? "Instructions" : "Prompts";
    const double headroom = p.mean > 0 ? rec->n_prompt / p.mean : 0.0;
    if (rec->prompt_coverage >= 0.99 && headroom >= 1.5) {
        lines.push_back(fmt::format("{} average ~{} tokens; {} provides comfortable headroom (covers {} of prompts, "
                                    "90th percentile: {})",
                                    what, fmtx::thousands(static_cast<int64_t>(std::llround(p.mean))), rec->n_prompt,
                                    approx_percent(rec->prompt_coverage), tokens_text(p.p90)));
    } else {
        lines.push_back(fmt::format("{} average ~{} tokens (90th percentile: {}); {} is the next power of two and "
                                    "covers {} of prompts",
                                    what, fmtx::thousands(static_cast<int64_t>(std::llround(p.mean))),
                                    tokens_text(p.p90), rec->n_prompt, approx_percent(rec->prompt_coverage)));
    }
    lines.push_back(fmt::format("{} tokens covers {} of outputs (90th percentile: {}): {} that covers at least {}",
                                rec->n_predict, approx_percent(rec->coverage), tokens_text(o.p90),
                                rounding_phrase(a.round), fmtx::percent(rec->target_coverage)));
    if (high->n_predict > rec->n_predict) {
        lines.push_back(fmt::format("Balances dataset coverage with benchmark execution speed: {} would cover {} but "
                                    "take {}x as long to generate per request",
                                    high->n_predict, approx_percent(high->coverage),
                                    fmtx::thousands(static_cast<double>(high->n_predict) / rec->n_predict, 0)));
    }
    const int per_seq = rec->n_prompt + rec->n_predict;
    int ctx = 1;
    while (ctx < per_seq) ctx *= 2;
    lines.push_back(fmt::format("{}: {} + {} = {} tokens per sequence fits a {}-token context",
                                a.round == rounding::pow2 ? "Powers of two, as llama-bench uses them" : "Per sequence",
                                rec->n_prompt, rec->n_predict, fmtx::thousands(static_cast<int64_t>(per_seq)),
                                fmtx::thousands(static_cast<int64_t>(ctx))));
    if (o.max > high->n_predict) {
        lines.push_back(fmt::format("The longest output has {} tokens: {} of outputs exceed even {}",
                                    fmtx::thousands(o.max), approx_percent(1.0 - high->coverage), high->n_predict));
    }
    if (o.count < 100) {
        lines.push_back(fmt::format("Only {} samples: the percentiles behind these numbers are rough", o.count));
    }
    if (a.bad_records > 0) {
        lines.push_back(fmt::format("{} malformed record{} skipped ({} of the file)", a.bad_records,
                                    a.bad_records == 1 ? " was" : "s were",
                                    fmtx::percent(static_cast<double>(a.bad_records) /
                                                      static_cast<double>(a.bad_records + a.records), 1)));
    }
    return lines;
}

nlohmann::ordered_json to_json(const analysis & a) {
    nlohmann::ordered_json j;
    j["schema_version"] = analysis_schema_version;
    j["infermeter_version"] = build_info::version();
    j["llama_cpp_commit"] = build_info::llama_commit();
    auto & d = j["dataset"];
    d["path"] = a.path.string();
    d["format"] = a.format;
    d["format_description"] = a.format_description;
    d["records"] = a.records;
    d["bad_records"] = a.bad_records;
    d["bad_lines"] = a.bad_lines;
    d["samples"] = a.output_lengths.size();
    d["records_without_output"] = a.records_without_output;
    d["utf8_replaced_records"] = a.utf8_records;
    d["bytes"] = a.bytes;
    d["file_bytes"] = a.file_bytes;
    d["interrupted"] = a.interrupted;
    auto & t = j["tokenizer"];
    t["vocab"] = a.tokenizer_name;
    t["type"] = a.tokenizer_type;
    t["n_vocab"] = a.n_vocab;
    t["chat_template"] = a.chat_template;
    t["special_tokens"] = a.chat_template ? "template markers counted" : "none added";
    j["prompt_tokens"] = stats_json(a.prompt_tokens);
    j["output_tokens"] = stats_json(a.output_tokens);
    j["recommendations"] = nlohmann::ordered_json::array();
    for (const auto & r : a.recommendations) {
        nlohmann::ordered_json e;
        e["scenario"] = r.scenario;
        e["n_prompt"] = r.n_prompt;
        e["n_predict"] = r.n_predict;
        e["coverage"] = r.coverage;
        e["target_coverage"] = r.target_coverage;
        e["prompt_coverage"] = r.prompt_coverage;
        e["same_as"] = r.same_as.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(r.same_as);
        j["recommendations"].push_back(e);
    }
    j["rounding"] = rounding_name(a.round);
    j["notes"] = merge_notes(a);
    j["rationale"] = a.rationale;
    j["timing"] = {{"seconds", a.seconds}, {"bytes_per_s", a.bytes_per_s}, {"threads", a.n_threads}};
    return j;
}

std::vector<std::string> merge_notes(const analysis & a) {
    std::vector<std::string> notes;
    for (const auto & first : a.recommendations) {
        if (!first.same_as.empty()) continue;
        std::vector<std::string> names{title_case(first.scenario)};
        std::vector<std::string> targets{fmtx::percent(first.target_coverage)};
        for (const auto & r : a.recommendations) {
            if (r.same_as == first.scenario) {
                names.push_back(title_case(r.scenario));
                targets.push_back(fmtx::percent(r.target_coverage));
            }
        }
        if (names.size() < 2) continue;
        notes.push_back(fmt::format("{} come out identical: {}, {} that covers {} of outputs, covers {}, which meets "
                                    "{} targets",
                                    name_list(names), first.n_predict, rounding_phrase(a.round), targets.front(),
                                    first.coverage >= 1.0 ? std::string("100%")
                                                          : fmt::format("{} ({})", approx_percent(first.coverage),
                                                                        fmtx::percent(first.coverage, 1)),
                                    names.size() == 2 ? "both" : "all their"));
    }
    return notes;
}

std::string to_markdown(const analysis & a, bool with_title) {
    std::string md = with_title ? "# Dataset Analysis\n\n" : "";
    md += fmt::format("**Dataset:** {} — {}, {} records, {} samples, {} malformed{}\n", esc::md_code(a.path.string()),
                      esc::md_text(a.format_description), fmtx::thousands(static_cast<int64_t>(a.records)),
                      fmtx::thousands(static_cast<int64_t>(a.output_lengths.size())),
                      fmtx::thousands(static_cast<int64_t>(a.bad_records)),
                      a.interrupted ? " (INTERRUPTED: partial)" : "");
    md += fmt::format("**Tokenizer:** {} ({}, {} tokens), {}\n\n", esc::md_text(a.tokenizer_name), esc::md_text(a.tokenizer_type),
                      fmtx::thousands(static_cast<int64_t>(a.n_vocab)),
                      a.chat_template ? "prompts with the chat template applied" : "no chat template, no special tokens");

    if (const auto * rec = find_scenario(a, "recommended")) {
        md += "## Recommended Parameters\n\n";
        md += fmt::format("**Prompt Length (`--n-prompt`):** {} tokens\n", rec->n_prompt);
        md += fmt::format("**Output Length (`--n-predict`):** {} tokens\n\n", rec->n_predict);
    }
    md += "### Rationale\n\n";
    for (const auto & l : a.rationale) md += "- " + l + "\n";
    md += "\n## Parameter Options\n\n";
    md += "| Scenario | n-prompt | n-predict | Coverage | Use Case |\n";
    md += "|----------|----------|-----------|----------|----------|\n";
    for (const auto & r : a.recommendations) {
        if (!r.same_as.empty()) continue;
        std::vector<std::string> names{title_case(r.scenario)}, targets{fmtx::percent(r.target_coverage)},
            uses{use_case(r.scenario)};
        for (const auto & m : a.recommendations) {
            if (m.same_as != r.scenario) continue;
            names.push_back(title_case(m.scenario));
            targets.push_back(fmtx::percent(m.target_coverage));
            uses.push_back(use_case(m.scenario));
        }
        md += fmt::format("| **{}** | {} | {} | {} of outputs (target{} {}) | {} |\n", fmt::join(names, " / "), r.n_prompt,
                          r.n_predict, approx_percent(r.coverage), targets.size() > 1 ? "s" : "",
                          fmt::join(targets, ", "), fmt::join(uses, "; "));
    }
    for (const auto & note : merge_notes(a)) md += "\n*Note:* " + note + ".\n";

    const auto & p = a.prompt_tokens;
    const auto & o = a.output_tokens;
    md += "\n## Token Length Statistics\n\n";
    md += "| Statistic | Prompt tokens | Output tokens |\n|-----------|--------------:|--------------:|\n";
    const auto row = [&](const char * name, const std::string & x, const std::string & y) {
        md += fmt::format("| {} | {} | {} |\n", name, x, y);
    };
    row("Samples", fmtx::thousands(static_cast<int64_t>(p.count)), fmtx::thousands(static_cast<int64_t>(o.count)));
    row("Mean", fmtx::thousands(p.mean, 1), fmtx::thousands(o.mean, 1));
    row("Std", p.std ? fmtx::thousands(*p.std, 1) : "n/a", o.std ? fmtx::thousands(*o.std, 1) : "n/a");
    row("Min", fmtx::thousands(p.min), fmtx::thousands(o.min));
    row("P50", tokens_text(p.p50), tokens_text(o.p50));
    row("P75", tokens_text(p.p75), tokens_text(o.p75));
    row("P90", tokens_text(p.p90), tokens_text(o.p90));
    row("P95", tokens_text(p.p95), tokens_text(o.p95));
    row("P99", tokens_text(p.p99), tokens_text(o.p99));
    row("Max", fmtx::thousands(p.max), fmtx::thousands(o.max));

    md += "\n### Coverage\n\nFraction of samples with at most this many tokens.\n\n";
    md += "| Tokens | Prompts | Outputs |\n|-------:|--------:|--------:|\n";
    for (size_t i = 0; i < p.coverage.size() && i < o.coverage.size(); ++i) {
        md += fmt::format("| {} | {} | {} |\n", fmtx::thousands(p.coverage[i].tokens),
                          fmtx::percent(p.coverage[i].fraction, 1), fmtx::percent(o.coverage[i].fraction, 1));
        if (p.coverage[i].fraction >= 1.0 && o.coverage[i].fraction >= 1.0) break;
    }

    md += "\n### Prompt length histogram (tokens)\n\n```\n" + histogram_text(p) + "```\n";
    md += "\n### Output length histogram (tokens)\n\n```\n" + histogram_text(o) + "```\n";
    return md;
}

}  // namespace im::dataset
