#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "shm/error_text.h"
#include "shm/region.h"

namespace weir::shm {
namespace {

TEST(ErrorText, EmptyUntilWritten) {
  auto region = ShmRegion::create(1, 1);
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(readErrorText(region->backend(0)), "");
}

TEST(ErrorText, WriteThenRead) {
  auto region = ShmRegion::create(1, 1);
  ASSERT_TRUE(region.ok());
  BackendSlot& s = region->backend(0);
  EXPECT_TRUE(writeErrorText(s, "connect: Connection refused"));
  EXPECT_EQ(readErrorText(s), "connect: Connection refused");
  EXPECT_TRUE(writeErrorText(s, "short"));
  EXPECT_EQ(readErrorText(s), "short");  // no tail of the longer text left over
  EXPECT_EQ(s.error_seq.load() % 2, 0u);
}

TEST(ErrorText, LongTextIsTruncated) {
  auto region = ShmRegion::create(1, 1);
  ASSERT_TRUE(region.ok());
  std::string text(500, 'x');
  EXPECT_TRUE(writeErrorText(region->backend(0), text));
  EXPECT_EQ(readErrorText(region->backend(0)), std::string(kErrorTextLen - 1, 'x'));
}

TEST(ErrorText, AWriterInProgressMakesOthersDropTheirText) {
  auto region = ShmRegion::create(1, 1);
  ASSERT_TRUE(region.ok());
  BackendSlot& s = region->backend(0);
  ASSERT_TRUE(writeErrorText(s, "first"));
  s.error_seq.fetch_add(1);  // as if another process were mid-write
  EXPECT_FALSE(writeErrorText(s, "second"));
  EXPECT_EQ(readErrorText(s), "first");  // readers give up waiting and take what is there
  s.error_seq.fetch_add(1);
  EXPECT_TRUE(writeErrorText(s, "third"));
  EXPECT_EQ(readErrorText(s), "third");
}

TEST(ErrorText, ReadersSeeWholeTextsFromAWriterAtCheckerPace) {
  // The checker writes at most once per check; here every 20 microseconds.
  auto region = ShmRegion::create(1, 1);
  ASSERT_TRUE(region.ok());
  BackendSlot& s = region->backend(0);
  const std::string a(100, 'a');
  const std::string b(60, 'b');
  ASSERT_TRUE(writeErrorText(s, a));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 100000 && !stop.load(); ++i) {
      (void)writeErrorText(s, i % 2 ? a : b);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  });
  int torn = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text = readErrorText(s);
    torn += (text == a || text == b) ? 0 : 1;
  }
  stop = true;
  writer.join();
  EXPECT_EQ(torn, 0);
}

TEST(ErrorText, EvenAWriterThatNeverPausesCannotMakeReadsOverrun) {
  auto region = ShmRegion::create(1, 1);
  ASSERT_TRUE(region.ok());
  BackendSlot& s = region->backend(0);
  const std::string a(kErrorTextLen - 1, 'a');
  const std::string b(10, 'b');
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 1000000 && !stop.load(); ++i) {
      (void)writeErrorText(s, i % 2 ? a : b);
    }
  });
  for (int i = 0; i < 20000; ++i) {
    std::string text = readErrorText(s);
    // Possibly a mix of the two texts after the reader gave up retrying, never more.
    ASSERT_LE(text.size(), kErrorTextLen - 1);
    ASSERT_EQ(text.find_first_not_of("ab"), std::string::npos);
  }
  stop = true;
  writer.join();
}

}  // namespace
}  // namespace weir::shm
