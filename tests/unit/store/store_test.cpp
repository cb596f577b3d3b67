#include "store/store.h"

#include "core/error.h"
#include "support/run.h"
#include "unit/store/fixtures.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <set>

using namespace im;
namespace fx = im::test::store_fixtures;

namespace {

void sql(const std::filesystem::path & path, const std::string & statements) {
    sqlite3 * db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char * err = nullptr;
    const int rc = sqlite3_exec(db, statements.c_str(), nullptr, nullptr, &err);
    const std::string why = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << why;
}

std::set<std::string> columns(const std::filesystem::path & path, const std::string & table) {
    sqlite3 * db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_stmt * s = nullptr;
    sqlite3_prepare_v2(db, ("PRAGMA table_info(" + table + ")").c_str(), -1, &s, nullptr);
    std::set<std::string> out;
    while (sqlite3_step(s) == SQLITE_ROW) out.insert(reinterpret_cast<const char *>(sqlite3_column_text(s, 1)));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return out;
}

}  // namespace

TEST(store_migration, new_file_gets_current_schema_and_result_tables) {
    const auto path = test::temp_dir("store-new") / "results.db";
    store::database db(path);
    EXPECT_EQ(db.user_version(), 1);
    for (const auto & shape : store::result_shapes()) {
        const auto have = columns(path, shape.name);
        for (const auto & f : shape.fields) EXPECT_TRUE(have.count(f.name)) << shape.name << "." << f.name;
        EXPECT_TRUE(have.count("run_id"));
    }
}

// A store written before the parallel field list grew: the columns are added when the store is
// opened, the old rows stay and read NULL in the new columns.
TEST(store_migration, older_parallel_table_gains_columns_and_keeps_rows) {
    const auto path = test::temp_dir("store-old") / "results.db";
    sql(path,
        "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, test_time TEXT, model_type TEXT, "
        "model_filename TEXT, cpu_info TEXT, gpu_info TEXT, backends TEXT, build_commit TEXT, infermeter_version TEXT, "
        "command_line TEXT, interrupted INTEGER, report_path TEXT);"
        "CREATE TABLE parallel (run_id INTEGER NOT NULL REFERENCES runs(id), workers INTEGER, n_prompt INTEGER, "
        "n_predict INTEGER, overall_tps REAL, samples_t_pp_s TEXT, samples_t_tg_s TEXT);"
        "INSERT INTO runs (kind, test_time, model_type, cpu_info, interrupted) "
        "VALUES ('parallel', '2026-10-01T00:00:00Z', 'old model', 'old cpu', 0);"
        "INSERT INTO parallel VALUES (1, 4, 128, 256, 181.5, '[0.5,0.6]', '[5.0,5.2]');"
        "PRAGMA user_version = 0;");
    ASSERT_FALSE(columns(path, "parallel").count("device_used_bytes"));

    store::database db(path);
    EXPECT_EQ(db.user_version(), 1);
    const auto have = columns(path, "parallel");
    EXPECT_TRUE(have.count("device_used_bytes"));
    EXPECT_TRUE(have.count("interrupted"));
    EXPECT_TRUE(have.count("skipped"));
    EXPECT_TRUE(columns(path, "bench").count("samples_ts"));

    const auto old = db.rows(1, store::result_shape("parallel"));
    ASSERT_EQ(old.rows.size(), 1u);
    EXPECT_EQ(std::get<int64_t>(old.get(0, "workers")), 4);
    EXPECT_DOUBLE_EQ(std::get<double>(old.get(0, "overall_tps")), 181.5);
    EXPECT_EQ(std::get<std::vector<double>>(old.get(0, "samples_t_tg_s")), (std::vector<double>{5.0, 5.2}));
    EXPECT_TRUE(std::holds_alternative<std::monostate>(old.get(0, "device_used_bytes")));
    const auto run = db.run(1);
    ASSERT_TRUE(run.has_value());
    EXPECT_EQ(run->model_type, "old model");

    // New runs record every column next to the old one.
    report::table t = store::result_shape("parallel");
    fx::add_parallel_row(t, fx::context(), 2, 128, 256, {0.4}, {4.0});
    t.set(t.rows.back(), "device_used_bytes", int64_t{123});
    const int64_t id = db.record("parallel", fx::context(), {t}, false);
    EXPECT_EQ(id, 2);
    const auto fresh = db.rows(id, store::result_shape("parallel"));
    ASSERT_EQ(fresh.rows.size(), 1u);
    EXPECT_EQ(std::get<int64_t>(fresh.get(0, "device_used_bytes")), 123);
    EXPECT_EQ(db.rows(1, store::result_shape("parallel")).rows.size(), 1u);
}

