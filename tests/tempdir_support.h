/* tempdir_support.h: a temporary directory for a test, removed with
 * everything in it when the test ends. C++ only. */
#ifndef WEFT_TEST_TEMPDIR_SUPPORT_H
#define WEFT_TEST_TEMPDIR_SUPPORT_H

#include <stdlib.h>

#include <string>

#include "win_support.h"

namespace {

struct TempDir {
  std::string path;  // empty when mkdtemp() failed
  explicit TempDir(const char *prefix = "weft-test") {
    std::string tmpl = std::string("/tmp/") + prefix + "-XXXXXX";
    if (mkdtemp(&tmpl[0]) != nullptr) path = tmpl;
  }
  ~TempDir() {
    if (!path.empty()) {
      std::string cmd = weft_test_rm_rf_command(path);
      if (system(cmd.c_str()) != 0) {
      }
    }
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  std::string operator/(const char *name) const { return path + "/" + name; }
};

}  // namespace

#endif
