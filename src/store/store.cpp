#include "store/store.h"

#include "core/error.h"
#include "core/fs.h"
#include "core/log.h"
#include "report/kinds.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <set>

namespace im::store {

namespace {

// Schema history (PRAGMA user_version):
//   1: runs table; one table per result kind, columns from the field lists.
// Result tables gain columns by migration whenever a field list grows (ensure_table).
constexpr int current_version = 1;

struct stmt {
    sqlite3_stmt * s = nullptr;
    stmt(sqlite3 * db, const std::string & sql) {
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
            throw_runtime("results store: {} ({})", sqlite3_errmsg(db), sql.substr(0, 80));
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

report::value column_value(sqlite3_stmt * s, int col, report::field_type type) {
    if (sqlite3_column_type(s, col) == SQLITE_NULL) return std::monostate{};
    switch (type) {
        case report::field_type::integer: return static_cast<int64_t>(sqlite3_column_int64(s, col));
        case report::field_type::real:    return sqlite3_column_double(s, col);
        case report::field_type::boolean: return sqlite3_column_int(s, col) != 0;
        case report::field_type::text:    return std::string(reinterpret_cast<const char *>(sqlite3_column_text(s, col)));
        case report::field_type::integer_array:
            return nlohmann::json::parse(reinterpret_cast<const char *>(sqlite3_column_text(s, col))).get<std::vector<int64_t>>();
        case report::field_type::real_array:
            return nlohmann::json::parse(reinterpret_cast<const char *>(sqlite3_column_text(s, col))).get<std::vector<double>>();
    }
    return std::monostate{};
}

}  // namespace

std::filesystem::path default_path() { return fs::data_dir() / "results.db"; }

std::vector<report::table> result_shapes() {
    std::vector<report::table> out;
    for (const auto & k : report::result_kinds()) out.push_back(k.shape);
    return out;
}

const report::table & result_shape(const std::string & table_name) { return report::result_kind_of(table_name).shape; }

database::database(const std::filesystem::path & path) : path_(path) {
    std::error_code ec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
        const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        throw_runtime("cannot open the results store {}: {} (--db PATH or --no-db)", path.string(), why);
    }
    sqlite3_busy_timeout(db_, 5000);
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

int database::user_version() const {
    stmt s(db_, "PRAGMA user_version");
    return sqlite3_step(s.s) == SQLITE_ROW ? sqlite3_column_int(s.s, 0) : 0;
}

void database::exec(const std::string & sql) const {
    char * err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        const std::string why = err ? err : "unknown error";
        sqlite3_free(err);
        throw_runtime("results store {}: {}", path_.string(), why);
    }
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
            if (sqlite3_step(s.s) != SQLITE_DONE) throw_runtime("results store: {}", sqlite3_errmsg(db_));
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
                if (sqlite3_step(s.s) != SQLITE_DONE) throw_runtime("results store: {}", sqlite3_errmsg(db_));
            }
        }
        exec("COMMIT");
        return id;
    } catch (...) {
        exec("ROLLBACK");
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
    while (sqlite3_step(s.s) == SQLITE_ROW) {
        auto & row = t.add_row();
        for (size_t i = 0; i < t.fields.size(); ++i) row[i] = column_value(s.s, static_cast<int>(i), t.fields[i].type);
    }
    return t;
}

std::optional<int64_t> record_run(const store_flags & f, const std::string & kind, const report::run_context & ctx,
                                  const std::vector<report::table> & tables, bool interrupted,
                                  const std::string & report_path) {
    if (f.no_db) return std::nullopt;
    const std::filesystem::path path = f.db_path.empty() ? default_path() : std::filesystem::path(f.db_path);
    try {
        database db(path);
        const int64_t id = db.record(kind, ctx, tables, interrupted, report_path);
        log::info("recorded as run {} in {}", id, path.string());
        return id;
    } catch (const im::error & e) {
        log::warn("{} (results were not recorded; --no-db skips the store)", e.what());
        return std::nullopt;
    }
}

}  // namespace im::store
