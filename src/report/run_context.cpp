#include "report/run_context.h"

#include "core/build_info.h"
#include "core/clock.h"
#include "engine/backend.h"
#include "engine/llama/session.h"

#include <algorithm>

namespace im::report {

run_context make_run_context(const engine::llama::model * m, const std::string & command_line) {
    run_context c;
    c.infermeter_version = build_info::version();
    c.llama_commit = build_info::llama_commit();
    c.build_commit = c.llama_commit.substr(0, 7);
    for (const auto & b : engine::backend_names()) c.backends += (c.backends.empty() ? "" : ",") + b;
    c.cpu_info = engine::cpu_name();
    c.gpu_info = engine::gpu_info();
    if (m) {
        c.model_filename = m->info().path.string();
        c.model_type = m->type_desc();
        c.model_size = m->size_bytes();
        c.model_n_params = m->n_params();
        c.devices = engine::llama::describe_devices(engine::llama::devices_in_use(*m));
    }
    c.test_time = clock::rfc3339_now();
    c.command_line = command_line;
    return c;
}

std::vector<field> context_fields() {
    return {
        {"schema_version", field_type::integer}, {"infermeter_version", field_type::text},
        {"build_commit", field_type::text},      {"cpu_info", field_type::text},
        {"gpu_info", field_type::text},          {"backends", field_type::text},
        {"devices", field_type::text},
        {"model_filename", field_type::text},    {"model_type", field_type::text},
        {"model_size", field_type::integer},     {"model_n_params", field_type::integer},
        {"test_time", field_type::text},
    };
}

void mark_empty_interrupted(table & t, const run_context & c, bool interrupted) {
    if (!interrupted || !t.rows.empty()) return;
    auto & row = t.add_row();
    fill_context(t, row, c);
    t.set(row, "interrupted", true);
    const bool has_partial = std::any_of(t.fields.begin(), t.fields.end(), [](const field & f) { return f.name == "partial"; });
    if (has_partial) t.set(row, "partial", true);
}

void fill_context(const table & t, std::vector<value> & row, const run_context & c) {
    t.set(row, "schema_version", int64_t{schema_version});
    t.set(row, "infermeter_version", c.infermeter_version);
    t.set(row, "build_commit", c.build_commit);
    t.set(row, "cpu_info", c.cpu_info);
    t.set(row, "gpu_info", c.gpu_info);
    t.set(row, "backends", c.backends);
    t.set(row, "devices", c.devices);
    t.set(row, "model_filename", c.model_filename);
    t.set(row, "model_type", c.model_type);
    t.set(row, "model_size", static_cast<int64_t>(c.model_size));
    t.set(row, "model_n_params", static_cast<int64_t>(c.model_n_params));
    t.set(row, "test_time", c.test_time);
}

}  // namespace im::report
