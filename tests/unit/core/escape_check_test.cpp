// core/escape.h (issue 16 defect 7) and IM_CHECK (defect 8).
#include "core/error.h"
#include "core/escape.h"
#include "report/table.h"
#include "support/run.h"

#include <gtest/gtest.h>

TEST(escape, markdown_text_cannot_open_markup) {
    const std::string evil = "x<img src=x onerror=alert(1)>|[link](javascript:1)*b*_i_`c`\n# h";
    // Every character that could open markup is escaped; the newline would have started a heading.
    EXPECT_EQ(im::esc::md_text(evil), R"(x\<img src=x onerror=alert(1)\>\|\[link\](javascript:1)\*b\*\_i\_\`c\` \# h)");
    EXPECT_EQ(im::esc::md_text("qwen2 1.5B (Q4_K - Medium)"), "qwen2 1.5B (Q4\\_K - Medium)");
}

TEST(escape, markdown_code_span_holds_backticks) {
    EXPECT_EQ(im::esc::md_code("/m/a b.gguf"), "`/m/a b.gguf`");
    EXPECT_EQ(im::esc::md_code("a`b"), "``a`b``");
    EXPECT_EQ(im::esc::md_code("x``y`"), "``` x``y` ```");
    EXPECT_EQ(im::esc::md_code("a\nb"), "`a b`");
}

TEST(escape, html_entities) {
    EXPECT_EQ(im::esc::html("<script>\"&'"), "&lt;script&gt;&quot;&amp;&#39;");
}

// The quoted words, run through /bin/sh, come back unchanged: no expansion, no command.
TEST(escape, shell_quote_round_trips_through_sh) {
    const std::vector<std::string> words = {"infermeter", "bench", "-m", "/models/my model.gguf", "$(touch /tmp/pwned)",
                                            "it's", "a;b|c&d", "`id`", "", "--export=x.json", "tab\there"};
    EXPECT_EQ(im::esc::shell_quote("plain/path-1.gguf"), "plain/path-1.gguf");
    EXPECT_EQ(im::esc::shell_quote("it's"), "'it'\\''s'");
    const auto r = im::test::run_program("/bin/sh", {"-c", "for a in " + im::esc::shell_join(words) + "; do printf '%s\\n' \"$a\"; done"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string expected;
    for (const auto & w : words) expected += w + "\n";
    EXPECT_EQ(r.out, expected);
}

TEST(escape, csv_cells_cannot_start_a_formula_and_numbers_stay_numbers) {
    im::report::table t;
    t.name = "x";
    t.fields = {{"name", im::report::field_type::text}, {"value", im::report::field_type::real},
                {"count", im::report::field_type::integer}};
    auto & row = t.add_row();
    t.set(row, "name", std::string("=HYPERLINK(\"http://evil\",\"x\")"));
    t.set(row, "value", -1.5);
    t.set(row, "count", int64_t{-3});
    auto & row2 = t.add_row();
    t.set(row2, "name", std::string("@SUM(A1)"));
    const std::string csv = im::report::to_csv(t);
    EXPECT_NE(csv.find("\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\",-1.5,-3\n"), std::string::npos) << csv;
    EXPECT_NE(csv.find("'@SUM(A1)"), std::string::npos) << csv;
    for (const char * s : {"+1", "-x", "\tcmd", "\rcmd"}) EXPECT_EQ(im::esc::csv_formula_safe(s)[0], '\'') << s;
    EXPECT_EQ(im::esc::csv_formula_safe("qwen2"), "qwen2");
}

TEST(check, throws_an_internal_error_in_every_build) {
    try {
        IM_CHECK(1 + 1 == 3, "arithmetic");
        FAIL() << "IM_CHECK did not throw";
    } catch (const im::error & e) {
        EXPECT_EQ(e.kind(), im::error_kind::internal);
        EXPECT_NE(std::string(e.what()).find("arithmetic"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("escape_check_test.cpp"), std::string::npos);
    }
    EXPECT_NO_THROW(IM_CHECK(true));
}

// Release builds used to return column 0 for an unknown field and write into the wrong column.
TEST(check, table_rejects_an_unknown_field) {
    im::report::table t;
    t.name = "x";
    t.fields = {{"a", im::report::field_type::integer}};
    auto & row = t.add_row();
    EXPECT_THROW(t.set(row, "no_such_field", int64_t{1}), im::error);
    EXPECT_TRUE(std::holds_alternative<std::monostate>(t.rows[0][0]));
}
