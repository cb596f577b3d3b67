#include "store/store.h"

#include "core/clock.h"
#include "core/error.h"
#include "core/format.h"
#include "core/fs.h"
#include "core/log.h"
#include "report/kinds.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <set>
#include <unistd.h>

namespace im::store {

namespace {

// Schema history (PRAGMA user_version):
//   1: runs table; one table per result kind, columns from the field lists.
// Result tables gain columns by migration whenever a field list grows (ensure_table).
constexpr int current_version = 1;

// The error for SQLite result code `rc` on `db`: a locked store names --db-timeout, a file that is
// not a database names --db.
[[noreturn]] void fail_sqlite(sqlite3 * db, int rc, const std::string & what, double timeout_s) {
    const char * file = sqlite3_db_filename(db, "main");
    const std::string path = file && *file ? file : "(results store)";
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
        throw_runtime("the results store {} is locked by another process ({}--db-timeout SECONDS waits longer)", path,
                      timeout_s >= 0 ? fmt::format("waited {:g} s; ", timeout_s) : std::string());
    }
    if ((rc & 0xff) == SQLITE_NOTADB) {
        throw_runtime("{} is not an SQLite database, so not a results store (--db PATH names another file, --no-db "
                      "skips the store)", path);
    }
    throw_runtime("results store {}: {} ({})", path, sqlite3_errmsg(db), what.substr(0, 80));
}

struct stmt {
    sqlite3_stmt * s = nullptr;
    stmt(sqlite3 * db, const std::string & sql) {
        if (const int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr); rc != SQLITE_OK) {
            fail_sqlite(db, rc, sql, -1);
        }
    }
    ~stmt() { sqlite3_finalize(s); }
    std::string text(int col) const {
        const auto * t = sqlite3_column_text(s, col);
        return t ? reinterpret_cast<const char *>(t) : "";
    }
};

void bind_value(sqlite3_stmt * s, int idx, const report::value & v) {
    std::visit(
        [&](const auto & x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::monostate>) sqlite3_bind_null(s, idx);
            else if constexpr (std::is_same_v<T, int64_t>) sqlite3_bind_int64(s, idx, x);
            else if constexpr (std::is_same_v<T, double>) sqlite3_bind_double(s, idx, x);
            else if constexpr (std::is_same_v<T, bool>) sqlite3_bind_int(s, idx, x ? 1 : 0);
            else if constexpr (std::is_same_v<T, std::string>) sqlite3_bind_text(s, idx, x.c_str(), -1, SQLITE_TRANSIENT);
            else {
                const std::string j = nlohmann::json(x).dump();
                sqlite3_bind_text(s, idx, j.c_str(), -1, SQLITE_TRANSIENT);
            }
        },
        v);
}

// A stored value as the field's type. Throws nlohmann::json::exception when an array column does not
// hold a JSON array of numbers (a damaged row); database::rows names the run.
report::value column_value(sqlite3_stmt * s, int col, report::field_type type) {
    if (sqlite3_column_type(s, col) == SQLITE_NULL) return std::monostate{};
    const auto text = [&] {
        const auto * t = reinterpret_cast<const char *>(sqlite3_column_text(s, col));
        return std::string(t ? t : "");
    };
    switch (type) {
        case report::field_type::integer: return static_cast<int64_t>(sqlite3_column_int64(s, col));
        case report::field_type::real:    return sqlite3_column_double(s, col);
        case report::field_type::boolean: return sqlite3_column_int(s, col) != 0;
        case report::field_type::text:    return text();
        case report::field_type::integer_array: return nlohmann::json::parse(text()).get<std::vector<int64_t>>();
        case report::field_type::real_array:    return nlohmann::json::parse(text()).get<std::vector<double>>();
    }
    return std::monostate{};
}

}  // namespace

std::filesystem::path default_path() { return fs::data_dir() / "results.db"; }

std::string model_label(const std::string & model_type, int64_t n_params) {
    const size_t q = model_type.find("?B");
    if (q == std::string::npos || n_params <= 0) return model_type;
    std::string size = fmtx::count_si(static_cast<double>(n_params));
    std::erase(size, ' ');
    return model_type.substr(0, q) + size + model_type.substr(q + 2);
}

