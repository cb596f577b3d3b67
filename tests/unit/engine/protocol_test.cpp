#include "engine/http/protocol.h"

#include "core/error.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace im::engine::http;
using nlohmann::json;

namespace {

stream_chunk chunk(api a, const std::string & data, const std::string & type = "message") {
    sse_event e;
    e.type = type;
    e.data = data;
    stream_chunk c;
    std::string why;
    EXPECT_TRUE(interpret_event(a, e, c, why)) << why << " for " << data;
    return c;
}

std::string malformed_why(api a, const std::string & data) {
    sse_event e;
    e.type = "message";
    e.data = data;
    stream_chunk c;
    std::string why;
    EXPECT_FALSE(interpret_event(a, e, c, why)) << data;
    return why;
}

}  // namespace

TEST(http_protocol, api_names_and_paths) {
    EXPECT_EQ(parse_api("completions"), api::completions);
    EXPECT_EQ(parse_api("chat"), api::chat);
    EXPECT_EQ(parse_api("llama"), api::llama);
    EXPECT_STREQ(api_path(api::completions), "/v1/completions");
    EXPECT_STREQ(api_path(api::chat), "/v1/chat/completions");
    EXPECT_STREQ(api_path(api::llama), "/completion");
    try {
        parse_api("responses");
        FAIL();
    } catch (const im::error & e) {
        EXPECT_EQ(e.kind(), im::error_kind::usage);
        EXPECT_NE(std::string(e.what()).find("--endpoint"), std::string::npos);
    }
}

TEST(http_protocol, request_bodies) {
    body_options o;
    o.model = "qwen";
    auto c = json::parse(request_body(api::completions, o, "hi \"there\"", 128));
    EXPECT_EQ(c["model"], "qwen");
    EXPECT_EQ(c["prompt"], "hi \"there\"");
    EXPECT_EQ(c["max_tokens"], 128);
    EXPECT_EQ(c["stream"], true);
    EXPECT_EQ(c["stream_options"]["include_usage"], true);
    EXPECT_EQ(c["ignore_eos"], true);
    EXPECT_EQ(c["temperature"], 0.0);

    auto ch = json::parse(request_body(api::chat, o, "q", 7));
    EXPECT_EQ(ch["messages"][0]["role"], "user");
    EXPECT_EQ(ch["messages"][0]["content"], "q");
    EXPECT_EQ(ch["max_tokens"], 7);

    body_options bare;
    bare.ignore_eos = false;
    bare.include_usage = false;
    bare.temperature = -1;
    auto l = json::parse(request_body(api::llama, bare, "p", 5));
    EXPECT_EQ(l["n_predict"], 5);
    EXPECT_FALSE(l.contains("max_tokens"));
    EXPECT_FALSE(l.contains("model"));
    EXPECT_FALSE(l.contains("stream_options"));
    EXPECT_FALSE(l.contains("ignore_eos"));
    EXPECT_FALSE(l.contains("temperature"));
    EXPECT_EQ(l["stream"], true);
    // invalid UTF-8 in a prompt is replaced, not fatal
    EXPECT_NO_THROW(json::parse(request_body(api::llama, bare, "a\xff" "b", 1)));
}

TEST(http_protocol, token_id_prompts) {
    body_options o;
    auto c = json::parse(request_body(api::completions, o, std::vector<int32_t>{1, 22, 333}, 4));
    EXPECT_EQ(c["prompt"], json::array({1, 22, 333}));
    auto l = json::parse(request_body(api::llama, o, std::vector<int32_t>{7}, 4));
    EXPECT_EQ(l["prompt"], json::array({7}));
    EXPECT_EQ(l["n_predict"], 4);
}

TEST(http_protocol, openai_completions_chunks) {
    auto c = chunk(api::completions, R"({"id":"x","choices":[{"index":0,"text":"Hel","finish_reason":null}]})");
    EXPECT_EQ(c.text, "Hel");
    EXPECT_FALSE(c.finished);
    EXPECT_EQ(c.n_token_ids, -1);
    auto f = chunk(api::completions, R"({"choices":[{"text":"","finish_reason":"length"}]})");
    EXPECT_TRUE(f.finished);
    EXPECT_TRUE(f.text.empty());
    auto u = chunk(api::completions, R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34}})");
    EXPECT_EQ(u.usage_prompt_tokens, 12);
    EXPECT_EQ(u.usage_completion_tokens, 34);
    auto d = chunk(api::completions, "[DONE]");
    EXPECT_TRUE(d.done);
}

