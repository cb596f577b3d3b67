// core/fs.h: the one way outputs are written (issue 16, defects 1 and 4; DESIGN §5).
#include "core/error.h"
#include "core/fs.h"
#include "support/run.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <thread>
#include <unistd.h>

namespace fsys = std::filesystem;
using im::fs::target_kind;

namespace {

std::string slurp(const std::filesystem::path & p) { return im::test::read_text(p); }

void spit(const fsys::path & p, const std::string & s) { std::ofstream(p, std::ios::binary) << s; }

bool is_char_device(const fsys::path & p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

// A character device node in the test's own folder (never a /dev entry): major 1 minor 3 is the
// null device, 1/7 the full device (every write fails with ENOSPC). Needs root (CAP_MKNOD).
bool make_node(const fsys::path & p, unsigned minor) {
    return ::mknod(p.c_str(), S_IFCHR | 0666, makedev(1, minor)) == 0;
}

size_t files_in(const fsys::path & dir) {
    size_t n = 0;
    for ([[maybe_unused]] const auto & e : fsys::directory_iterator(dir)) ++n;
    return n;
}

}  // namespace

TEST(fs_write_output, new_and_regular_files_are_replaced_atomically_keeping_the_mode) {
    const auto dir = im::test::temp_dir("fs-regular");
    const auto p = dir / "sub" / "a.json";
    im::fs::write_output(p, "one");
    EXPECT_EQ(slurp(p), "one");
    ::chmod(p.c_str(), 0640);
    im::fs::write_output(p, "two");
    EXPECT_EQ(slurp(p), "two");
    struct stat st {};
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
    EXPECT_EQ(files_in(dir / "sub"), 1u) << "a temporary file was left behind";
}

TEST(fs_write_output, a_symlink_is_followed_and_stays_a_link) {
    const auto dir = im::test::temp_dir("fs-symlink");
    spit(dir / "target.json", "old");
    fsys::create_symlink("target.json", dir / "link.json");
    im::fs::write_output(dir / "link.json", "new", "--export");
    EXPECT_TRUE(fsys::is_symlink(dir / "link.json"));
    EXPECT_EQ(slurp(dir / "target.json"), "new");
    // A dangling link names the file to create.
    fsys::create_symlink("made.json", dir / "dangling.json");
    im::fs::write_output(dir / "dangling.json", "made");
    EXPECT_TRUE(fsys::is_symlink(dir / "dangling.json"));
    EXPECT_EQ(slurp(dir / "made.json"), "made");
}

TEST(fs_write_output, a_character_device_is_written_through_not_replaced) {
    const auto dir = im::test::temp_dir("fs-chardev");
    if (!make_node(dir / "null", 3)) GTEST_SKIP() << "mknod needs root";
    im::fs::write_output(dir / "null", std::string(1 << 20, 'x'), "--export");
    EXPECT_TRUE(is_char_device(dir / "null")) << "the device node was replaced by a regular file";
    EXPECT_EQ(files_in(dir), 1u);

    // Through a symlink too.
    fsys::create_symlink("null", dir / "link");
    im::fs::write_output(dir / "link", "x");
    EXPECT_TRUE(is_char_device(dir / "null"));
    EXPECT_TRUE(fsys::is_symlink(dir / "link"));

    // A big output made by name (model synth) is copied through.
    {
        im::fs::output_file out(dir / "null", "-o");
        EXPECT_EQ(out.target().kind, target_kind::stream);
        EXPECT_NE(out.temp_path().parent_path(), dir) << "the temporary must not go next to a device";
        spit(out.temp_path(), "GGUF....");
        out.commit();
    }
    EXPECT_TRUE(is_char_device(dir / "null"));
}

TEST(fs_write_output, a_failing_device_write_is_an_error) {
    const auto dir = im::test::temp_dir("fs-full");
    if (!make_node(dir / "full", 7)) GTEST_SKIP() << "mknod needs root";
    try {
        im::fs::write_output(dir / "full", "results", "--export");
        FAIL() << "writing to a full device succeeded";
    } catch (const im::error & e) {
        EXPECT_NE(std::string(e.what()).find("No space left"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("--export"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(is_char_device(dir / "full"));
}

TEST(fs_write_output, a_fifo_is_written_through) {
    const auto dir = im::test::temp_dir("fs-fifo");
    ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0600), 0);
    std::string got;
    std::thread reader([&] { got = slurp(dir / "pipe"); });
    im::fs::write_output(dir / "pipe", "through the pipe");
    reader.join();
    EXPECT_EQ(got, "through the pipe");
    struct stat st {};
    ASSERT_EQ(::lstat((dir / "pipe").c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST(fs_write_output, a_directory_is_refused) {
    const auto dir = im::test::temp_dir("fs-dir");
    fsys::create_directories(dir / "d");
    EXPECT_THROW(im::fs::write_output(dir / "d", "x"), im::error);
    EXPECT_TRUE(fsys::is_directory(dir / "d"));
}

TEST(fs_output_file, uncommitted_temporaries_are_removed) {
    const auto dir = im::test::temp_dir("fs-outfile");
    fsys::path tmp, extra;
    {
        im::fs::output_file out(dir / "model.gguf");
        tmp = out.temp_path();
        extra = out.extra_temp(".q8_0");
        spit(tmp, "partial");
        spit(extra, "partial");
    }
    EXPECT_FALSE(fsys::exists(tmp));
    EXPECT_FALSE(fsys::exists(extra));
    EXPECT_FALSE(fsys::exists(dir / "model.gguf"));
}

TEST(fs_refuse_input_overwrite, same_file_by_any_name) {
    const auto dir = im::test::temp_dir("fs-input");
    spit(dir / "data.json", "[]");
    fsys::create_symlink("data.json", dir / "alias.json");
    try {
        im::fs::refuse_input_overwrite(dir / "alias.json", "--export", {{dir / "data.json", "--dataset"}});
        FAIL() << "an output that is the input was accepted";
    } catch (const im::error & e) {
        EXPECT_EQ(e.kind(), im::error_kind::usage);
        EXPECT_NE(std::string(e.what()).find("--dataset"), std::string::npos) << e.what();
    }
    EXPECT_THROW(im::fs::refuse_input_overwrite(dir / "." / "data.json", "--export", {{dir / "data.json", "--dataset"}}),
                 im::error);
    EXPECT_NO_THROW(im::fs::refuse_input_overwrite(dir / "other.json", "--export", {{dir / "data.json", "--dataset"}}));
    EXPECT_NO_THROW(im::fs::refuse_input_overwrite("-", "--export", {{dir / "data.json", "--dataset"}}));
    EXPECT_NO_THROW(im::fs::refuse_input_overwrite(dir / "x.json", "--export", {{"", "--vocab"}}));
}

// HOME unset: never a folder under the system temp directory, which every user shares.
TEST(fs_dirs, no_shared_temp_folder_without_home) {
    const std::string home = std::getenv("HOME") ? std::getenv("HOME") : "";
    const std::string xdg = std::getenv("XDG_DATA_HOME") ? std::getenv("XDG_DATA_HOME") : "";
    ::unsetenv("HOME");
    ::unsetenv("XDG_DATA_HOME");
    std::string where, error;
    try {
        where = im::fs::data_dir().string();
    } catch (const im::error & e) {
        error = e.what();
    }
    if (!home.empty()) ::setenv("HOME", home.c_str(), 1);
    if (!xdg.empty()) ::setenv("XDG_DATA_HOME", xdg.c_str(), 1);
    if (!error.empty()) {
        EXPECT_NE(error.find("--db"), std::string::npos) << error;
        EXPECT_NE(error.find("XDG_DATA_HOME"), std::string::npos) << error;
    } else {
        EXPECT_EQ(where.rfind(fsys::temp_directory_path().string(), 0), std::string::npos) << where;
    }
}
