// libFuzzer target for the dataset readers: any bytes, in any container and schema, must either
// yield records or throw im::error — never crash, hang, read out of bounds or hold more than the
// record bound.
#include "core/error.h"
#include "dataset/reader.h"
#include "fuzz_common.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    im::fuzz::quiet();
    if (size == 0) return 0;
    // The first byte picks the --format, the extension, the field flags and a small record bound
    // (so that the bound's paths are reached with short inputs); the rest is the file.
    using im::dataset::format;
    static const format formats[] = {format::auto_, format::alpaca, format::sharegpt, format::openai,
                                     format::jsonl, format::json,   format::csv};
    static const char * extensions[] = {"", ".jsonl", ".json", ".csv"};
    const uint8_t sel = data[0];
    im::dataset::reader_options opts;
    opts.fmt = formats[sel % 7];
    opts.extension = extensions[(sel >> 3) % 4];
    if (sel & 0x80) {
        opts.prompt_field = "prompt";
        opts.output_field = "output";
    }
    if (sel & 0x20) opts.max_record_bytes = 1024;
    opts.name = "fuzz";
    const std::string_view text(reinterpret_cast<const char *>(data + 1), size - 1);
    try {
        im::dataset::record_reader reader(im::dataset::open_memory(text), opts);
        im::dataset::read_result r;
        size_t n = 0;
        while (reader.next(r)) {
            for (const auto & m : r.conv) {
                n += m.content.size();
                // A record never holds more than the bound (plus the "\n" Alpaca joins with).
                if (m.content.size() > opts.max_record_bytes * 3) __builtin_trap();
            }
        }
        std::string s(text);
        im::dataset::sanitize_utf8(s);
        (void) n;
    } catch (const im::error &) {
    }
    return 0;
}
