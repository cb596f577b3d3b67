#include "report/split.h"

#include "core/format.h"
#include "report/svg.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <set>

namespace im::report {

namespace {

std::string ms(double s, int decimals = 3) { return fmtx::thousands(s * 1e3, decimals); }
std::string mb_per_s(double b) { return b > 0 ? fmtx::thousands(b / 1e6, 1) : "n/a"; }

std::string bytes_text(double b) {
    if (b >= fmtx::mib) return fmtx::thousands(b / fmtx::mib, 2) + " MiB";
    if (b >= 1024) return fmtx::thousands(b / 1024, 1) + " KiB";
    return fmtx::thousands(static_cast<int64_t>(b)) + " B";
}

std::string link_name(const predict::link_rate & l) {
    return l.peer.empty() ? "host <-> " + l.device : l.device + " -> " + l.peer;
}

std::string legs_text(const predict::split_crossing & c) {
    std::vector<std::string> v;
    for (const auto & l : c.legs) {
        v.push_back(!l.peer.empty() ? l.device + " -> " + l.peer : l.up ? "host -> " + l.device : l.device + " -> host");
    }
    return fmt::format("{}", fmt::join(v, ", "));
}

std::vector<std::string> notes(const workload::split_analysis & s) {
    std::vector<std::string> n;
    n.push_back(fmt::format("Placement: {}{}.", s.plan.note, s.plan.estimate ? " (an estimate)" : ""));
    std::set<std::string> missing;
    for (const auto & st : s.steps) missing.insert(st.transfer.missing.begin(), st.transfer.missing.end());
    if (!missing.empty()) {
        n.push_back(fmt::format("Not probed, counted as 0: {}.", fmt::join(missing, ", ")));
    }
    n.push_back("Transfer = bytes crossing / the probed throughput of each link + round trips x its probed RTT; "
                "activations and logits cross as f32 (docs/metrics.md).");
    bool base = false;
    for (const auto & st : s.steps) base = base || st.baseline_s.has_value();
    if (base) {
        n.push_back(fmt::format("Single device: the same step in {}; lost overlap / other = step - single device - "
                                "transfer (negative: transfers overlapped with compute).", s.baseline_source));
    } else if (!s.steps.empty()) {
        n.push_back("No single-device run given (--split-baseline FILE, the -o json output of one): the rest of the "
                    "difference is not attributed.");
    }
    return n;
}

}  // namespace

std::vector<text_table> split_tables(const workload::split_analysis & s) {
    text_table crossings{{"from", "to", "what", "bytes per token", "scales with", "links crossed", "round trips / ubatch"}, {}, 3};
    for (const auto & c : s.plan.crossings) {
        crossings.rows.push_back({c.from, c.to, c.what, fmtx::thousands(static_cast<int64_t>(c.bytes_per_token)),
                                  c.per_output ? "outputs" : "tokens", legs_text(c),
                                  c.round_trips > 0 ? fmt::format("{} ({})", c.round_trips, c.rtt_device) : "0"});
    }
    text_table links{{"link", "RTT (ms)", "host -> device (MB/s)", "device -> host (MB/s)"}, {}};
    for (const auto & l : s.links) {
        links.rows.push_back({link_name(l), l.peer.empty() ? ms(l.rtt_s) : "", mb_per_s(l.up_bytes_per_s),
                              l.peer.empty() ? mb_per_s(l.down_bytes_per_s) : ""});
    }
    text_table steps{{"step", "step (ms)", "bytes crossing", "round trips", "transfer (ms)", "share of step",
                      "single device (ms)", "lost overlap / other (ms)"}, {}};
    for (const auto & st : s.steps) {
        steps.rows.push_back({st.step, ms(st.step_s), bytes_text(st.transfer.bytes), fmtx::thousands(int64_t{st.transfer.round_trips}),
                              ms(st.transfer.transfer_s()), fmtx::percent(st.share, 1),
                              st.baseline_s ? ms(*st.baseline_s) : "n/a", st.other_s ? ms(*st.other_s) : "n/a"});
    }
    return {crossings, links, steps};
}

std::string split_markdown(const workload::split_analysis & s) {
    const auto tables = split_tables(s);
    const auto md = [](const text_table & t) {
        std::string out = "| " + fmt::format("{}", fmt::join(t.head, " | ")) + " |\n|";
        for (size_t i = 0; i < t.head.size(); ++i) out += i < t.n_left ? "---|" : "---:|";
        out += "\n";
        for (const auto & r : t.rows) out += "| " + fmt::format("{}", fmt::join(r, " | ")) + " |\n";
        return out;
    };
    std::string out = fmt::format("## Split Analysis ({} split over {} devices)\n\n", s.split_mode, s.plan.n_devices);
    for (const auto & d : s.devices) out += "- " + d + "\n";
    out += "\nWhat crosses between devices per ubatch:\n\n" + md(tables[0]);
    out += "\nLinks (probed through ggml: median of tiny gets; 8 MiB sets and gets):\n\n" + md(tables[1]);
    if (!tables[2].rows.empty()) out += "\nPer measured step:\n\n" + md(tables[2]);
    out += "\n";
    for (const auto & n : notes(s)) out += n + "\n";
    return out;
}

std::string split_html(const workload::split_analysis & s) {
    const auto tables = split_tables(s);
    const auto html = [](const text_table & t) {
        std::string out = "<table><tr>";
        for (const auto & h : t.head) out += "<th>" + svg::escape(h) + "</th>";
        out += "</tr>";
        for (const auto & r : t.rows) {
            out += "<tr>";
            for (const auto & c : r) out += "<td>" + svg::escape(c) + "</td>";
            out += "</tr>";
        }
        return out + "</table>";
    };
    std::string out = fmt::format("<h2 id=\"split\">Split Analysis ({} split over {} devices)</h2><ul>", svg::escape(s.split_mode),
                                  s.plan.n_devices);
    for (const auto & d : s.devices) out += "<li>" + svg::escape(d) + "</li>";
    out += "</ul><p>What crosses between devices per ubatch</p>" + html(tables[0]) + "<p>Links</p>" + html(tables[1]);
    if (!tables[2].rows.empty()) out += "<p>Per measured step</p>" + html(tables[2]);
    for (const auto & n : notes(s)) out += "<p class=\"sub\">" + svg::escape(n) + "</p>";
    return out;
}

nlohmann::ordered_json split_json(const workload::split_analysis & s) {
    nlohmann::ordered_json j;
    j["split_mode"] = s.split_mode;
    j["n_devices"] = s.plan.n_devices;
    j["devices"] = s.devices;
    j["placement_estimated"] = s.plan.estimate;
    j["note"] = s.plan.note;
    // per decode token (one token, one output): what the script bench/rpc_links.sh reads
    j["decode_bytes_per_token"] = predict::bytes_per_step(s.plan, {1, 1, 1});
    j["decode_round_trips_per_step"] = predict::round_trips_per_step(s.plan, {1, 1, 1});
    auto & cs = j["crossings"] = nlohmann::ordered_json::array();
    for (const auto & c : s.plan.crossings) {
        nlohmann::ordered_json legs = nlohmann::ordered_json::array();
        for (const auto & l : c.legs) legs.push_back({{"device", l.device}, {"peer", l.peer}, {"up", l.up}});
        cs.push_back({{"from", c.from}, {"to", c.to}, {"what", c.what}, {"bytes_per_token", c.bytes_per_token},
                      {"per_output", c.per_output}, {"legs", legs}, {"round_trips", c.round_trips}, {"rtt_device", c.rtt_device}});
    }
    auto & ls = j["links"] = nlohmann::ordered_json::array();
    for (const auto & l : s.links) {
        ls.push_back({{"device", l.device}, {"peer", l.peer}, {"rtt_s", l.rtt_s}, {"up_bytes_per_s", l.up_bytes_per_s},
                      {"down_bytes_per_s", l.down_bytes_per_s}});
    }
    auto & ss = j["steps"] = nlohmann::ordered_json::array();
    for (const auto & st : s.steps) {
        nlohmann::ordered_json r{{"step", st.step}, {"step_s", st.step_s}, {"bytes", st.transfer.bytes},
                                 {"round_trips", st.transfer.round_trips}, {"bytes_s", st.transfer.bytes_s},
                                 {"round_trips_s", st.transfer.round_trips_s}, {"transfer_s", st.transfer.transfer_s()},
                                 {"share", st.share}};
        r["baseline_s"] = st.baseline_s ? nlohmann::ordered_json(*st.baseline_s) : nullptr;
        r["other_s"] = st.other_s ? nlohmann::ordered_json(*st.other_s) : nullptr;
        r["missing"] = st.transfer.missing;
        ss.push_back(r);
    }
    if (!s.baseline_source.empty()) j["baseline_source"] = s.baseline_source;
    return j;
}

}  // namespace im::report
