#pragma once

// Facts fixed at configure time: recorded in every result.
namespace im::build_info {
const char * version();       // infermeter's semantic version
const char * llama_commit();  // full commit of the llama.cpp it was built with
const char * build_type();    // CMAKE_BUILD_TYPE
bool         sanitized();     // built with ASan/UBSan
}
