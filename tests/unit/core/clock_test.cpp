#include "core/clock.h"

#include <gtest/gtest.h>

using namespace im;

// --start-at's instants: RFC 3339 with fractions and offsets, or epoch seconds.
TEST(clock, parse_instant_known_answers) {
    EXPECT_EQ(clock::parse_instant("1970-01-01T00:00:01Z"), 1'000'000'000);
    EXPECT_EQ(clock::parse_instant("2026-12-03T12:00:00Z"), int64_t{1796299200} * 1'000'000'000);
    EXPECT_EQ(clock::parse_instant("2026-12-03T12:00:00.25Z"), int64_t{1796299200} * 1'000'000'000 + 250'000'000);
    EXPECT_EQ(clock::parse_instant("2026-12-03T13:30:00+01:30"), int64_t{1796299200} * 1'000'000'000);
    EXPECT_EQ(clock::parse_instant("1796299200"), int64_t{1796299200} * 1'000'000'000);
    EXPECT_EQ(clock::parse_instant("1796299200.5"), int64_t{1796299200} * 1'000'000'000 + 500'000'000);
    for (const char * bad : {"", "soon", "2026-12-03", "2026-12-03T12:00:00", "2026-02-30T12:00:00Z", "2026-12-03T25:00:00Z",
                             "2026-12-03T12:00:00+1", "1e9", "12.3.4"}) {
        EXPECT_FALSE(clock::parse_instant(bad).has_value()) << bad;
    }
    EXPECT_EQ(clock::rfc3339_ms(int64_t{1796299200} * 1'000'000'000 + 250'000'000), "2026-12-03T12:00:00.250Z");
    const int64_t now = clock::unix_ns();
    EXPECT_GT(now, int64_t{1796299200} * 1'000'000'000 - int64_t{400} * 86400 * 1'000'000'000);
}
