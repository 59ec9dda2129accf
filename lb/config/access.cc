// [listeners.NAME] allow, deny, allow_file and deny_file: which clients may connect. The
// arrays are read with the rest of the file; the files only by load (readAccessFiles), so
// that parsing a config never touches the file system.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <unordered_map>

#include "config/readers.h"

namespace weir::config::detail {
namespace {

constexpr size_t kMaxListFileBytes = size_t{64} << 20;  // 1M prefixes of 40-odd bytes each
constexpr size_t kMaxListFileProblems = 20;             // per file; the rest are counted

// Each prefix's action and where it was written, to name both places of a conflict. Compact
// (a key and two numbers per prefix): a blocklist may hold a million.
class RuleSet {
public:
  // A place prefixes come from: "listeners.web.allow" (line = the element's index) or a list
  // file's path (line = its line number).
  uint32_t source(std::string name, bool array) {
    sources_.push_back({std::move(name), array});
    return static_cast<uint32_t>(sources_.size() - 1);
  }
  // Adds `prefix`; returns where it was given the other action before, or "".
  std::string add(const net::Cidr& prefix, bool allow, uint32_t source, uint32_t line) {
    const net::AccessList::Key key = net::AccessList::keyOf(prefix);
    Packed packed{};
    std::copy(key.bytes.begin(), key.bytes.end(), packed.begin());
    packed.back() = static_cast<uint8_t>(key.bits);
    auto [it, fresh] = seen_.try_emplace(packed, Origin{allow, source, line});
    if (!fresh) {
      return it->second.allow == allow ? "" : describe(it->second);
    }
    rules_.push_back({prefix, allow});
    return "";
  }
  size_t size() const { return rules_.size(); }
  std::shared_ptr<const net::AccessList> build() {
    seen_.clear();
    return std::make_shared<const net::AccessList>(std::move(rules_));
  }

private:
  using Packed = std::array<uint8_t, 18>;  // the key's 17 bytes and its length
  struct PackedHash {
    size_t operator()(const Packed& p) const {
      uint64_t h = 1469598103934665603ULL;  // FNV-1a
      for (uint8_t b : p) {
        h = (h ^ b) * 1099511628211ULL;
      }
      return static_cast<size_t>(h);
    }
  };
  struct Origin {
    bool allow;
    uint32_t source;
    uint32_t line;
  };
  struct Source {
    std::string name;
    bool array;
  };
  std::string describe(const Origin& o) const {
    const Source& s = sources_[o.source];
    return s.array ? s.name + "[" + std::to_string(o.line) + "]"
                   : s.name + ":" + std::to_string(o.line);
  }

  std::vector<Source> sources_;
  std::unordered_map<Packed, Origin, PackedHash> seen_;
  std::vector<net::AccessList::Rule> rules_;
};

std::string conflict(const net::Cidr& prefix, bool allow, const std::string& earlier) {
  return "\"" + prefix.toString() + "\" is also " + (allow ? "denied" : "allowed") + " by " +
         earlier + "; list a prefix in one of the lists only (a longer prefix inside it may " +
         "take the other side)";
}

std::string tooMany() {
  return "more than " + std::to_string(kMaxAccessPrefixes) +
         " prefixes in one listener's access list (allow, deny and both files together)";
}

// The whole file at `path`, or why it cannot be read.
std::optional<std::string> readWhole(const std::string& path, std::string& error) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) {
    error = "cannot open " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(::fileno(file.get()), &st) == 0 && !S_ISREG(st.st_mode)) {
    error = path + " is not a regular file";
    return std::nullopt;
  }
  std::string text;
  char buf[65536];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), file.get())) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxListFileBytes) {
      error = path + " is larger than " + std::to_string(kMaxListFileBytes >> 20) + " MiB";
      return std::nullopt;
    }
  }
  if (std::ferror(file.get())) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  return text;
}

}  // namespace

bool readPrefixArray(const Section& section, std::string_view key, std::vector<net::Cidr>& out,
                     std::vector<const toml::node*>* nodes) {
  const toml::node* node = section.get(key);
  if (node == nullptr) {
    return true;
  }
  auto* array = node->as_array();
  if (array == nullptr) {
    section.problem(*node, key,
                    "expected an array of addresses or prefixes such as [\"10.0.0.0/8\", "
                    "\"2001:db8::/32\"], got " + describe(*node));
    return false;
  }
  std::vector<size_t> index_of;  // out[k] came from array[index_of[k]]
  for (size_t i = 0; i < array->size(); ++i) {
    const toml::node& item = *array->get(i);
    std::string path = section.pathOf(key) + "[" + std::to_string(i) + "]";
    auto* text = item.as_string();
    if (text == nullptr) {
      section.diag().add(item, path,
                         "expected an address or prefix such as \"10.0.0.0/8\", got " +
                             describe(item));
      continue;
    }
    std::string error;
    auto cidr = net::Cidr::parse(text->get(), error);
    if (!cidr) {
      section.diag().add(item, path, quote(text->get()) + ": " + error);
      continue;
    }
    auto earlier = std::find(out.begin(), out.end(), *cidr);
    if (earlier != out.end()) {
      const size_t k = static_cast<size_t>(earlier - out.begin());
      std::string what = quote(text->get()) + " is already listed as " + std::string(key) +
                         "[" + std::to_string(index_of[k]) + "]";
      const std::string& written = array->get(index_of[k])->as_string()->get();
      if (written != text->get()) {
        what += " (as " + quote(written) + ")";
      }
      section.diag().add(item, path, what);
      continue;
    }
    out.push_back(*cidr);
    index_of.push_back(i);
    if (nodes != nullptr) {
      nodes->push_back(&item);
    }
  }
  return true;
}

