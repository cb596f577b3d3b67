#include "core/error.h"
#include "core/format.h"
#include "core/ranges.h"

#include <gtest/gtest.h>

TEST(ranges, lists_and_ranges) {
    EXPECT_EQ(im::parse_int_list("1,2,4,8", "--workers"), (std::vector<int>{1, 2, 4, 8}));
    EXPECT_EQ(im::parse_int_list("1-64*2", "--workers"), (std::vector<int>{1, 2, 4, 8, 16, 32, 64}));
    EXPECT_EQ(im::parse_int_list("1-4", "-t"), (std::vector<int>{1, 2, 3, 4}));
    EXPECT_EQ(im::parse_int_list("128,256-1024*2", "-p"), (std::vector<int>{128, 256, 512, 1024}));
    EXPECT_EQ(im::parse_int_list("0-20+10", "-d", 0), (std::vector<int>{0, 10, 20}));
}

TEST(ranges, bad_input_is_a_usage_error_naming_the_flag) {
    for (const char * bad : {"", "a", "1,,x", "4-1", "1-8*1", "0"}) {
        try {
            im::parse_int_list(bad, "--workers");
            FAIL() << "accepted '" << bad << "'";
        } catch (const im::error & e) {
            EXPECT_EQ(e.kind(), im::error_kind::usage);
            EXPECT_NE(std::string(e.what()).find("--workers"), std::string::npos) << e.what();
        }
    }
}

TEST(format, reference_style_numbers) {
    EXPECT_EQ(im::fmtx::thousands(1187.0149), "1,187.01");
    EXPECT_EQ(im::fmtx::thousands(static_cast<int64_t>(34816)), "34,816");
    EXPECT_EQ(im::fmtx::thousands(88.1), "88.10");
    EXPECT_EQ(im::fmtx::mean_pm(1187.01, 2.05), "1,187.01 ± 2.05");
    EXPECT_EQ(im::fmtx::mean_pm(64.08, std::nullopt), "64.08 ± n/a");
    EXPECT_EQ(im::fmtx::thousands(1234567.891, 0), "1,234,568");
    EXPECT_EQ(im::fmtx::count_si(1543714304.0), "1.54 B");
    EXPECT_EQ(im::fmtx::percent(0.4612), "46%");
}

TEST(ranges, huge_ranges_are_refused_before_they_are_expanded) {
    // Issue 16 defect 3: "-w 1-2000000000" reached 8.4 GB and "-p 1-2000000000" std::bad_alloc.
    for (const char * huge : {"1-2000000000", "1-2147483647+1", "1,2,3-100000"}) {
        try {
            im::parse_int_list(huge, "--workers");
            FAIL() << huge;
        } catch (const im::error & e) {
            EXPECT_EQ(e.kind(), im::error_kind::usage);
            EXPECT_NE(std::string(e.what()).find("more than 4096 values"), std::string::npos) << e.what();
        }
    }
    EXPECT_EQ(im::parse_int_list("1-2000000000*2", "-w").size(), 31u);
    EXPECT_EQ(im::parse_int_list("1-4096", "-w").size(), 4096u);
}

TEST(ranges, values_outside_the_bounds_name_the_bound) {
    for (const char * bad : {"99999999999", "1-99999999999", "-5", "2", "0-8*2"}) {
        try {
            im::parse_int_list(bad, "--mmap", 0, 1);
            FAIL() << bad;
        } catch (const im::error & e) {
            EXPECT_EQ(e.kind(), im::error_kind::usage) << bad;
            EXPECT_NE(std::string(e.what()).find("--mmap"), std::string::npos) << e.what();
        }
    }
    EXPECT_EQ(im::parse_int_list("0,1", "--mmap", 0, 1), (std::vector<int>{0, 1}));
}

TEST(limits, thread_counts_are_bounded) {
    EXPECT_GE(im::max_threads(), 4);
    EXPECT_LE(im::max_threads(), 512);
    EXPECT_NO_THROW(im::check_threads(0, "-t"));
    EXPECT_NO_THROW(im::check_threads(im::max_threads(), "-t"));
    for (int64_t bad : {int64_t{-1}, int64_t{im::max_threads()} + 1, int64_t{30000}, int64_t{100000}}) {
        try {
            im::check_threads(bad, "-t");
            FAIL() << bad;
        } catch (const im::error & e) {
            EXPECT_EQ(e.kind(), im::error_kind::usage);
            EXPECT_NE(std::string(e.what()).find("512"), std::string::npos) << e.what();
        }
    }
    EXPECT_THROW(im::check_threads(0, "-t", false), im::error);
}
