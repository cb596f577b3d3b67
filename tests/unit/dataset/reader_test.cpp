#include "core/error.h"
#include "dataset/reader.h"
#include "support/run.h"

#include <gtest/gtest.h>

using namespace im::dataset;

namespace {

struct read_all {
    std::vector<read_result> good, bad;
    std::string format;
};

read_all read_memory(const std::string & text, reader_options opts = {}) {
    record_reader rd(open_memory(text), std::move(opts));
    read_all out;
    read_result r;
    while (rd.next(r)) (r.ok ? out.good : out.bad).push_back(r);
    out.format = rd.format_description();
    return out;
}

read_all read_fixture(const std::string & name, reader_options opts = {}) {
    const auto path = im::test::data_path("dataset/" + name);
    opts.name = path.string();
    std::string ext = path.extension().string();
    if (ext == ".gz") ext = path.stem().extension().string();
    opts.extension = ext;
    record_reader rd(open_file(path), std::move(opts));
    read_all out;
    read_result r;
    while (rd.next(r)) (r.ok ? out.good : out.bad).push_back(r);
    out.format = rd.format_description();
    return out;
}

std::string error_of(const std::function<void()> & f) {
    try {
        f();
    } catch (const im::error & e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST(dataset_reader, alpaca_jsonl_joins_instruction_and_input) {
    const auto r = read_fixture("alpaca.jsonl");
    EXPECT_EQ(r.format, "alpaca (jsonl)");
    ASSERT_EQ(r.good.size(), 3u);
    EXPECT_TRUE(r.bad.empty());
    ASSERT_EQ(r.good[0].conv.size(), 2u);
    EXPECT_EQ(r.good[0].conv[0].content, "Say hello.");  // empty input: no "\n"
    EXPECT_EQ(r.good[0].conv[1].speaker, role::assistant);
    EXPECT_EQ(r.good[0].conv[1].content, "Hello world");
    EXPECT_EQ(r.good[1].conv[0].content, "Translate to French.\nGood morning");
    EXPECT_EQ(r.good[2].conv[0].content, "Count to three.");  // no input field at all
    EXPECT_EQ(r.good[2].line, 4u);                            // blank line 3 skipped, numbering kept
}

TEST(dataset_reader, alpaca_json_array_with_brackets_inside_strings) {
    const auto r = read_fixture("alpaca.json");
    EXPECT_EQ(r.format, "alpaca (json)");
    ASSERT_EQ(r.good.size(), 3u);
    EXPECT_EQ(r.good[1].conv[0].content, "Name a [bracket] and a \"quote\" inside strings, },{ too.");
    EXPECT_EQ(r.good[0].line, 2u);
    EXPECT_EQ(r.good[2].line, 12u);
}

TEST(dataset_reader, gzip_is_read_transparently) {
    const auto r = read_fixture("alpaca.jsonl.gz");
    EXPECT_EQ(r.format, "alpaca (jsonl)");
    EXPECT_EQ(r.good.size(), 3u);
}

TEST(dataset_reader, sharegpt_multi_turn_keeps_roles) {
    const auto r = read_fixture("sharegpt.json");
    EXPECT_EQ(r.format, "sharegpt (json)");
    ASSERT_EQ(r.good.size(), 3u);
    const auto & c = r.good[0].conv;
    ASSERT_EQ(c.size(), 5u);
    EXPECT_EQ(c[0].speaker, role::system);
    EXPECT_EQ(c[1].speaker, role::user);
    EXPECT_EQ(c[2].speaker, role::assistant);
    EXPECT_EQ(c[4].content, "Goodbye");
}

TEST(dataset_reader, openai_messages_with_content_parts) {
    const auto r = read_fixture("openai.jsonl");
    EXPECT_EQ(r.format, "openai (jsonl)");
    ASSERT_EQ(r.good.size(), 2u);
    EXPECT_EQ(r.good[1].conv[0].content, "Part one and two");
    EXPECT_EQ(r.good[0].conv[2].speaker, role::assistant);
}

TEST(dataset_reader, csv_quoted_newlines_commas_and_quotes) {
    const auto r = read_fixture("fields.csv");
    EXPECT_EQ(r.format, "fields prompt/response (csv)");
    ASSERT_EQ(r.good.size(), 3u) << (r.bad.empty() ? "" : r.bad[0].why);
    EXPECT_EQ(r.good[0].conv[0].content, "Hello, world");
    EXPECT_EQ(r.good[0].conv[1].content, "Line one\nline two");
    EXPECT_EQ(r.good[1].conv[1].content, "He said \"hi\"");
    EXPECT_EQ(r.good[1].line, 4u);
    EXPECT_EQ(r.good[2].conv[0].content, "multi\r\nline\r\nprompt");
    EXPECT_EQ(r.good[2].line, 6u);
}

TEST(dataset_reader, csv_with_alpaca_columns) {
    const auto r = read_fixture("alpaca.csv");
    EXPECT_EQ(r.format, "alpaca (csv)");
    ASSERT_EQ(r.good.size(), 2u);
    EXPECT_EQ(r.good[1].conv[0].content, "Translate\nGood morning");
}

TEST(dataset_reader, csv_row_with_wrong_cell_count_is_bad) {
    const auto r = read_memory("prompt,output\na,b\nc\nd,e\n", {format::csv});
    EXPECT_EQ(r.good.size(), 2u);
    ASSERT_EQ(r.bad.size(), 1u);
    EXPECT_EQ(r.bad[0].line, 3u);
    EXPECT_NE(r.bad[0].why.find("1 cells"), std::string::npos) << r.bad[0].why;
}

TEST(dataset_reader, common_field_names_are_detected) {
    const auto r = read_fixture("qa.jsonl");
    EXPECT_EQ(r.format, "fields question/answer (jsonl)");
    EXPECT_EQ(r.good.size(), 2u);
}

TEST(dataset_reader, unknown_fields_name_what_was_found_and_the_flags) {
    const std::string msg = error_of([] { read_fixture("custom.jsonl"); });
    EXPECT_NE(msg.find("q, a, meta"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--prompt-field"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--output-field"), std::string::npos) << msg;
    reader_options o;
    o.prompt_field = "q";
    o.output_field = "a";
    const auto r = read_fixture("custom.jsonl", o);
    EXPECT_EQ(r.good.size(), 2u);
    EXPECT_EQ(r.good[0].conv[1].content, "Four");
}

TEST(dataset_reader, given_field_missing_names_the_fields_found) {
    reader_options o;
    o.prompt_field = "question";
    o.output_field = "reply";
    const std::string msg = error_of([&] { read_fixture("qa.jsonl", o); });
    EXPECT_NE(msg.find("'reply'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("question, answer"), std::string::npos) << msg;
}

TEST(dataset_reader, forced_format_that_does_not_fit_is_an_error) {
    reader_options o;
    o.fmt = format::sharegpt;
    const std::string msg = error_of([&] { read_fixture("alpaca.jsonl", o); });
    EXPECT_NE(msg.find("conversations"), std::string::npos) << msg;
    EXPECT_NE(msg.find("instruction, input, output"), std::string::npos) << msg;
}

TEST(dataset_reader, malformed_lines_are_counted_with_line_numbers) {
    const auto r = read_fixture("broken.jsonl");
    EXPECT_EQ(r.good.size(), 8u);
    ASSERT_EQ(r.bad.size(), 2u);
    EXPECT_EQ(r.bad[0].line, 3u);
    EXPECT_EQ(r.bad[0].why, "not valid JSON");
    EXPECT_EQ(r.bad[1].line, 7u);
    EXPECT_EQ(r.bad[1].why, "not a JSON object");
}

TEST(dataset_reader, missing_output_in_one_record_is_a_bad_record) {
    const auto r = read_memory("{\"instruction\":\"a\",\"output\":\"b\"}\n{\"instruction\":\"c\"}\n"
                               "{\"instruction\":\"d\",\"output\":5}\n{\"instruction\":\"e\",\"output\":[1]}\n");
    EXPECT_EQ(r.good.size(), 2u);  // a number reads as its text
    ASSERT_EQ(r.bad.size(), 2u);
    EXPECT_EQ(r.bad[0].why, "no 'output' field");
    EXPECT_EQ(r.bad[1].why, "'output' is not a string");
}

TEST(dataset_reader, invalid_utf8_is_replaced_and_counted) {
    const auto r = read_fixture("non_utf8.jsonl");
    ASSERT_EQ(r.good.size(), 2u);
    EXPECT_EQ(r.good[0].n_utf8_replaced, 3u);
    EXPECT_EQ(r.good[0].conv[0].content, "Caf\xEF\xBF\xBD au lait?");
    EXPECT_EQ(r.good[1].n_utf8_replaced, 0u);
    EXPECT_EQ(r.good[1].conv[1].content, "Valid \xC3\xA9");
}

TEST(dataset_reader, sanitize_utf8_rejects_overlong_and_surrogates) {
    std::string s = "a\xC0\xAF" "b\xED\xA0\x80" "c\xF4\x90\x80\x80" "d\xF0\x9F\x98\x80";
    EXPECT_EQ(sanitize_utf8(s), 2u + 3u + 4u);
    EXPECT_EQ(s.substr(s.size() - 5), "d\xF0\x9F\x98\x80");
    std::string ok = "plain \xE2\x82\xAC";
    EXPECT_EQ(sanitize_utf8(ok), 0u);
}

TEST(dataset_reader, empty_input_has_no_records) {
    EXPECT_TRUE(read_fixture("empty.jsonl").good.empty());
    EXPECT_TRUE(read_memory("").good.empty());
    EXPECT_TRUE(read_memory("[]").good.empty());
    EXPECT_TRUE(read_memory("\n\n  \n").good.empty());
}

TEST(dataset_reader, unterminated_array_is_one_bad_record_naming_the_line) {
    // Issue 16 defect 6: a truncated array keeps the elements before the cut.
    const auto r = read_fixture("truncated.json");
    ASSERT_EQ(r.good.size(), 1u);
    ASSERT_EQ(r.bad.size(), 1u);
    EXPECT_EQ(r.bad[0].line, 3u);
    EXPECT_NE(r.bad[0].why.find("element 2"), std::string::npos) << r.bad[0].why;
    EXPECT_NE(r.bad[0].why.find("truncated"), std::string::npos) << r.bad[0].why;
}

TEST(dataset_reader, truncated_gzip_is_an_error) {
    const auto src = im::test::data_path("dataset/alpaca.jsonl.gz");
    const auto dir = im::test::temp_dir("gz-trunc");
    const auto path = dir / "cut.jsonl.gz";
    std::filesystem::copy_file(src, path);
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 20);
    const std::string msg = error_of([&] {
        record_reader rd(open_file(path), {format::auto_, "", "", path.string(), ".jsonl"});
        read_result r;
        while (rd.next(r)) {
        }
    });
    EXPECT_NE(msg.find("truncated or corrupt"), std::string::npos) << msg;
}

TEST(dataset_reader, missing_file_names_path_and_flag) {
    const std::string msg = error_of([] { open_file("/nonexistent/data.jsonl"); });
    EXPECT_NE(msg.find("/nonexistent/data.jsonl"), std::string::npos);
    EXPECT_NE(msg.find("--dataset"), std::string::npos);
}

TEST(dataset_reader, one_field_flag_without_the_other_is_a_usage_error) {
    try {
        record_reader rd(open_memory(""), {format::auto_, "prompt", "", "x", ""});
        FAIL();
    } catch (const im::error & e) {
        EXPECT_EQ(e.kind(), im::error_kind::usage);
    }
}

TEST(dataset_reader, parse_format_names) {
    EXPECT_EQ(parse_format("sharegpt"), format::sharegpt);
    EXPECT_EQ(std::string(format_name(format::csv)), "csv");
    EXPECT_THROW(parse_format("yaml"), im::error);
}
