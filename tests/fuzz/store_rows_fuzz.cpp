// libFuzzer target for the SQLite row loader (`history`, `compare`, --resume read runs back): a run
// is recorded, then its stored cells are overwritten with fuzzed values of any SQLite type (a
// damaged or hand-edited results.db); listing and loading it must give rows or an im::error, never
// a crash or a stray exception.
#include "core/error.h"
#include "fuzz_common.h"
#include "report/run_context.h"
#include "store/store.h"

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    im::fuzz::quiet();
    if (size < 2) return 0;
    static const std::filesystem::path path =
        std::filesystem::temp_directory_path() / ("infermeter-fuzz-store-" + std::to_string(::getpid()) + ".db");
    std::filesystem::remove(path);
    const bool parallel = data[0] & 1;
    const auto & shape = im::store::result_shape(parallel ? "parallel" : "bench");
    int64_t id = 0;
    try {
        im::store::database db(path);
        im::report::run_context ctx;
        ctx.test_time = "2026-12-02T00:00:00Z";
        im::report::table t = shape;
        t.add_row();
        id = db.record(parallel ? "parallel" : "bench", ctx, {t}, false);
    } catch (const im::error &) {
        return 0;
    }
    // Each following line: a column number, a type letter (i r t b n) and the value.
    {
        sqlite3 * h = nullptr;
        sqlite3_open(path.c_str(), &h);
        im::fuzz::lines in(data + 1, size - 1);
        for (int k = 0; k < 16 && !in.empty(); ++k) {
            const std::string line = in.next();
            if (line.size() < 2) continue;
            const bool runs = line[0] & 0x80;
            const auto & cols = shape.fields;
            const size_t col = static_cast<unsigned char>(line[0] & 0x7f) % (runs ? 12 : cols.size());
            static const char * run_cols[] = {"kind", "test_time", "model_type", "model_filename", "cpu_info", "gpu_info",
                                              "backends", "build_commit", "infermeter_version", "command_line",
                                              "interrupted", "report_path"};
            const std::string sql = runs ? std::string("UPDATE runs SET ") + run_cols[col] + " = ?1"
                                         : "UPDATE " + shape.name + " SET \"" + cols[col].name + "\" = ?1";
            sqlite3_stmt * s = nullptr;
            if (sqlite3_prepare_v2(h, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) continue;
            const std::string v = line.substr(2);
            switch (line[1] % 5) {
                case 0: sqlite3_bind_int64(s, 1, static_cast<int64_t>(std::hash<std::string>{}(v))); break;
                case 1: sqlite3_bind_double(s, 1, v.empty() ? 0.0 : std::strtod(v.c_str(), nullptr)); break;
                case 2: sqlite3_bind_text(s, 1, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); break;
                case 3: sqlite3_bind_blob(s, 1, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT); break;
                default: sqlite3_bind_null(s, 1); break;
            }
            sqlite3_step(s);
            sqlite3_finalize(s);
        }
        sqlite3_close(h);
    }
    try {
        im::store::database db(path);
        for (const auto & r : db.runs(im::store::run_filter{})) (void) r.command_line.size();
        (void) db.run(id);
        const auto rows = db.rows(id, shape);
        (void) rows.rows.size();
    } catch (const im::error &) {
    }
    std::filesystem::remove(path);
    return 0;
}
