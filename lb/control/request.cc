#include "control/request.h"

namespace weir::control {
namespace {

struct Named {
  const char* name;
  Command command;
  Arity arity;
};

constexpr Named kCommands[] = {
    {"status", Command::Status, {0, 0}},   {"backends", Command::Backends, {0, 1}},
    {"drain", Command::Drain, {2, 2}},     {"undrain", Command::Undrain, {2, 2}},
    {"disable", Command::Disable, {2, 2}}, {"enable", Command::Enable, {2, 2}},
    {"reload", Command::Reload, {0, 0}},
};

bool printable(char c) {
  return c > ' ' && c < 0x7f;
}

// `word` quoted for a message; only called with printable words.
std::string quoted(std::string_view word) {
  return "\"" + std::string(word) + "\"";
}

}  // namespace

const char* commandName(Command command) {
  for (const Named& n : kCommands) {
    if (n.command == command) {
      return n.name;
    }
  }
  return "?";
}

std::optional<Command> commandNamed(std::string_view name) {
  for (const Named& n : kCommands) {
    if (name == n.name) {
      return n.command;
    }
  }
  return std::nullopt;
}

bool readsOnly(Command command) {
  return command == Command::Status || command == Command::Backends;
}

Arity arityOf(Command command) {
  for (const Named& n : kCommands) {
    if (n.command == command) {
      return n.arity;
    }
  }
  return {0, 0};
}

ParsedRequest parseRequest(std::string_view line) {
  if (line.size() >= kMaxRequest) {
    return {std::nullopt, "request longer than " + std::to_string(kMaxRequest - 1) + " bytes"};
  }
  std::vector<std::string_view> words;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i) {
    if (i < line.size() && line[i] != ' ') {
      if (!printable(line[i])) {
        return {std::nullopt, "byte " + std::to_string(i + 1) +
                                  " of the request is not printable ASCII"};
      }
      continue;
    }
    if (i == start) {
      return {std::nullopt, line.empty() ? "empty request"
                                         : "words must be separated by exactly one space"};
    }
    if (i - start > kMaxWord) {
      return {std::nullopt, "word " + std::to_string(words.size() + 1) + " is longer than " +
                                std::to_string(kMaxWord) + " bytes"};
    }
    words.push_back(line.substr(start, i - start));
    start = i + 1;
  }
  Request request;
  if (words[0] == "text") {
    request.format = Format::Text;
  } else if (words[0] == "json") {
    request.format = Format::Json;
  } else {
    return {std::nullopt, "expected \"text\" or \"json\" first, got " + quoted(words[0])};
  }
  if (words.size() < 2) {
    return {std::nullopt, "no command"};
  }
  const std::optional<Command> command = commandNamed(words[1]);
  if (!command) {
    return {std::nullopt, "unknown command " + quoted(words[1])};
  }
  request.command = *command;
  const Arity arity = arityOf(*command);
  const size_t nargs = words.size() - 2;
  if (nargs < arity.min || nargs > arity.max) {
    std::string expected = arity.min == arity.max ? std::to_string(arity.min)
                                                  : std::to_string(arity.min) + " to " +
                                                        std::to_string(arity.max);
    return {std::nullopt, std::string(words[1]) + " takes " + expected + " argument" +
                              (arity.max == 1 ? "" : "s") + ", got " + std::to_string(nargs)};
  }
  for (size_t i = 2; i < words.size(); ++i) {
    request.args.emplace_back(words[i]);
  }
  return {std::move(request), ""};
}

std::optional<ParsedRequest> parseReceived(std::string_view bytes, bool eof) {
  const std::string_view head = bytes.substr(0, kMaxRequest);
  if (const size_t nl = head.find('\n'); nl != std::string_view::npos) {
    return parseRequest(head.substr(0, nl));
  }
  if (head.size() >= kMaxRequest) {
    return ParsedRequest{std::nullopt, "request longer than " + std::to_string(kMaxRequest - 1) +
                                           " bytes"};
  }
  if (eof) {
    return ParsedRequest{std::nullopt, "no newline before the end"};
  }
  return std::nullopt;
}

std::string formatRequest(const Request& request) {
  std::string line = request.format == Format::Json ? "json " : "text ";
  line += commandName(request.command);
  for (const std::string& arg : request.args) {
    line += ' ';
    line += arg;
  }
  line += '\n';
  return line;
}

}  // namespace weir::control
