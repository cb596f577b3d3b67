#include "report/table.h"

#include "core/error.h"
#include "core/escape.h"

#include <fmt/format.h>

#include <cmath>


namespace im::report {

size_t table::index_of(const std::string & field_name) const {
    for (size_t i = 0; i < fields.size(); ++i) {
        if (fields[i].name == field_name) return i;
    }
    IM_CHECK(false, fmt::format("table '{}' has no field '{}'", name, field_name));
    return 0;
}

std::vector<value> & table::add_row() {
    rows.emplace_back(fields.size());
    return rows.back();
}

void table::set(std::vector<value> & row, const std::string & field_name, value v) const {
    row[index_of(field_name)] = std::move(v);
}

const value & table::get(size_t row, const std::string & field_name) const { return rows[row][index_of(field_name)]; }

value finite_or_null(double v) { return std::isfinite(v) ? value(v) : value(std::monostate{}); }

std::string sql_type(field_type t) {
    switch (t) {
        case field_type::integer:
        case field_type::boolean: return "INTEGER";
        case field_type::real:    return "REAL";
        default:                  return "TEXT";
    }
}

namespace {

std::string real_text(double d) { return fmt::format("{}", d); }

template <typename T> std::string join_array(const std::vector<T> & v) {
    std::string out;
    for (const auto & x : v) out += (out.empty() ? "" : " ") + fmt::format("{}", x);
    return out;
}

// Plain text of a value, as csv and sql print it (arrays space-separated, like llama-bench).
std::string text_of(const value & v) {
    return std::visit(
        [](const auto & x) -> std::string {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::monostate>) return "";
            else if constexpr (std::is_same_v<T, int64_t>) return std::to_string(x);
            else if constexpr (std::is_same_v<T, double>) return real_text(x);
            else if constexpr (std::is_same_v<T, std::string>) return x;
            else if constexpr (std::is_same_v<T, bool>) return x ? "1" : "0";
            else return join_array(x);
        },
        v);
}

nlohmann::ordered_json json_of(const value & v) {
    return std::visit(
        [](const auto & x) -> nlohmann::ordered_json {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::monostate>) return nullptr;
            else return x;
        },
        v);
}

std::string csv_escape(const std::string & s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::string sql_escape(const std::string & s) {
    std::string out;
    for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out;
}

}  // namespace

std::string to_csv(const table & t) {
    std::string out;
    for (size_t i = 0; i < t.fields.size(); ++i) out += (i ? "," : "") + t.fields[i].name;
    out += "\n";
    for (const auto & row : t.rows) {
        for (size_t i = 0; i < row.size(); ++i) {
            // Text cells cannot start a spreadsheet formula; numbers are written as numbers.
            const bool text = std::holds_alternative<std::string>(row[i]);
            out += (i ? "," : "") + csv_escape(text ? esc::csv_formula_safe(text_of(row[i])) : text_of(row[i]));
        }
        out += "\n";
    }
    return out;
}

nlohmann::ordered_json to_json(const table & t) {
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    for (const auto & row : t.rows) {
        nlohmann::ordered_json obj;
        for (size_t i = 0; i < row.size(); ++i) obj[t.fields[i].name] = json_of(row[i]);
        arr.push_back(std::move(obj));
    }
    return arr;
}

std::string to_jsonl(const table & t) {
    std::string out;
    for (const auto & obj : to_json(t)) out += obj.dump() + "\n";
    return out;
}

std::string to_sql(const table & t) {
    std::string out = fmt::format("CREATE TABLE IF NOT EXISTS {} (\n", t.name);
    for (size_t i = 0; i < t.fields.size(); ++i) {
        out += fmt::format("  {} {}{}\n", t.fields[i].name, sql_type(t.fields[i].type), i + 1 < t.fields.size() ? "," : "");
    }
    out += ");\n\n";
    std::string names;
    for (size_t i = 0; i < t.fields.size(); ++i) names += (i ? ", " : "") + t.fields[i].name;
    for (const auto & row : t.rows) {
        std::string vals;
        for (size_t i = 0; i < row.size(); ++i) {
            const bool null = std::holds_alternative<std::monostate>(row[i]);
            vals += (i ? ", " : "") + (null ? std::string("NULL") : "'" + sql_escape(text_of(row[i])) + "'");
        }
        out += fmt::format("INSERT INTO {} ({}) VALUES ({});\n", t.name, names, vals);
    }
    return out;
}

format format_from_name(const std::string & name, const std::string & flag) {
    if (name == "md" || name == "markdown") return format::md;
    if (name == "csv") return format::csv;
    if (name == "json") return format::json;
    if (name == "jsonl") return format::jsonl;
    if (name == "sql") return format::sql;
    throw_usage("{}: unknown output format '{}' (md, csv, json, jsonl, sql)", flag, name);
}

format format_from_path(const std::string & path, const std::string & flag) {
    const size_t dot = path.rfind('.');
    if (dot == std::string::npos) {
        throw_usage("{} {}: cannot tell the format without an extension (.md, .csv, .json, .jsonl, .sql)", flag, path);
    }
    return format_from_name(path.substr(dot + 1), flag);
}

}  // namespace im::report