TEST(store_migration, reopening_is_idempotent) {
    const auto path = test::temp_dir("store-reopen") / "results.db";
    {
        store::database db(path);
        db.record("bench", fx::context(), {fx::bench(fx::context(), {100, 101}, {10, 11})}, false);
    }
    const auto before = columns(path, "bench");
    store::database db(path);
    EXPECT_EQ(columns(path, "bench"), before);
    EXPECT_EQ(db.rows(1, store::result_shape("bench")).rows.size(), 2u);
}

TEST(store_migration, newer_schema_is_refused) {
    const auto path = test::temp_dir("store-newer") / "results.db";
    sql(path, "PRAGMA user_version = 99;");
    try {
        store::database db(path);
        FAIL() << "opened a store of schema 99";
    } catch (const im::error & e) {
        EXPECT_EQ(e.kind(), error_kind::runtime);
        EXPECT_NE(std::string(e.what()).find("newer infermeter"), std::string::npos) << e.what();
    }
}

TEST(store_history, filters_by_model_machine_time_and_kind) {
    const auto path = test::temp_dir("store-history") / "results.db";
    store::database db(path);
    const auto q = fx::context("qwen2 1.5B Q4_K - Medium", "AMD EPYC 7763", "2026-10-15T08:00:00Z");
    auto l = fx::context("llama 8B Q8_0", "Intel Xeon", "2026-11-02T09:30:00Z");
    l.model_filename = "/models/llama-8b-q8_0.gguf";
    const auto g = fx::context("qwen2 1.5B Q4_K - Medium", "Intel Xeon", "2026-11-20T12:00:00Z");
    db.record("bench", q, {fx::bench(q, {100}, {10})}, false);                       // 1
    db.record("bench", l, {fx::bench(l, {50}, {5})}, true);                          // 2
    report::table p = store::result_shape("parallel");
    fx::add_parallel_row(p, g, 1, 128, 256, {0.5}, {5.0});
    db.record("parallel", g, {p}, false);                                            // 3
    db.record("evaluate", g, {fx::bench(g, {100}, {10}), p}, false, "/tmp/report.json");  // 4

    const auto ids = [&](const store::run_filter & f) {
        std::vector<int64_t> out;
        for (const auto & r : db.runs(f)) out.push_back(r.id);
        return out;
    };
    EXPECT_EQ(ids({}), (std::vector<int64_t>{4, 3, 2, 1}));  // newest first
    EXPECT_EQ(ids({.model = "QWEN2"}), (std::vector<int64_t>{4, 3, 1}));  // case-insensitive
    EXPECT_EQ(ids({.model = "q8_0"}), (std::vector<int64_t>{2}));
    EXPECT_EQ(ids({.model = "1.5b-q4"}), (std::vector<int64_t>{4, 3, 1}));  // the file name matches too
    EXPECT_EQ(ids({.machine = "xeon"}), (std::vector<int64_t>{4, 3, 2}));
    EXPECT_EQ(ids({.since = "2026-11"}), (std::vector<int64_t>{4, 3, 2}));
    EXPECT_EQ(ids({.since = "2026-11-10"}), (std::vector<int64_t>{4, 3}));
    EXPECT_EQ(ids({.kind = "bench"}), (std::vector<int64_t>{2, 1}));
    EXPECT_EQ(ids({.kind = "evaluate"}), (std::vector<int64_t>{4}));
    EXPECT_EQ(ids({.model = "qwen2", .machine = "xeon", .kind = "parallel"}), (std::vector<int64_t>{3}));
    EXPECT_EQ(ids({.limit = 2}), (std::vector<int64_t>{4, 3}));
    // LIKE's wildcards are literal in a filter.
    EXPECT_EQ(ids({.model = "q4_k"}).size(), 3u);
    EXPECT_TRUE(ids({.model = "q4%k"}).empty());
    EXPECT_TRUE(ids({.model = "qwen2_1"}).empty());

    // The old four-argument form still works.
    EXPECT_EQ(db.runs("llama", "", "", 10).size(), 1u);

    const auto r2 = db.run(2);
    ASSERT_TRUE(r2.has_value());
    EXPECT_TRUE(r2->interrupted);
    EXPECT_EQ(r2->machine, "Intel Xeon");
    EXPECT_EQ(db.run(4)->report_path, "/tmp/report.json");
    EXPECT_FALSE(db.run(99).has_value());
    EXPECT_EQ(db.rows(4, store::result_shape("bench")).rows.size(), 2u);
    EXPECT_EQ(db.rows(4, store::result_shape("parallel")).rows.size(), 1u);
}
