#include "engine/http/sse.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

using im::engine::http::sse_event;
using im::engine::http::sse_parser;

namespace {

struct parsed {
    std::vector<sse_event> events;
    bool failed = false;
    bool mid_event = false;
};

parsed parse_whole(const std::string & s, size_t cap = sse_parser::default_max_line_bytes) {
    sse_parser p(cap);
    parsed r;
    p.feed(s, r.events);
    r.failed = p.failed();
    r.mid_event = p.mid_event();
    return r;
}

parsed parse_in_pieces(const std::string & s, const std::vector<size_t> & cuts,
                       size_t cap = sse_parser::default_max_line_bytes) {
    sse_parser p(cap);
    parsed r;
    size_t at = 0;
    for (size_t c : cuts) {
        p.feed(std::string_view(s).substr(at, c - at), r.events);
        at = c;
    }
    p.feed(std::string_view(s).substr(at), r.events);
    r.failed = p.failed();
    r.mid_event = p.mid_event();
    return r;
}

bool same(const parsed & a, const parsed & b) {
    if (a.failed != b.failed || a.mid_event != b.mid_event || a.events.size() != b.events.size()) return false;
    for (size_t i = 0; i < a.events.size(); ++i) {
        if (a.events[i].type != b.events[i].type || a.events[i].data != b.events[i].data ||
            a.events[i].id != b.events[i].id)
            return false;
    }
    return true;
}

// Parses `s` whole, byte by byte, split at every single point and at random points: every way of
// cutting the stream must give the same events.
parsed parse_every_way(const std::string & s) {
    const parsed whole = parse_whole(s);
    std::vector<size_t> every;
    for (size_t i = 1; i < s.size(); ++i) every.push_back(i);
    EXPECT_TRUE(same(whole, parse_in_pieces(s, every))) << "byte by byte differs for: " << s;
    for (size_t i = 0; i <= s.size(); ++i) {
        EXPECT_TRUE(same(whole, parse_in_pieces(s, {i}))) << "split at " << i << " differs for: " << s;
    }
    std::mt19937 rng(42);
    for (int round = 0; round < 20 && s.size() > 2; ++round) {
        std::vector<size_t> cuts;
        for (size_t i = 1; i < s.size(); ++i) {
            if (rng() % 4 == 0) cuts.push_back(i);
        }
        EXPECT_TRUE(same(whole, parse_in_pieces(s, cuts))) << "random split differs for: " << s;
    }
    return whole;
}

}  // namespace

TEST(sse, one_event_with_and_without_space) {
    auto r = parse_every_way("data: {\"a\":1}\n\ndata:{\"b\":2}\n\n");
    ASSERT_EQ(r.events.size(), 2u);
    EXPECT_EQ(r.events[0].data, "{\"a\":1}");
    EXPECT_EQ(r.events[0].type, "message");
    EXPECT_EQ(r.events[1].data, "{\"b\":2}");
    EXPECT_FALSE(r.mid_event);
}

TEST(sse, only_one_leading_space_is_dropped) {
    auto r = parse_every_way("data:  two spaces\n\n");
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].data, " two spaces");
}

TEST(sse, multi_line_data_joins_with_lf) {
    auto r = parse_every_way("data: first\ndata: second\ndata:\ndata: fourth\n\n");
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].data, "first\nsecond\n\nfourth");
}

TEST(sse, crlf_lf_and_cr_line_ends) {
    for (const std::string s : {"data: x\r\n\r\ndata: y\r\n\r\n", "data: x\r\rdata: y\r\r", "data: x\n\ndata: y\n\n",
                                "data: x\r\n\rdata: y\n\r\n"}) {
        auto r = parse_every_way(s);
        ASSERT_EQ(r.events.size(), 2u) << s;
        EXPECT_EQ(r.events[0].data, "x");
        EXPECT_EQ(r.events[1].data, "y");
    }
}

TEST(sse, cr_at_end_of_read_then_lf_is_one_line_end) {
    sse_parser p;
    std::vector<sse_event> out;
    p.feed("data: a\r", out);
    p.feed("\n", out);  // the LF of the CRLF: not a blank line
    EXPECT_TRUE(out.empty());
    p.feed("\r", out);
    p.feed("\n", out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].data, "a");
}

TEST(sse, comments_are_skipped) {
    auto r = parse_every_way(": ping\n\n:\ndata: x\n: inside\ndata: y\n\n");
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].data, "x\ny");
}

TEST(sse, done_marker_is_data_like_any_other) {
    auto r = parse_every_way("data: {\"t\":1}\n\ndata: [DONE]\n\n");
    ASSERT_EQ(r.events.size(), 2u);
    EXPECT_EQ(r.events[1].data, "[DONE]");
}

TEST(sse, event_type_and_id) {
    auto r = parse_every_way("event: error\ndata: {\"message\":\"boom\"}\nid: 7\n\ndata: next\n\n");
    ASSERT_EQ(r.events.size(), 2u);
    EXPECT_EQ(r.events[0].type, "error");
    EXPECT_EQ(r.events[0].data, "{\"message\":\"boom\"}");
    EXPECT_EQ(r.events[0].id, "7");
    EXPECT_EQ(r.events[1].type, "message");  // the type does not carry over
    EXPECT_EQ(r.events[1].id, "7");          // the last event id does
}

TEST(sse, event_without_data_is_not_dispatched) {
    auto r = parse_every_way("event: ping\n\nid: 3\n\nretry: 10\n\ndata: real\n\n");
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].data, "real");
    EXPECT_EQ(r.events[0].type, "message");  // the ping's type was reset at its blank line
}

