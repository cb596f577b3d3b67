#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

// One field list per result kind drives every writer (csv, json, jsonl, sql, and the SQLite store),
// so the formats cannot drift apart (the idea of llama-bench's test::get_fields, taken further).
namespace im::report {

enum class field_type { integer, real, text, boolean, integer_array, real_array };

struct field {
    std::string name;
    field_type type;
};

using value = std::variant<std::monostate, int64_t, double, std::string, bool, std::vector<int64_t>, std::vector<double>>;

// Rows of values in the order of `fields`. Missing values are std::monostate (null / empty).
struct table {
    std::string name;  // SQL table name: "bench", "parallel"
    std::vector<field> fields;
    std::vector<std::vector<value>> rows;

    size_t index_of(const std::string & field_name) const;  // IM_CHECK: the field exists (internal error otherwise)
    // Appends an empty row and returns it for set().
    std::vector<value> & add_row();
    void set(std::vector<value> & row, const std::string & field_name, value v) const;
    const value & get(size_t row, const std::string & field_name) const;
};

std::string sql_type(field_type t);

// A real, or null when it is not finite (an unbounded end of a prediction interval: empty in every writer).
value finite_or_null(double v);

// RFC 4180 quoting; text cells starting with = + - @ (a spreadsheet formula) get a leading ' (OWASP).
std::string to_csv(const table & t);
nlohmann::ordered_json to_json(const table & t);  // an array of objects, one per row
std::string to_jsonl(const table & t);
std::string to_sql(const table & t);               // CREATE TABLE IF NOT EXISTS + one INSERT per row

// Output formats of -o and of --export (by extension).
enum class format { md, csv, json, jsonl, sql };
format format_from_name(const std::string & name, const std::string & flag);
format format_from_path(const std::string & path, const std::string & flag);

}  // namespace im::report