void readAccess(const Section& section, Listener& listener) {
  std::vector<const toml::node*> allow_nodes;
  std::vector<const toml::node*> deny_nodes;
  readPrefixArray(section, "allow", listener.allow, &allow_nodes);
  readPrefixArray(section, "deny", listener.deny, &deny_nodes);
  listener.allow_file = readFilePath(section, "allow_file");
  listener.deny_file = readFilePath(section, "deny_file");
  if (listener.allow.size() + listener.deny.size() > kMaxAccessPrefixes) {
    section.problem(*section.get("deny"), "deny", tooMany());
    return;
  }
  RuleSet rules;
  const uint32_t allow = rules.source(section.pathOf("allow"), true);
  const uint32_t deny = rules.source(section.pathOf("deny"), true);
  for (size_t i = 0; i < listener.allow.size(); ++i) {
    rules.add(listener.allow[i], true, allow, static_cast<uint32_t>(i));
  }
  for (size_t i = 0; i < listener.deny.size(); ++i) {
    const std::string path = section.pathOf("deny") + "[" + std::to_string(i) + "]";
    if (std::string earlier = rules.add(listener.deny[i], false, deny, static_cast<uint32_t>(i));
        !earlier.empty()) {
      section.diag().add(*deny_nodes[i], path, conflict(listener.deny[i], false, earlier));
    }
  }
  if (rules.size() > 0) {
    listener.access = rules.build();
  }
}

std::vector<std::string> readAccessFiles(Config& cfg) {
  std::vector<std::string> problems;
  for (Listener& listener : cfg.listeners) {
    if (!listener.allow_file && !listener.deny_file) {
      continue;
    }
    RuleSet rules;
    const std::string base = "listeners." + listener.name;
    const uint32_t allow_array = rules.source(base + ".allow", true);
    const uint32_t deny_array = rules.source(base + ".deny", true);
    for (size_t i = 0; i < listener.allow.size(); ++i) {
      rules.add(listener.allow[i], true, allow_array, static_cast<uint32_t>(i));
    }
    for (size_t i = 0; i < listener.deny.size(); ++i) {
      rules.add(listener.deny[i], false, deny_array, static_cast<uint32_t>(i));
    }
    const size_t problems_before = problems.size();
    for (bool allow : {true, false}) {
      const std::optional<FileRef>& ref = allow ? listener.allow_file : listener.deny_file;
      if (!ref) {
        continue;
      }
      std::string error;
      std::optional<std::string> text = readWhole(ref->path, error);
      if (!text) {
        problems.push_back(ref->where + ": " + error);
        continue;
      }
      std::vector<net::ListFileEntry> entries;
      std::vector<net::ListFileProblem> bad;
      size_t more = 0;
      net::parseListFile(*text, entries, bad, kMaxListFileProblems, &more);
      text.reset();
      auto at = [&](size_t line, size_t column) {
        return ref->where + ": " + ref->path + ":" + std::to_string(line) + ":" +
               std::to_string(column) + ": ";
      };
      for (const auto& p : bad) {
        problems.push_back(at(p.line, p.column) + p.what);
      }
      const uint32_t file = rules.source(ref->path, false);
      for (const auto& entry : entries) {
        const auto line = static_cast<uint32_t>(entry.line);
        if (std::string earlier = rules.add(entry.prefix, allow, file, line); !earlier.empty()) {
          if (bad.size() < kMaxListFileProblems) {
            bad.push_back({});
            problems.push_back(at(entry.line, 1) + conflict(entry.prefix, allow, earlier));
          } else {
            ++more;
          }
        }
      }
      if (more > 0) {
        problems.push_back(ref->where + ": " + ref->path + ": and " + std::to_string(more) +
                           " more problems");
      }
      if (rules.size() > kMaxAccessPrefixes) {
        problems.push_back(ref->where + ": " + tooMany());
        break;
      }
    }
    if (problems.size() == problems_before) {
      listener.access = rules.build();
    }
  }
  return problems;
}

}  // namespace weir::config::detail
