#pragma once

#include "dataset/source.h"

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

// Dataset records as conversations, whatever the file's format (DESIGN §2.1). Streaming; one
// reader per file, not thread-safe.
namespace im::dataset {

// What --format accepts. alpaca/sharegpt/openai fix the record schema (the container — JSON Lines
// or a JSON array — is detected); jsonl/json/csv fix the container and detect the schema.
enum class format { auto_, alpaca, sharegpt, openai, jsonl, json, csv };

// "auto", "alpaca", ...; parse_format throws a usage error naming --format.
const char * format_name(format f);
format parse_format(const std::string & name);

enum class role { system, user, assistant };

struct message {
    role speaker = role::user;
    std::string content;
};

// One record: messages in order. Alpaca and field datasets are [user, assistant].
using conversation = std::vector<message>;

struct reader_options {
    format fmt = format::auto_;
    std::string prompt_field, output_field;  // both or neither; set: the generic field schema
    std::string name;                        // the dataset's name for messages (its path)
    std::string extension;                   // ".jsonl", ".json", ".csv" (".gz" already stripped); may be empty
    size_t max_record_bytes = default_max_record_bytes;  // --max-record-bytes: longer records are malformed
};

// One record read: either a conversation or the reason it was skipped.
struct read_result {
    size_t line = 0;             // 1-based line where the record starts
    bool ok = false;
    conversation conv;           // when ok
    std::string why;             // when !ok: "not valid JSON", "no 'output' field", ...
    size_t n_utf8_replaced = 0;  // invalid UTF-8 sequences replaced by U+FFFD in this record
};

class record_reader {
  public:
    // Throws a usage error when only one of prompt_field/output_field is given.
    record_reader(std::unique_ptr<byte_source> src, reader_options opts);

    // The next record; false at the end of the file, and once SIGINT/SIGTERM asked to stop. Throws a
    // runtime error when the schema cannot be told from the first record (naming the fields found and
    // --prompt-field/--output-field) and for a file that is not text (a NUL byte first). Malformed
    // records (bad JSON, longer than max_record_bytes, nested too deep, an array not closed) come
    // back with ok false and the reason.
    bool next(read_result & r);
    // True when reading stopped because SIGINT/SIGTERM asked it to.
    bool stopped() const { return in_.stopped(); }

    // "alpaca (jsonl)", "sharegpt (json)", "fields prompt/response (csv)"; "" before the first record.
    std::string format_description() const;
    // "alpaca", "sharegpt", "openai", "jsonl", "json", "csv": the --format value that reads the file.
    std::string format_key() const;
    uint64_t bytes_read() const { return in_.bytes_read(); }
    uint64_t position() const { return src_->position(); }

  private:
    enum class container { unknown, jsonl, json_array, csv };
    enum class schema { unknown, alpaca, sharegpt, openai, fields };

    bool next_raw(raw_record & rec);
    void detect_container();
    void detect_schema(const nlohmann::ordered_json & first, size_t line);
    bool extract(const nlohmann::ordered_json & object, read_result & r) const;
    void set_resync_check();

    std::unique_ptr<byte_source> src_;
    reader_options opts_;
    byte_reader in_;
    json_array_splitter array_;
    container container_ = container::unknown;
    schema schema_ = schema::unknown;
    std::string prompt_field_, output_field_;
    std::vector<std::string> csv_header_;
    raw_record raw_;
};

}  // namespace im::dataset
