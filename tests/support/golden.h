#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace im::test {

// Compares `actual` with tests/golden/<name>; INFERMETER_UPDATE_GOLDEN=1 rewrites the file instead.
inline void expect_golden(const std::string & name, const std::string & actual) {
    const std::filesystem::path path = std::filesystem::path(INFERMETER_TEST_GOLDEN_DIR) / name;
    if (const char * u = std::getenv("INFERMETER_UPDATE_GOLDEN"); u && std::string(u) == "1") {
        std::ofstream(path, std::ios::binary) << actual;
        return;
    }
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in) << "missing golden file " << path << " (run with INFERMETER_UPDATE_GOLDEN=1 to create it)";
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_EQ(ss.str(), actual) << "golden file " << path << " differs (INFERMETER_UPDATE_GOLDEN=1 rewrites it)";
}

}  // namespace im::test
