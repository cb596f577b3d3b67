#include "core/interrupt.h"

#include <gtest/gtest.h>

#include <string>

// Last words run in the order their keys were first set; a key set again replaces its work.
TEST(interrupt_last_words, run_in_order_replace_and_clear) {
    std::string log;
    im::interrupt::set_last_words("a", [&] { log += "a1"; });
    im::interrupt::set_last_words("b", [&] { log += "b"; });
    im::interrupt::set_last_words("a", [&] { log += "a2"; });
    im::interrupt::set_last_words("c", [&] { throw std::runtime_error("reported, not fatal"); });
    im::interrupt::set_last_words("d", [&] { log += "d"; });
    im::interrupt::clear_last_words("d");
    im::interrupt::run_last_words();
    EXPECT_EQ(log, "a2b");
    log.clear();
    im::interrupt::run_last_words();  // ran once: nothing left
    EXPECT_EQ(log, "");
}
