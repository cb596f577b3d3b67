#include "dataset/reader.h"

#include "core/error.h"
#include "core/log.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <utility>

namespace im::dataset {

using json = nlohmann::ordered_json;

namespace {

constexpr std::array<std::pair<format, const char *>, 7> format_names{{
    {format::auto_, "auto"},
    {format::alpaca, "alpaca"},
    {format::sharegpt, "sharegpt"},
    {format::openai, "openai"},
    {format::jsonl, "jsonl"},
    {format::json, "json"},
    {format::csv, "csv"},
}};

// Field pairs seen in public instruction datasets, tried in order when no fields are given.
constexpr std::array<std::pair<const char *, const char *>, 9> common_fields{{
    {"prompt", "response"},
    {"prompt", "completion"},
    {"prompt", "output"},
    {"question", "answer"},
    {"query", "response"},
    {"input", "output"},
    {"instruction", "response"},
    {"instruction", "answer"},
    {"prompt", "chosen"},
}};

std::string field_names(const json & obj) {
    std::string out;
    for (auto it = obj.begin(); it != obj.end(); ++it) out += (out.empty() ? "" : ", ") + it.key();
    return out.empty() ? "none" : out;
}

// Text of a message's content: a string, or OpenAI's list of parts ({"type":"text","text":...}).
bool content_text(const json & v, std::string & out) {
    if (v.is_string()) {
        out = v.get_ref<const std::string &>();
        return true;
    }
    if (v.is_null()) {
        out.clear();
        return true;
    }
    if (v.is_array()) {
        out.clear();
        for (const auto & part : v) {
            if (part.is_string()) {
                out += part.get_ref<const std::string &>();
            } else if (part.is_object() && part.contains("text") && part["text"].is_string()) {
                out += part["text"].get_ref<const std::string &>();
            }
        }
        return true;
    }
    return false;
}

role role_from(const std::string & name) {
    if (name == "gpt" || name == "assistant" || name == "chatgpt" || name == "bing" || name == "bard" ||
        name == "model") {
        return role::assistant;
    }
    if (name == "system") return role::system;
    return role::user;  // human, user, tool, function, observation: context the model reads
}

}  // namespace

const char * format_name(format f) {
    for (const auto & [k, n] : format_names) {
        if (k == f) return n;
    }
    return "?";
}

format parse_format(const std::string & name) {
    for (const auto & [k, n] : format_names) {
        if (name == n) return k;
    }
    throw_usage("--format: unknown format '{}' (one of: auto, alpaca, sharegpt, openai, jsonl, json, csv)", name);
}

record_reader::record_reader(std::unique_ptr<byte_source> src, reader_options opts)
    : src_(std::move(src)), opts_(std::move(opts)), in_(*src_), array_(in_, opts_.max_record_bytes) {
    if (opts_.max_record_bytes < 1024) {
        throw_usage("--max-record-bytes {}: give at least 1024", opts_.max_record_bytes);
    }
    if (opts_.prompt_field.empty() != opts_.output_field.empty()) {
        throw_usage("--prompt-field and --output-field go together (given: {})",
                    opts_.prompt_field.empty() ? "--output-field" : "--prompt-field");
    }
    prompt_field_ = opts_.prompt_field;
    output_field_ = opts_.output_field;
}

void record_reader::detect_container() {
    // Text datasets never hold NUL: a file that starts with one is binary, UTF-16 or /dev/zero, and
    // reading on would only count garbage.
    if (in_.peek() == 0) {
        throw_runtime("dataset {} is not UTF-8 text (its first byte is NUL: a binary or UTF-16 file?); --dataset "
                      "takes .jsonl, .json or .csv", opts_.name);
    }
    switch (opts_.fmt) {
        case format::jsonl: container_ = container::jsonl; break;
        case format::csv: container_ = container::csv; break;
        case format::json: container_ = container::json_array; break;
        default:
            if (opts_.extension == ".csv") {
                container_ = container::csv;
            } else if (opts_.extension == ".jsonl" || opts_.extension == ".ndjson") {
                container_ = container::jsonl;
            }
            break;
    }
    if (container_ == container::json_array) {
        if (!array_.open() && in_.peek() != '{') {
            throw_runtime("dataset {}: --format json expects a JSON array ('[' first) or objects ('{{'); use "
                          "--format jsonl for one record per line", opts_.name);
        }
        return;
    }
    if (container_ != container::unknown) return;
    // By content: '[' opens a JSON array, '{' a JSON Lines file (in a .json file: one or more JSON
    // objects, pretty-printed or not); anything else is read as CSV.
    if (array_.open()) {
        container_ = container::json_array;
        return;
    }
    if (in_.peek() == '{' && opts_.extension == ".json") {
        container_ = container::json_array;  // document mode: open() found no '['
        return;
    }
    const int c = in_.peek();
    container_ = (c == '{' || c < 0) ? container::jsonl : container::csv;
    if (container_ == container::csv && opts_.fmt != format::auto_ && opts_.fmt != format::csv) {
        container_ = container::jsonl;  // a forced JSON schema: report bad lines rather than guess CSV
    }
}

bool record_reader::next_raw(raw_record & rec) {
    if (container_ == container::unknown) detect_container();
    switch (container_) {
        case container::jsonl: return next_json_line(in_, rec, opts_.max_record_bytes);
        case container::json_array: return array_.next(rec);
        case container::csv: return next_csv_row(in_, rec, opts_.max_record_bytes);
        case container::unknown: break;
    }
    return false;
}

void record_reader::detect_schema(const json & first, size_t line) {
    const auto has = [&](const char * k) { return first.contains(k); };
    const std::string hint = "pass --prompt-field FIELD --output-field FIELD, or --format alpaca|sharegpt|openai";
    if (!prompt_field_.empty()) {
        if (!first.contains(prompt_field_) || !first.contains(output_field_)) {
            throw_runtime("dataset {}: the first record (line {}) has no '{}' field (fields found: {}); fix "
                          "--prompt-field/--output-field",
                          opts_.name, line, first.contains(prompt_field_) ? output_field_ : prompt_field_,
                          field_names(first));
        }
        schema_ = schema::fields;
        return;
    }
    const bool is_csv = container_ == container::csv;
    switch (opts_.fmt) {
        case format::alpaca:
            if (!has("instruction") || !has("output")) {
                throw_runtime("dataset {}: --format alpaca needs 'instruction' and 'output' fields, the first record "
                              "(line {}) has: {}; {}",
                              opts_.name, line, field_names(first), hint);
            }
            schema_ = schema::alpaca;
            return;
        case format::sharegpt:
            if (is_csv || !has("conversations")) {
                throw_runtime("dataset {}: --format sharegpt needs a 'conversations' field, the first record (line "
                              "{}) has: {}; {}",
                              opts_.name, line, field_names(first), hint);
            }
            schema_ = schema::sharegpt;
            return;
        case format::openai:
            if (is_csv || !has("messages")) {
                throw_runtime("dataset {}: --format openai needs a 'messages' field, the first record (line {}) has: "
                              "{}; {}",
                              opts_.name, line, field_names(first), hint);
            }
            schema_ = schema::openai;
            return;
        default: break;
    }
    if (!is_csv && has("conversations") && first["conversations"].is_array()) {
        schema_ = schema::sharegpt;
    } else if (!is_csv && has("messages") && first["messages"].is_array()) {
        schema_ = schema::openai;
    } else if (has("instruction") && has("output")) {
        schema_ = schema::alpaca;
    } else {
        for (const auto & [p, o] : common_fields) {
            if (has(p) && has(o)) {
                prompt_field_ = p;
                output_field_ = o;
                schema_ = schema::fields;
                log::info("dataset {}: prompts from '{}', outputs from '{}' (set --prompt-field/--output-field "
                          "to choose others)",
                          opts_.name, p, o);
                return;
            }
        }
        throw_runtime("dataset {}: cannot tell prompts from outputs: the first record (line {}) has fields {}; {}",
                      opts_.name, line, field_names(first), hint);
    }
}

void record_reader::set_resync_check() {
    // After a damaged element the splitter resynchronises on an object holding this schema's keys,
    // not on one nested inside the damage (a ShareGPT turn, say).
    std::vector<std::string> keys;
    switch (schema_) {
        case schema::alpaca: keys = {"instruction", "output"}; break;
        case schema::sharegpt: keys = {"conversations"}; break;
        case schema::openai: keys = {"messages"}; break;
        case schema::fields: keys = {prompt_field_, output_field_}; break;
        case schema::unknown: return;
    }
    array_.set_accept([keys](const std::string & text) {
        if (json_too_deep(text)) return false;
        const json obj = json::parse(text, nullptr, false);
        if (!obj.is_object()) return false;
        return std::all_of(keys.begin(), keys.end(), [&](const std::string & k) { return obj.contains(k); });
    });
}

bool record_reader::extract(const json & obj, read_result & r) const {
    r.conv.clear();
    const auto text_field = [&](const std::string & key, bool required, std::string & out) {
        const auto it = obj.find(key);
        if (it == obj.end() || it->is_null()) {
            if (required) r.why = "no '" + key + "' field";
            out.clear();
            return !required;
        }
        if (it->is_string()) {
            out = it->get_ref<const std::string &>();
            return true;
        }
        if (it->is_number() || it->is_boolean()) {
            out = it->dump();
            return true;
        }
        r.why = "'" + key + "' is not a string";
        return false;
    };
    switch (schema_) {
        case schema::alpaca: {
            std::string instruction, input, output;
            if (!text_field("instruction", true, instruction) || !text_field("input", false, input) ||
                !text_field("output", true, output)) {
                return false;
            }
            if (!input.empty()) instruction += "\n" + input;  // DESIGN §2.1
            r.conv.push_back({role::user, std::move(instruction)});
            r.conv.push_back({role::assistant, std::move(output)});
            return true;
        }
        case schema::fields: {
            std::string prompt, output;
            if (!text_field(prompt_field_, true, prompt) || !text_field(output_field_, true, output)) return false;
            r.conv.push_back({role::user, std::move(prompt)});
            r.conv.push_back({role::assistant, std::move(output)});
            return true;
        }
        case schema::sharegpt:
        case schema::openai: {
            const bool sharegpt = schema_ == schema::sharegpt;
            const char * list_key = sharegpt ? "conversations" : "messages";
            const auto it = obj.find(list_key);
            if (it == obj.end() || !it->is_array()) {
                r.why = std::string("no '") + list_key + "' list";
                return false;
            }
            // ShareGPT variants use from/value or role/content; accept both in either format.
            if (sharegpt && obj.contains("system") && obj["system"].is_string() &&
                !obj["system"].get_ref<const std::string &>().empty()) {
                r.conv.push_back({role::system, obj["system"].get<std::string>()});
            }
            for (const auto & m : *it) {
                if (!m.is_object()) {
                    r.why = std::string("an entry of '") + list_key + "' is not an object";
                    return false;
                }
                const auto from = m.find(m.contains("from") ? "from" : "role");
                const auto value = m.find(m.contains("value") ? "value" : "content");
                message msg;
                if (from == m.end() || !from->is_string() || value == m.end() || !content_text(*value, msg.content)) {
                    r.why = sharegpt ? "a turn lacks 'from'/'value'" : "a message lacks 'role'/'content'";
                    return false;
                }
                msg.speaker = role_from(from->get_ref<const std::string &>());
                r.conv.push_back(std::move(msg));
            }
            return true;
        }
        case schema::unknown: break;
    }
    return false;
}

bool record_reader::next(read_result & r) {
    r = read_result{};
    const bool got = next_raw(raw_);
    if (in_.stopped() || !got) return false;
    r.line = raw_.line;
    const std::string where = raw_.element == 0 ? std::string()
                              : fmt::format("{} {}: ", array_.open_array() ? "element" : "object", raw_.element);
    if (raw_.oversize) {
        r.why = fmt::format("{}{} bytes, longer than --max-record-bytes {}", where, raw_.bytes, opts_.max_record_bytes);
        return true;
    }
    if (!raw_.error.empty()) {
        r.why = where + raw_.error;
        return true;
    }
    json obj;
    if (container_ == container::csv) {
        for (auto & f : raw_.fields) r.n_utf8_replaced += sanitize_utf8(f);
        if (csv_header_.empty()) {
            csv_header_ = std::move(raw_.fields);
            if (!csv_header_.empty() && csv_header_[0].rfind("\xEF\xBB\xBF", 0) == 0) csv_header_[0].erase(0, 3);
            json header = json::object();
            for (const auto & h : csv_header_) header[h] = "";
            detect_schema(header, raw_.line);
            return next(r);
        }
        if (raw_.fields.size() != csv_header_.size()) {
            r.why = "has " + std::to_string(raw_.fields.size()) + " cells, the header has " +
                    std::to_string(csv_header_.size());
            return true;
        }
        obj = json::object();
        for (size_t i = 0; i < csv_header_.size(); ++i) obj[csv_header_[i]] = std::move(raw_.fields[i]);
    } else {
        r.n_utf8_replaced = sanitize_utf8(raw_.text);
        if (raw_.text.rfind("\xEF\xBB\xBF", 0) == 0) raw_.text.erase(0, 3);
        if (json_too_deep(raw_.text)) {
            r.why = fmt::format("{}nested deeper than {} levels", where, max_json_depth);
            return true;
        }
        obj = json::parse(raw_.text, nullptr, false);
        if (obj.is_discarded()) {
            r.why = where + "not valid JSON";
            return true;
        }
        if (!obj.is_object()) {
            r.why = where + "not a JSON object";
            return true;
        }
        if (schema_ == schema::unknown) {
            detect_schema(obj, raw_.line);
            set_resync_check();
        }
    }
    r.ok = extract(obj, r);
    return true;
}

std::string record_reader::format_key() const {
    switch (schema_) {
        case schema::alpaca: return "alpaca";
        case schema::sharegpt: return "sharegpt";
        case schema::openai: return "openai";
        default: break;
    }
    switch (container_) {
        case container::jsonl: return "jsonl";
        case container::json_array: return "json";
        case container::csv: return "csv";
        default: return "";
    }
}

std::string record_reader::format_description() const {
    std::string c;
    switch (container_) {
        case container::jsonl: c = "jsonl"; break;
        case container::json_array: c = "json"; break;
        case container::csv: c = "csv"; break;
        default: return "";
    }
    switch (schema_) {
        case schema::alpaca: return "alpaca (" + c + ")";
        case schema::sharegpt: return "sharegpt (" + c + ")";
        case schema::openai: return "openai (" + c + ")";
        case schema::fields: return "fields " + prompt_field_ + "/" + output_field_ + " (" + c + ")";
        default: return c;
    }
}

}  // namespace im::dataset