TEST(http_protocol, chat_chunks) {
    auto role = chunk(api::chat, R"({"choices":[{"delta":{"role":"assistant","content":null}}]})");
    EXPECT_TRUE(role.text.empty());
    auto c = chunk(api::chat, R"({"choices":[{"delta":{"content":"lo"},"finish_reason":null}]})");
    EXPECT_EQ(c.text, "lo");
    auto r = chunk(api::chat, R"({"choices":[{"delta":{"reasoning_content":"th"}}]})");
    EXPECT_EQ(r.text, "th");
    // llama-server's /v1 final chunk carries timings beside the finish reason
    auto f = chunk(api::chat, R"({"choices":[{"delta":{},"finish_reason":"stop"}],
                                  "timings":{"prompt_ms":12.5,"predicted_per_second":88.25}})");
    EXPECT_TRUE(f.finished);
    EXPECT_DOUBLE_EQ(f.timings_prompt_ms, 12.5);
    EXPECT_DOUBLE_EQ(f.timings_predicted_per_second, 88.25);
}

TEST(http_protocol, llama_completion_chunks) {
    auto c = chunk(api::llama, R"({"content":"ab","tokens":[11,12],"stop":false,"tokens_predicted":2})");
    EXPECT_EQ(c.text, "ab");
    EXPECT_EQ(c.n_token_ids, 2);
    EXPECT_FALSE(c.finished);
    EXPECT_EQ(c.usage_completion_tokens, -1);  // running count on partial chunks is not the total
    auto f = chunk(api::llama, R"({"content":"","tokens":[],"stop":true,"tokens_predicted":64,
                                   "tokens_evaluated":9,"timings":{"prompt_ms":3.0,"predicted_per_second":440.5}})");
    EXPECT_TRUE(f.finished);
    EXPECT_EQ(f.usage_completion_tokens, 64);
    EXPECT_EQ(f.usage_prompt_tokens, 9);
    EXPECT_DOUBLE_EQ(f.timings_prompt_ms, 3.0);
    EXPECT_DOUBLE_EQ(f.timings_predicted_per_second, 440.5);
    auto p = chunk(api::llama, R"({"prompt_progress":{"total":10,"processed":5}})");
    EXPECT_TRUE(p.text.empty());
}

TEST(http_protocol, errors_inside_the_stream) {
    // llama-server's mid-stream error (DESIGN §7)
    auto e = chunk(api::llama, R"({"error":{"code":500,"message":"The model produced output that does not match"}})");
    EXPECT_TRUE(e.is_error);
    EXPECT_EQ(e.error_message, "The model produced output that does not match");
    auto s = chunk(api::chat, R"({"error":"overloaded"})");
    EXPECT_TRUE(s.is_error);
    EXPECT_EQ(s.error_message, "overloaded");
    auto t = chunk(api::completions, R"({"message":"bad things"})", "error");
    EXPECT_TRUE(t.is_error);
    EXPECT_EQ(t.error_message, "bad things");
    auto raw = chunk(api::completions, "plain\ttext", "error");
    EXPECT_TRUE(raw.is_error);
    EXPECT_EQ(raw.error_message, "plain text");
    auto null_error = chunk(api::completions, R"({"choices":[{"text":"x"}],"error":null})");
    EXPECT_FALSE(null_error.is_error);
    EXPECT_EQ(null_error.text, "x");
}

TEST(http_protocol, malformed_events) {
    EXPECT_EQ(malformed_why(api::completions, "{not json"), "event data is not JSON");
    EXPECT_EQ(malformed_why(api::completions, "[1,2]"), "event data is not a JSON object");
    EXPECT_EQ(malformed_why(api::completions, R"({"id":1})"), "no `choices` array");
    EXPECT_EQ(malformed_why(api::completions, R"({"choices":[{"text":5}]})"), "`choices[0].text` is not a string");
    EXPECT_EQ(malformed_why(api::chat, R"({"choices":[{"delta":{"content":[1]}}]})"),
              "`choices[0].delta.content` is not a string");
    EXPECT_EQ(malformed_why(api::chat, R"({"choices":[7]})"), "`choices[0]` is not an object");
    EXPECT_EQ(malformed_why(api::llama, R"({"stop":false})"), "no `content` in a /completion event");
    EXPECT_EQ(malformed_why(api::llama, R"({"content":3})"), "`content` is not a string");
    EXPECT_EQ(malformed_why(api::llama, "\xff\xfe"), "event data is not JSON");
}

