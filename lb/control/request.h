#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The control socket's requests: one line per connection, "<format> <command> [args...]\n",
// words separated by single spaces, at most kMaxRequest bytes with the newline. Whoever may
// connect to the socket sends these bytes to the root master, so the parser is strict: known
// words only, printable ASCII, the exact number of arguments.
namespace weir::control {

inline constexpr size_t kMaxRequest = 1024;  // bytes, "\n" included
inline constexpr size_t kMaxWord = 128;      // longer than any pool name or address

enum class Format { Text, Json };

enum class Command { Status, Backends, Drain, Undrain, Disable, Enable, Reload };

struct Request {
  Format format = Format::Text;
  Command command = Command::Status;
  // Status, Reload: none. Backends: optionally a pool. Drain..Enable: pool, address.
  std::vector<std::string> args;

  bool operator==(const Request&) const = default;
};

// A request or why there is none (a message for the reply, safe to print: any byte of the
// input it quotes is printable ASCII).
struct ParsedRequest {
  std::optional<Request> request;
  std::string error;
};

// Parses one request line, without its "\n". Never throws; anything not exactly as described
// above is an error.
ParsedRequest parseRequest(std::string_view line);

// What the master makes of the first bytes of a connection, of which it reads at most
// kMaxRequest (`eof`: the client closed its side after them): nullopt while a request may
// still come (no newline, fewer than kMaxRequest bytes, no eof); else the request in the line
// before the first newline (bytes after it are ignored: one request per connection), or why
// there is none.
std::optional<ParsedRequest> parseReceived(std::string_view bytes, bool eof);

// The request line weirctl sends, "\n" included. The words of `request` must be valid words
// (printable, no spaces, non-empty, at most kMaxWord bytes); parseRequest reads it back.
std::string formatRequest(const Request& request);

// "drain" for Command::Drain...; nullopt for a word that is no command.
const char* commandName(Command command);
std::optional<Command> commandNamed(std::string_view name);

// How many arguments `command` takes: [min, max].
struct Arity {
  size_t min;
  size_t max;
};
Arity arityOf(Command command);

// Status and Backends only read; every other command changes what the master does.
bool readsOnly(Command command);

}  // namespace weir::control
