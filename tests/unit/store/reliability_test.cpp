// The store never loses or hides results silently (issue 16, defects 4, 6 and 8).
#include "store/compare.h"
#include "store/store.h"

#include "core/error.h"
#include "report/measurements.h"
#include "support/run.h"
#include "unit/store/fixtures.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <sstream>

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

int count_tables(const std::filesystem::path & path) {
    sqlite3 * db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_stmt * s = nullptr;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", -1, &s, nullptr);
    sqlite3_step(s);
    const int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

}  // namespace

TEST(store_safety, an_unrelated_sqlite_file_is_refused_and_left_alone) {
    const auto path = test::temp_dir("store-unrelated") / "app.sqlite";
    sql(path, "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('a');");
    try {
        store::database db(path);
        FAIL() << "tables were created inside an unrelated SQLite file";
    } catch (const im::error & e) {
        EXPECT_NE(std::string(e.what()).find("--db"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("customers"), std::string::npos) << e.what();
    }
    EXPECT_EQ(count_tables(path), 1);
}

TEST(store_safety, new_and_marked_stores_open) {
    const auto path = test::temp_dir("store-marked") / "results.db";
    { store::database db(path); }
    store::database again(path);  // marked now: opens without the legacy check
    EXPECT_EQ(again.user_version(), 1);
}

TEST(store_safety, a_text_file_is_not_a_store) {
    const auto path = test::temp_dir("store-text") / "notes.db";
    std::ofstream(path) << "these are my notes, not a database; they must survive\n";
    EXPECT_THROW(store::database db(path), im::error);
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "these are my notes, not a database; they must survive");
}

// A store locked by another process: the run is not recorded, the results are kept in a JSON file
// next to the store, and the error says so (the command then exits non-zero).
TEST(store_safety, locked_store_keeps_the_results_and_fails) {
    const auto dir = test::temp_dir("store-locked");
    const auto path = dir / "results.db";
    { store::database db(path); }
    sqlite3 * holder = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &holder), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(holder, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
    store::store_flags f;
    f.db_path = path.string();
    f.timeout_s = 0.3;
    const auto ctx = fx::context();
    std::string message;
    try {
        store::record_run(f, "bench", ctx, {fx::bench(ctx, {100, 101}, {10, 11})}, false);
    } catch (const im::error & e) {
        message = e.what();
    }
    sqlite3_exec(holder, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(holder);
    ASSERT_FALSE(message.empty()) << "a locked store was reported as success";
    EXPECT_NE(message.find("locked"), std::string::npos) << message;
    EXPECT_NE(message.find("--db-timeout"), std::string::npos) << message;
    std::filesystem::path kept;
    for (const auto & e : std::filesystem::directory_iterator(dir)) {
        if (e.path().filename().string().find("unrecorded") != std::string::npos) kept = e.path();
    }
    ASSERT_FALSE(kept.empty()) << "no fallback JSON next to the store";
    EXPECT_NE(message.find(kept.string()), std::string::npos) << message;
    std::ifstream in(kept);
    const auto j = nlohmann::json::parse(in);
    EXPECT_EQ(j["kind"], "bench");
    EXPECT_EQ(j["tables"]["bench"].size(), 2u);
    EXPECT_EQ(j["tables"]["bench"][1]["samples_ts"], nlohmann::json({10.0, 11.0}));

    // Where --export already holds them, no second copy is written and the message names the export.
    f.timeout_s = 60;
    sqlite3_open(path.c_str(), &holder);
    sqlite3_exec(holder, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr);
    f.timeout_s = 0.2;
    try {
        store::record_run(f, "bench", ctx, {fx::bench(ctx, {1}, {2})}, true, "", {"/tmp/x/export.json"});
        FAIL() << "a locked store was reported as success";
    } catch (const im::error & e) {
        EXPECT_NE(std::string(e.what()).find("/tmp/x/export.json"), std::string::npos) << e.what();
    }
    sqlite3_close(holder);
}

// One damaged row names its run instead of a raw JSON parse error for the whole history.
TEST(store_safety, a_damaged_row_names_its_run) {
    const auto path = test::temp_dir("store-damaged") / "results.db";
    store::database db(path);
    const auto ctx = fx::context();
    db.record("bench", ctx, {fx::bench(ctx, {100, 101}, {10, 11})}, false);
    const int64_t bad = db.record("bench", ctx, {fx::bench(ctx, {100, 101}, {10, 11})}, false);
    sql(path, "UPDATE bench SET samples_ts = '[1.0, 2' WHERE run_id = " + std::to_string(bad));
    EXPECT_EQ(db.rows(1, store::result_shape("bench")).rows.size(), 2u);
    try {
        db.rows(bad, store::result_shape("bench"));
        FAIL() << "a damaged row was read";
    } catch (const im::error & e) {
        EXPECT_NE(std::string(e.what()).find("run " + std::to_string(bad)), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("samples_ts"), std::string::npos) << e.what();
    }
}

TEST(store_labels, known_parameter_count_replaces_unknown_size) {
    EXPECT_EQ(store::model_label("qwen2 ?B Q8_0", 40'120'000), "qwen2 40.12M Q8_0");
    EXPECT_EQ(store::model_label("qwen2 1.5B Q4_K - Medium", 1'543'714'304), "qwen2 1.5B Q4_K - Medium");
    EXPECT_EQ(store::model_label("qwen2 ?B Q8_0", 0), "qwen2 ?B Q8_0");
}

TEST(store_compare, interrupted_runs_are_flagged) {
    const auto path = test::temp_dir("store-compare-int") / "results.db";
    store::database db(path);
    const auto ctx = fx::context();
    const int64_t a = db.record("bench", ctx, {fx::bench(ctx, {100, 101, 99}, {10, 11, 10})}, false);
    const int64_t b = db.record("bench", ctx, {fx::bench(ctx, {100, 102}, {10, 11})}, true);
    const auto ra = store::load_run(db, a), rb = store::load_run(db, b);
    EXPECT_FALSE(ra.interrupted);
    EXPECT_TRUE(rb.interrupted);
    const auto c = store::compare(ra, rb, {});
    bool flagged = false;
    for (const auto & n : c.notes) flagged = flagged || n.find("interrupted") != std::string::npos;
    EXPECT_TRUE(flagged);
}

// An interrupted table always says so, even with nothing measured (no bare `[]`).
TEST(store_tables, interrupted_tables_are_marked_even_when_empty) {
    const auto ctx = fx::context();
    const auto empty = report::bench_table({}, ctx, true);
    ASSERT_EQ(empty.rows.size(), 1u);
    EXPECT_EQ(std::get<bool>(empty.get(0, "interrupted")), true);
    EXPECT_TRUE(report::bench_table({}, ctx, false).rows.empty());
    workload::lockstep_result r;
    r.interrupted = true;
    const auto par = report::parallel_table(r, workload::lockstep_config{}, ctx);
    ASSERT_EQ(par.rows.size(), 1u);
    EXPECT_EQ(std::get<bool>(par.get(0, "interrupted")), true);
    workload::bench_result b;
    b.partial = true;
    b.samples_ts = {5.0};
    b.samples_ns = {1};
    const auto one = report::bench_table({b}, ctx, true);
    ASSERT_EQ(one.rows.size(), 1u);
    EXPECT_EQ(std::get<bool>(one.get(0, "partial")), true);
    EXPECT_NE(report::to_csv(one).find("interrupted,partial"), std::string::npos);
}