TEST(sse, empty_data_line_is_an_event_with_empty_data) {
    auto r = parse_every_way("data\n\ndata:\n\n");
    ASSERT_EQ(r.events.size(), 2u);
    EXPECT_EQ(r.events[0].data, "");
    EXPECT_EQ(r.events[1].data, "");
}

TEST(sse, field_without_colon_and_unknown_fields) {
    auto r = parse_every_way("foo: bar\nevent\ndata: x\nbogus\n\n");
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].data, "x");
    EXPECT_EQ(r.events[0].type, "message");  // `event` with no value leaves the type empty
}

TEST(sse, colon_inside_value_is_kept) {
    auto r = parse_every_way("data: a: b:c\n\n");
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].data, "a: b:c");
}

TEST(sse, retry_field) {
    sse_parser p;
    std::vector<sse_event> out;
    p.feed("retry: 1500\n\n", out);
    EXPECT_EQ(p.retry_ms(), 1500);
    p.feed("retry: 12x\n\n", out);  // not all digits: ignored
    EXPECT_EQ(p.retry_ms(), 1500);
}

TEST(sse, id_with_nul_is_ignored) {
    auto r = parse_every_way(std::string("id: 1\n\nid: a\0b\ndata: x\n\n", 24));
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].id, "1");
}

TEST(sse, leading_bom_is_skipped_only_at_the_start) {
    auto r = parse_every_way("\xEF\xBB\xBF" "data: x\n\n\xEF\xBB\xBF" "data: y\n\n");
    ASSERT_EQ(r.events.size(), 1u);  // the second BOM makes the field name "\xEF\xBB\xBFdata": unknown
    EXPECT_EQ(r.events[0].data, "x");
    auto partial = parse_every_way("\xEF\xBB" "data: z\n\n");  // not a BOM: the bytes stay
    EXPECT_TRUE(partial.events.empty());
    auto near = parse_every_way("\xEF" "X\n\ndata: w\n\n");
    ASSERT_EQ(near.events.size(), 1u);
    EXPECT_EQ(near.events[0].data, "w");
}

TEST(sse, any_bytes_pass_through) {
    std::string payload;
    for (int c = 0; c < 256; ++c) {
        if (c != '\r' && c != '\n') payload.push_back(char(c));
    }
    auto r = parse_every_way("data: " + payload + "\n\n");
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].data, payload);
}

TEST(sse, unfinished_event_is_held_and_reported) {
    sse_parser p;
    std::vector<sse_event> out;
    p.feed("data: one\n\ndata: tw", out);
    EXPECT_EQ(out.size(), 1u);
    EXPECT_TRUE(p.mid_event());
    p.feed("o\n", out);
    EXPECT_TRUE(p.mid_event());  // fields seen, no blank line yet
    p.feed("\n", out);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[1].data, "two");
    EXPECT_FALSE(p.mid_event());
}

TEST(sse, long_line_within_cap) {
    const std::string big(3 << 20, 'x');
    sse_parser p(4 << 20);
    std::vector<sse_event> out;
    const std::string s = "data: " + big + "\n\n";
    for (size_t at = 0; at < s.size(); at += 16384) p.feed(std::string_view(s).substr(at, 16384), out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].data, big);
    EXPECT_FALSE(p.failed());
}

TEST(sse, line_over_cap_fails_without_buffering_it) {
    sse_parser p(1000);
    std::vector<sse_event> out;
    p.feed("data: ok\n\n", out);
    for (int i = 0; i < 100 && !p.failed(); ++i) p.feed(std::string(100, 'y'), out);
    EXPECT_TRUE(p.failed());
    EXPECT_NE(p.error().find("longer than 1000 bytes"), std::string::npos);
    p.feed("\n\ndata: after\n\n", out);  // ignored once failed
    EXPECT_EQ(out.size(), 1u);
    // The cap counts the line, not the terminator, and applies in a single read too.
    auto exact = parse_whole("data: " + std::string(994, 'z') + "\n\n", 1000);
    EXPECT_FALSE(exact.failed);
    EXPECT_EQ(exact.events.size(), 1u);
    auto over = parse_whole("data: " + std::string(995, 'z') + "\n\n", 1000);
    EXPECT_TRUE(over.failed);
    EXPECT_TRUE(over.events.empty());
}

TEST(sse, llama_server_style_stream_byte_by_byte) {
    const std::string s =
        "data: {\"content\":\"Hel\",\"tokens\":[1],\"stop\":false}\n\n"
        "data: {\"content\":\"lo\",\"tokens\":[2],\"stop\":false}\n\n"
        "data: {\"error\":{\"code\":500,\"message\":\"The model produced output\"}}\n\n";
    auto r = parse_every_way(s);
    ASSERT_EQ(r.events.size(), 3u);
    EXPECT_NE(r.events[2].data.find("The model produced output"), std::string::npos);
}

TEST(sse, counts_bytes_and_events) {
    sse_parser p;
    std::vector<sse_event> out;
    p.feed("\xEF\xBB", out);
    p.feed("\xBF" "data: a\n\ndata: b\n\n", out);
    EXPECT_EQ(p.n_events(), 2u);
    EXPECT_EQ(p.n_bytes(), 3u + 18u);
    sse_parser q;
    q.feed("\xEF", out);
    q.feed("Xdata: c\n\n", out);
    EXPECT_EQ(q.n_bytes(), 11u);
}