std::vector<report::table> result_shapes() {
    std::vector<report::table> out;
    for (const auto & k : report::result_kinds()) out.push_back(k.shape);
    return out;
}

const report::table & result_shape(const std::string & table_name) { return report::result_kind_of(table_name).shape; }

database::database(const std::filesystem::path & path, double timeout_s) : path_(path), timeout_s_(timeout_s) {
    std::error_code ec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
        const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw_runtime("cannot open the results store {}: {} (--db PATH or --no-db)", path.string(), why);
    }
    // Another process recording a run holds the lock for milliseconds; a long wait means a stuck
    // writer (or BEGIN EXCLUSIVE held by hand), reported after --db-timeout.
    sqlite3_busy_timeout(db_, static_cast<int>(std::min(timeout_s * 1000.0, 2e9)));
    try {
        migrate();
    } catch (...) {
        sqlite3_close(db_);  // the destructor does not run when the constructor throws
        db_ = nullptr;
        throw;
    }
}

void database::migrate() {
    const int version = user_version();
    if (version > current_version) {
        throw_runtime("the results store {} was written by a newer infermeter (schema {} > {}); use --db with another file",
                      path_.string(), version, current_version);
    }
    exec("BEGIN IMMEDIATE");
    try {
        if (pragma_int("application_id") != application_id) {
            std::vector<std::string> tables;
            {
                stmt s(db_, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
                while (sqlite3_step(s.s) == SQLITE_ROW) tables.push_back(s.text(0));
            }
            // Stores written before the marker existed hold a runs table and result tables only.
            std::set<std::string> known = {"runs"};
            for (const auto & t : result_shapes()) known.insert(t.name);
            const bool ours = std::find(tables.begin(), tables.end(), "runs") != tables.end() &&
                              std::all_of(tables.begin(), tables.end(), [&](const auto & t) { return known.count(t) > 0; });
            if (!tables.empty() && !ours) {
                std::string names;
                for (size_t i = 0; i < tables.size() && i < 5; ++i) names += (i ? ", " : "") + tables[i];
                if (tables.size() > 5) names += fmt::format(", … ({} tables)", tables.size());
                throw_runtime("{} is an SQLite database of something else (tables: {}) and not an infermeter results "
                              "store; nothing was written to it (--db PATH names another file, --no-db skips the store)",
                              path_.string(), names);
            }
            exec(fmt::format("PRAGMA application_id = {}", application_id));
        }
        if (version < 1) {
            exec("CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, "
                 "test_time TEXT, model_type TEXT, model_filename TEXT, cpu_info TEXT, gpu_info TEXT, backends TEXT, "
                 "build_commit TEXT, infermeter_version TEXT, command_line TEXT, interrupted INTEGER, report_path TEXT)");
        }
        for (const auto & t : result_shapes()) ensure_table(t);
        exec(fmt::format("PRAGMA user_version = {}", current_version));
        exec("COMMIT");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

database::~database() { sqlite3_close(db_); }

int database::user_version() const { return pragma_int("user_version"); }

int database::pragma_int(const char * name) const {
    stmt s(db_, fmt::format("PRAGMA {}", name));
    const int rc = sqlite3_step(s.s);
    if (rc == SQLITE_ROW) return sqlite3_column_int(s.s, 0);
    fail(rc, fmt::format("PRAGMA {}", name));
}

void database::fail(int rc, const std::string & what) const { fail_sqlite(db_, rc, what, timeout_s_); }

void database::exec(const std::string & sql) const {
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail(rc, sql);
}

void database::ensure_table(const report::table & t) {
    std::string cols = "run_id INTEGER NOT NULL REFERENCES runs(id)";
    for (const auto & f : t.fields) cols += fmt::format(", {} {}", f.name, report::sql_type(f.type));
    exec(fmt::format("CREATE TABLE IF NOT EXISTS {} ({})", t.name, cols));
    std::set<std::string> have;
    {
        stmt s(db_, fmt::format("PRAGMA table_info({})", t.name));
        while (sqlite3_step(s.s) == SQLITE_ROW) have.insert(s.text(1));
    }
    for (const auto & f : t.fields) {
        if (!have.count(f.name)) exec(fmt::format("ALTER TABLE {} ADD COLUMN {} {}", t.name, f.name, report::sql_type(f.type)));
    }
}

int64_t database::record(const std::string & kind, const report::run_context & c, const std::vector<report::table> & tables,
                         bool interrupted, const std::string & report_path) {
    exec("BEGIN IMMEDIATE");
    try {
        int64_t id = 0;
        {
            stmt s(db_, "INSERT INTO runs (kind, test_time, model_type, model_filename, cpu_info, gpu_info, backends, "
                        "build_commit, infermeter_version, command_line, interrupted, report_path) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
            const std::string vals[] = {kind, c.test_time, c.model_type, c.model_filename, c.cpu_info, c.gpu_info,
                                        c.backends, c.build_commit, c.infermeter_version, c.command_line};
            for (int i = 0; i < 10; ++i) sqlite3_bind_text(s.s, i + 1, vals[i].c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(s.s, 11, interrupted ? 1 : 0);
            sqlite3_bind_text(s.s, 12, report_path.c_str(), -1, SQLITE_TRANSIENT);
            if (const int rc = sqlite3_step(s.s); rc != SQLITE_DONE) fail(rc, "INSERT INTO runs");
            id = sqlite3_last_insert_rowid(db_);
        }
        for (const auto & t : tables) {
            ensure_table(t);
            std::string names = "run_id", marks = "?";
            for (const auto & f : t.fields) {
                names += ", " + f.name;
                marks += ",?";
            }
            stmt s(db_, fmt::format("INSERT INTO {} ({}) VALUES ({})", t.name, names, marks));
            for (const auto & row : t.rows) {
                sqlite3_reset(s.s);
                sqlite3_bind_int64(s.s, 1, id);
                for (size_t i = 0; i < row.size(); ++i) bind_value(s.s, static_cast<int>(i) + 2, row[i]);
                if (const int rc = sqlite3_step(s.s); rc != SQLITE_DONE) fail(rc, "INSERT INTO " + t.name);
            }
        }
        exec("COMMIT");
        return id;
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

namespace {

constexpr const char * run_columns = "id, kind, test_time, model_type, model_filename, cpu_info, gpu_info, backends, "
                                     "build_commit, command_line, interrupted, report_path";

run_summary read_run(const stmt & s) {
    run_summary r;
    r.id = sqlite3_column_int64(s.s, 0);
    r.kind = s.text(1);
    r.test_time = s.text(2);
    r.model_type = s.text(3);
    r.model_filename = s.text(4);
    r.machine = s.text(5) + (s.text(6).empty() ? "" : "; " + s.text(6));
    r.backends = s.text(7);
    r.build_commit = s.text(8);
    r.command_line = s.text(9);
    r.interrupted = sqlite3_column_int(s.s, 10) != 0;
    r.report_path = s.text(11);
    return r;
}

// A LIKE pattern matching `text` anywhere, with LIKE's own wildcards taken literally (ESCAPE '\').
std::string like_substring(const std::string & text) {
    std::string out = "%";
    for (char c : text) {
        if (c == '%' || c == '_' || c == '\\') out += '\\';
        out += c;
    }
    return out + "%";
}

}  // namespace

std::vector<run_summary> database::runs(const std::string & model_filter, const std::string & machine_filter,
                                        const std::string & since, int limit) const {
    return runs(run_filter{model_filter, machine_filter, since, "", limit});
}

std::vector<run_summary> database::runs(const run_filter & f) const {
    stmt s(db_, fmt::format("SELECT {} FROM runs WHERE "
                            "(IFNULL(model_type, '') LIKE ?1 ESCAPE '\\' OR IFNULL(model_filename, '') LIKE ?1 ESCAPE '\\') "
                            "AND (IFNULL(cpu_info, '') LIKE ?2 ESCAPE '\\' OR IFNULL(gpu_info, '') LIKE ?2 ESCAPE '\\') "
                            "AND IFNULL(test_time, '') >= ?3 AND (?4 = '' OR kind = ?4) ORDER BY id DESC LIMIT ?5",
                            run_columns));
    const std::string m = like_substring(f.model), h = like_substring(f.machine);
    sqlite3_bind_text(s.s, 1, m.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s.s, 2, h.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s.s, 3, f.since.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s.s, 4, f.kind.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s.s, 5, f.limit);
    std::vector<run_summary> out;
    while (sqlite3_step(s.s) == SQLITE_ROW) out.push_back(read_run(s));
    return out;
}

std::optional<run_summary> database::run(int64_t id) const {
    stmt s(db_, fmt::format("SELECT {} FROM runs WHERE id = ?1", run_columns));
    sqlite3_bind_int64(s.s, 1, id);
    if (sqlite3_step(s.s) != SQLITE_ROW) return std::nullopt;
    return read_run(s);
}

report::table database::rows(int64_t id, const report::table & shape) const {
    report::table t;
    t.name = shape.name;
    t.fields = shape.fields;
    std::set<std::string> have;
    {
        stmt s(db_, fmt::format("PRAGMA table_info({})", t.name));
        while (sqlite3_step(s.s) == SQLITE_ROW) have.insert(s.text(1));
    }
    if (have.empty()) return t;
    std::string names;
    for (const auto & f : t.fields) names += (names.empty() ? "" : ", ") + (have.count(f.name) ? f.name : "NULL");
    stmt s(db_, fmt::format("SELECT {} FROM {} WHERE run_id = ?", names, t.name));
    sqlite3_bind_int64(s.s, 1, id);
    int rc;
    while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
        auto & row = t.add_row();
        for (size_t i = 0; i < t.fields.size(); ++i) {
            try {
                row[i] = column_value(s.s, static_cast<int>(i), t.fields[i].type);
            } catch (const nlohmann::json::exception &) {
                throw_runtime("results store {}: run {} is damaged: its {} row's {} is not a JSON array of numbers",
                              path_.string(), id, t.name, t.fields[i].name);
            }
        }
    }
    if (rc != SQLITE_DONE) fail(rc, "SELECT FROM " + t.name);
    return t;
}

nlohmann::ordered_json unrecorded_json(const std::string & kind, const report::run_context & c,
                                       const std::vector<report::table> & tables, bool interrupted) {
    nlohmann::ordered_json j;
    j["kind"] = kind;
    j["interrupted"] = interrupted;
    j["context"] = {{"infermeter_version", c.infermeter_version}, {"build_commit", c.build_commit},
                    {"backends", c.backends},                     {"cpu_info", c.cpu_info},
                    {"gpu_info", c.gpu_info},                     {"model_filename", c.model_filename},
                    {"model_type", c.model_type},                 {"test_time", c.test_time},
                    {"command_line", c.command_line}};
    auto & t = j["tables"] = nlohmann::ordered_json::object();
    for (const auto & table : tables) t[table.name] = report::to_json(table);
    return j;
}

std::optional<int64_t> record_run(const store_flags & f, const std::string & kind, const report::run_context & ctx,
                                  const std::vector<report::table> & tables, bool interrupted,
                                  const std::string & report_path, const std::vector<std::string> & kept_in) {
    if (f.no_db) return std::nullopt;
    std::filesystem::path path;
    try {
        path = f.db_path.empty() ? default_path() : std::filesystem::path(f.db_path);
        database db(path, f.timeout_s);
        const int64_t id = db.record(kind, ctx, tables, interrupted, report_path);
        log::info("recorded as run {} in {}", id, path.string());
        return id;
    } catch (const im::error & e) {
        std::string where;
        for (const auto & k : kept_in) where += (where.empty() ? "" : " and ") + k;
        if (where.empty()) {
            // Next to the store, or in the current folder when there is no store path.
            const std::string stamp = clock::rfc3339_now().substr(0, 19);
            std::string name = fmt::format("{}.unrecorded-{}-{}-{}.json", path.empty() ? "infermeter" : path.filename().string(),
                                           kind, stamp, ::getpid());
            std::replace(name.begin(), name.end(), ':', '-');
            const std::filesystem::path fallback = path.has_parent_path() ? path.parent_path() / name : std::filesystem::path(name);
            try {
                fs::write_output(fallback, unrecorded_json(kind, ctx, tables, interrupted).dump(2) + "\n");
                where = fallback.string();
            } catch (const im::error & e2) {
                throw_runtime("{}; the run was not recorded, and its results could not be kept either ({})", e.what(),
                              e2.what());
            }
        }
        throw_runtime("{}; the run was not recorded — its results are in {}", e.what(), where);
    }
}

}  // namespace im::store
