#include "engine/http/metrics.h"

#include "core/error.h"
#include "engine/http/client.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace im::engine::http {

namespace {

bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

void skip_blanks(std::string_view s, size_t & i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

// Go's strconv.ParseFloat as Prometheus writes it: decimal, exponent, NaN, +Inf, -Inf.
bool parse_value(std::string_view tok, double & out) {
    if (tok.empty()) return false;
    if (tok == "NaN") {
        out = std::nan("");
        return true;
    }
    if (tok == "+Inf" || tok == "Inf") {
        out = HUGE_VAL;
        return true;
    }
    if (tok == "-Inf") {
        out = -HUGE_VAL;
        return true;
    }
    for (char c : tok) {
        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) return false;
    }
    const std::string s(tok);
    char * end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end == s.c_str() + s.size();
}

// Reads `{a="x",b="y"}` starting at s[i] == '{'; returns the label pairs or false if malformed.
bool parse_labels(std::string_view s, size_t & i, std::vector<std::pair<std::string, std::string>> & labels) {
    ++i;  // '{'
    for (;;) {
        skip_blanks(s, i);
        if (i < s.size() && s[i] == '}') {
            ++i;
            return true;
        }
        size_t start = i;
        if (i >= s.size() || !name_start(s[i])) return false;
        while (i < s.size() && name_char(s[i])) ++i;
        std::string name(s.substr(start, i - start));
        skip_blanks(s, i);
        if (i >= s.size() || s[i] != '=') return false;
        ++i;
        skip_blanks(s, i);
        if (i >= s.size() || s[i] != '"') return false;
        ++i;
        std::string value;
        for (;;) {
            if (i >= s.size()) return false;
            const char c = s[i++];
            if (c == '"') break;
            if (c == '\\') {
                if (i >= s.size()) return false;
                const char e = s[i++];
                value.push_back(e == 'n' ? '\n' : e);
            } else {
                value.push_back(c);
            }
        }
        labels.emplace_back(std::move(name), std::move(value));
        skip_blanks(s, i);
        if (i < s.size() && s[i] == ',') ++i;
        else if (i < s.size() && s[i] == '}') continue;
        else return false;
    }
}

std::string escape_label(const std::string & v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out.push_back('\\');
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out.push_back(c);
    }
    return out;
}

}  // namespace

metrics_text parse_metrics(std::string_view text) {
    metrics_text r;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        std::string_view line = text.substr(pos, eol - pos);
        pos = eol + 1;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        size_t i = 0;
        skip_blanks(line, i);
        if (i == line.size()) continue;
        if (line[i] == '#') {
            // "# TYPE name kind"; HELP and other comments are skipped
            std::string_view rest = line.substr(i + 1);
            size_t j = 0;
            skip_blanks(rest, j);
            if (rest.substr(j, 5) == "TYPE ") {
                j += 5;
                skip_blanks(rest, j);
                const size_t ns = j;
                while (j < rest.size() && rest[j] != ' ' && rest[j] != '\t') ++j;
                std::string name(rest.substr(ns, j - ns));
                skip_blanks(rest, j);
                std::string kind(rest.substr(j));
                while (!kind.empty() && (kind.back() == ' ' || kind.back() == '\t')) kind.pop_back();
                if (!name.empty()) r.types[name] = kind;
            }
            continue;
        }
        if (!name_start(line[i])) {
            ++r.bad_lines;
            continue;
        }
        const size_t ns = i;
        while (i < line.size() && name_char(line[i])) ++i;
        std::string key(line.substr(ns, i - ns));
        std::vector<std::pair<std::string, std::string>> labels;
        if (i < line.size() && line[i] == '{') {
            if (!parse_labels(line, i, labels)) {
                ++r.bad_lines;
                continue;
            }
        }
        if (i >= line.size() || (line[i] != ' ' && line[i] != '\t')) {
            ++r.bad_lines;
            continue;
        }
        skip_blanks(line, i);
        size_t vs = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        double value = 0;
        if (!parse_value(line.substr(vs, i - vs), value)) {
            ++r.bad_lines;
            continue;
        }
        skip_blanks(line, i);
        if (i < line.size()) {  // an optional integer timestamp (ms), nothing else
            size_t ts = i;
            if (line[i] == '-') ++i;
            while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
            skip_blanks(line, i);
            if (i != line.size() || i == ts) {
                ++r.bad_lines;
                continue;
            }
        }
        if (!labels.empty()) {
            std::sort(labels.begin(), labels.end());
            key += '{';
            for (size_t k = 0; k < labels.size(); ++k) {
                if (k) key += ',';
                key += labels[k].first + "=\"" + escape_label(labels[k].second) + '"';
            }
            key += '}';
        }
        r.samples[key] = value;
    }
    return r;
}

metric_samples diff_metrics(const metric_samples & before, const metric_samples & after) {
    metric_samples d;
    for (const auto & [k, v] : after) {
        auto it = before.find(k);
        d[k] = it == before.end() ? v : v - it->second;
    }
    return d;
}

metrics_text scrape_metrics(const std::string & url, int64_t timeout_ms, const std::vector<std::string> & headers,
                            const std::string & api_key) {
    const plain_answer a = fetch_once(url, "", timeout_ms, headers, api_key);
    if (!a.ok) {
        throw_runtime("cannot read server metrics from {}: {} (check --metrics-url, or start llama-server with "
                      "--metrics)",
                      url, a.error);
    }
    if (a.status != 200) {
        throw_runtime("server metrics at {} answered HTTP {} (llama-server serves /metrics only with --metrics; "
                      "check --metrics-url)",
                      url, a.status);
    }
    return parse_metrics(a.body);
}

}  // namespace im::engine::http
