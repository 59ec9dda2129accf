#pragma once

#include <string>

namespace weir::test {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction unless
// the environment sets WEIR_TEST_KEEP_TMP=1 (handy when a test failure needs a post-mortem).
class TempDir {
public:
  // Throws std::runtime_error if the directory cannot be created.
  explicit TempDir(const std::string& prefix = "weir-test");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `content` to file(name) and returns that path. Throws on I/O errors.
  std::string write(const std::string& name, const std::string& content) const;

private:
  std::string path_;
};

// The whole content of `path`, or "" if it cannot be read.
std::string readTextFile(const std::string& path);

}  // namespace weir::test
