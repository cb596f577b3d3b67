// libFuzzer target for the SSE parser: any bytes, cut into reads anywhere, must give exactly the
// events that the same bytes give in one read — never crash, hang, or buffer past the line cap.
// Every event is then interpreted as each endpoint's stream chunk (engine/http/protocol.h), which
// must accept or reject it without crashing, and exactly as the document path does.
#include "engine/http/protocol.h"
#include "engine/http/sse.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    using im::engine::http::sse_event;
    using im::engine::http::sse_parser;
    if (size < 2) return 0;
    // The first byte picks the line cap (small caps exercise the overflow path), the second seeds
    // the read sizes; the rest is the stream.
    const size_t cap = data[0] < 128 ? size_t(data[0]) + 1 : sse_parser::default_max_line_bytes;
    uint32_t seed = data[1];
    const std::string_view stream(reinterpret_cast<const char *>(data + 2), size - 2);

    sse_parser whole(cap);
    std::vector<sse_event> a;
    whole.feed(stream, a);

    sse_parser pieces(cap);
    std::vector<sse_event> b;
    size_t at = 0;
    while (at < stream.size()) {
        seed = seed * 1103515245u + 12345u;
        const size_t n = 1 + (seed >> 16) % 7;
        pieces.feed(stream.substr(at, n), b);
        at += n;
    }
    if (whole.failed() != pieces.failed() || a.size() != b.size()) std::abort();
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].type != b[i].type || a[i].data != b[i].data || a[i].id != b[i].id) std::abort();
        if (a[i].data.size() > stream.size()) std::abort();
    }
    if (!whole.failed() && whole.mid_event() != pieces.mid_event()) std::abort();
    using im::engine::http::api;
    for (const auto & e : a) {
        for (api which : {api::completions, api::chat, api::llama}) {
            im::engine::http::stream_chunk c, ref;
            std::string why, ref_why;
            const bool ok = im::engine::http::interpret_event(which, e, c, why);
            if (!ok && why.empty()) std::abort();  // a rejection always says why
            // The SAX fast path and the document path agree on every event.
            const bool ref_ok = im::engine::http::interpret_event_dom(which, e, ref, ref_why);
            if (ok != ref_ok || why != ref_why) std::abort();
            if (ok && !(c == ref)) std::abort();
        }
    }
    return 0;
}
