// libFuzzer target for the dataset readers: any bytes, in any container and schema, must either
// yield records or throw im::error — never crash, hang or read out of bounds.
#include "core/error.h"
#include "core/log.h"
#include "dataset/reader.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    static const bool quiet = [] {
        im::log::set_quiet(true);
        return true;
    }();
    (void) quiet;
    if (size == 0) return 0;
    // The first byte picks the --format and the field flags; the rest is the file.
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
    opts.name = "fuzz";
    const std::string_view text(reinterpret_cast<const char *>(data + 1), size - 1);
    try {
        im::dataset::record_reader reader(im::dataset::open_memory(text), opts);
        im::dataset::read_result r;
        size_t n = 0;
        while (reader.next(r)) {
            for (const auto & m : r.conv) n += m.content.size();
        }
        std::string s(text);
        im::dataset::sanitize_utf8(s);
        (void) n;
    } catch (const im::error &) {
    }
    return 0;
}
