#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "netsetup/command.h"

namespace weir::netsetup {

// A Runner that records every command line and answers from a table (exit 0 with no output
// for a command it does not know), or from `answer` when that is set.
class FakeRunner final : public Runner {
public:
  std::vector<std::string> ran;      // command lines, in order
  std::vector<std::string> inputs;   // what each was fed
  std::map<std::string, Output> replies;
  std::function<util::Result<Output>(const std::string& line)> answer;

  util::Result<Output> run(const std::vector<std::string>& argv,
                           const std::string& input) override {
    const std::string line = commandLine(argv);
    ran.push_back(line);
    inputs.push_back(input);
    if (answer) {
      return answer(line);
    }
    auto it = replies.find(line);
    return it == replies.end() ? Output{} : it->second;
  }
};

}  // namespace weir::netsetup
