#pragma once

#include "workload/split.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

// The split analysis section (workload::split_analysis; docs/metrics.md "Split analysis"): what crosses
// between devices per ubatch, the probed links, and per measured step its transfer time and share.
// One set of tables feeds Markdown (report.md, bench/parallel output), HTML and, as numbers, JSON.
namespace im::report {

struct text_table {
    std::vector<std::string> head;
    std::vector<std::vector<std::string>> rows;
    size_t n_left = 1;  // leading text columns (left-aligned); the rest are numbers
};

// The three tables: crossings (per ubatch), links, steps. Steps is empty before any step was attributed.
std::vector<text_table> split_tables(const workload::split_analysis & s);
// "## Split Analysis" with the devices, the tables and the notes (how the placement was known, links no
// probe measured, what "lost overlap / other" means).
std::string split_markdown(const workload::split_analysis & s);
std::string split_html(const workload::split_analysis & s);
// Seconds and bytes as numbers: {split_mode, devices, estimate, note, crossings[], links[], steps[]}.
nlohmann::ordered_json split_json(const workload::split_analysis & s);

}  // namespace im::report