TEST(http_protocol, odd_numbers_do_not_count) {
    auto u = chunk(api::completions, R"({"choices":[],"usage":{"completion_tokens":1e30,"prompt_tokens":-3}})");
    EXPECT_EQ(u.usage_completion_tokens, -1);
    EXPECT_EQ(u.usage_prompt_tokens, -1);
}

TEST(http_protocol, error_text_from_bodies) {
    EXPECT_EQ(error_text(R"({"error":{"code":500,"message":"boom","type":"server_error"}})"), "boom");
    EXPECT_EQ(error_text(R"({"error":"rate limited"})"), "rate limited");
    EXPECT_EQ(error_text(R"({"detail":"Not Found"})"), "Not Found");
    EXPECT_EQ(error_text("<html>\r\n502 Bad Gateway\r\n</html>"), "<html>  502 Bad Gateway  </html>");
    const std::string long_text(1000, 'x');
    EXPECT_EQ(error_text(long_text, 10), "xxxxxxxxxx...");
    // truncation never splits a UTF-8 sequence
    const std::string accents = "\xc3\xa9\xc3\xa9\xc3\xa9";
    EXPECT_EQ(error_text(accents, 3), "\xc3\xa9...");
}

// interpret_event reads the common shapes without a JSON document and hands anything else to
// interpret_event_dom: both must give the same answer, the same words and the same fields on every
// shape here (the fuzz target checks the same on arbitrary bytes).
TEST(http_protocol, fast_path_agrees_with_the_document_path) {
    const std::vector<std::string> payloads{
        R"({"id":"x","choices":[{"index":0,"text":"Hel","finish_reason":null}]})",
        R"({"choices":[{"text":"","finish_reason":"length"}]})",
        R"({"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34}})",
        R"({"choices":[{"delta":{"role":"assistant","content":null}}]})",
        R"({"choices":[{"delta":{"content":"lo"},"finish_reason":null}]})",
        R"({"choices":[{"delta":{"content":"b","reasoning_content":"a"}}]})",
        R"({"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"completion_tokens":3}})",
        R"({"content":"ab","tokens":[11,12],"stop":false,"tokens_predicted":2})",
        R"({"content":"","tokens":[],"stop":true,"tokens_predicted":64,"tokens_evaluated":9,"timings":{"prompt_ms":1.5,"predicted_per_second":88.1}})",
        R"({"content":"x","tokens":[[1],{"a":2},3],"stop":true,"tokens_predicted":-1,"usage":{"completion_tokens":7}})",
        R"({"prompt_progress":{"total":10,"processed":5}})",
        R"({"error":{"code":500,"message":"m"}})",
        R"({"error":"overloaded"})",
        R"({"choices":[{"text":"x"}],"error":null})",
        R"({"choices":[{"text":"a"}],"choices":[{"text":"b"}]})",            // a repeated key: the last one
        R"({"choices":[{"text":"a","text":"b"}]})",
        R"({"usage":{"completion_tokens":1,"completion_tokens":2},"choices":[]})",
        R"({"usage":5})",                                                      // usage present, not an object
        R"({"usage":[1],"choices":[]})",
        R"({"choices":[{"text":"x"},7,[1]]})",                                 // only choices[0] is read
        R"({"choices":[7]})", R"({"choices":[[1]]})", R"({"choices":{}})", R"({"choices":"x"})",
        R"({"choices":[{"text":5}]})", R"({"choices":[{"text":{"a":1}}]})", R"({"choices":[{"delta":3}]})",
        R"({"choices":[{"delta":[1]}]})", R"({"choices":[{"delta":{"content":[1]}}]})",
        R"({"choices":[{"finish_reason":3,"text":"x"}]})", R"({"choices":[{"finish_reason":"stop","text":null}]})",
        R"({"choices":[],"usage":{"completion_tokens":1e30,"prompt_tokens":-3}})",
        R"({"choices":[],"usage":{"completion_tokens":12.7,"prompt_tokens":18446744073709551615}})",
        R"({"timings":{"prompt_ms":"x","predicted_per_second":-2}})", R"({"timings":[1],"content":"a"})",
        R"({"stop":false})", R"({"stop":"yes","content":null})", R"({"content":3})", R"({"content":["a"]})",
        R"({"content":"a","tokens":{"n":2}})", R"({"content":"a","tokens":5})",
        R"({"deep":{"choices":[{"text":5}],"error":"no"},"choices":[{"text":"ok"}]})",
        R"({"id":1})", "{not json", "[1,2]", "3", "\"s\"", "null", "", "{}", R"({"a":1} x)", "\xff\xfe",
        "{\"choices\":[{\"text\":\"\xff\"}]}", R"({"choices":[{"text":"\u00e9\ud83d\ude00"}]})",
        // the scanner's own cases: escapes, UTF-8, numbers, structure
        R"({"choices":[{"text":"a\n\t\"\\\/\b\f\r\u0041\u00e9\u20ac\u0000z"}]})",
        R"({"choices":[{"text":"\ud800"}]})", R"({"choices":[{"text":"\udc00x"}]})", R"({"choices":[{"text":"\x"}]})",
        R"({"choices":[{"text":"\u12g4"}]})", R"({"choices":[{"text":"\u12"}]})",
        "{\"choices\":[{\"text\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}]}",    // é € 😀
        "{\"choices\":[{\"text\":\"\xc0\x80\"}]}", "{\"choices\":[{\"text\":\"\xed\xa0\x80\"}]}",
        "{\"choices\":[{\"text\":\"\xf4\x90\x80\x80\"}]}", "{\"choices\":[{\"text\":\"\xe2\x82\"}]}",
        "{\"choices\":[{\"text\":\"a\tb\"}]}", "{\"choices\":[{\"text\":\"a\x01\"}]}",
        R"({"choices":[],"usage":{"completion_tokens":-0,"prompt_tokens":1.5e3}})",
        R"({"choices":[],"usage":{"completion_tokens":01}})", R"({"choices":[],"usage":{"completion_tokens":1.}})",
        R"({"choices":[],"usage":{"completion_tokens":.5}})", R"({"choices":[],"usage":{"completion_tokens":1e}})",
        R"({"choices":[],"usage":{"completion_tokens":-}})", R"({"choices":[],"usage":{"completion_tokens":1e400}})",
        R"({"choices":[],"usage":{"completion_tokens":123456789012345678901234567890}})",
        R"({"timings":{"prompt_ms":2.5E-3,"predicted_per_second":1e+2},"content":"a"})",
        R"({"content":"a",})", R"({"content":"a" "b"})", R"({"content" "a"})", R"({"content":"a"]})", R"({"content":"a")",
        R"({"content":tru})", R"({"content":"a","x":[1,2,]})", R"({,"content":"a"})", R"({"content":"a"}})",
        " \t\r\n{ \"content\" : \"a\" , \"tokens\" : [ 1 , [ ] , { } ] } \n",
        R"({"content":"a","x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})",
        R"({"content":"a","x":{"choices":[{"text":1}],"stop":true}})",
    };
    for (const auto & p : payloads) {
        for (api a : {api::completions, api::chat, api::llama}) {
            for (const char * type : {"message", "", "error"}) {
                sse_event e;
                e.type = type;
                e.data = p;
                stream_chunk fast, ref;
                std::string why, ref_why;
                const bool ok = interpret_event(a, e, fast, why);
                const bool ref_ok = interpret_event_dom(a, e, ref, ref_why);
                EXPECT_EQ(ok, ref_ok) << api_name(a) << " " << p;
                EXPECT_EQ(why, ref_why) << api_name(a) << " " << p;
                if (ok && ref_ok) {
                    EXPECT_TRUE(fast == ref) << api_name(a) << " " << p << ": text '" << fast.text << "' vs '" << ref.text
                                             << "', finished " << fast.finished << " vs " << ref.finished;
                }
            }
        }
    }
}
