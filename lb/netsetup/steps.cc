#include "netsetup/steps.h"

#include <sys/socket.h>

#include <cstring>

namespace weir::netsetup {
namespace {

// A while-step that never empties its probe (a rule the kernel will not delete) must not spin.
constexpr int kMaxRepeats = 1000;

// "ip" for IPv4 (its default family for rules and routes), "ip -6" for IPv6, then `rest`.
std::vector<std::string> ipCommand(int family, std::initializer_list<std::string> rest) {
  std::vector<std::string> argv{"ip"};
  if (family == AF_INET6) {
    argv.push_back("-6");
  }
  argv.insert(argv.end(), rest);
  return argv;
}

std::vector<std::string> ruleCommand(const Plan& plan, int family, const char* verb) {
  return ipCommand(family, {"rule", verb, "fwmark", formatMark(plan.mark), "lookup",
                            std::to_string(plan.table)});
}

std::string interceptRule(const Intercept& i, const std::string& mark) {
  const char* ip = i.family == AF_INET6 ? "ip6" : "ip";
  const std::string port = std::to_string(i.port);
  std::string rule;
  if (!i.address.empty()) {
    rule = std::string(ip) + " daddr " + i.address + " ";
  }
  return rule + "tcp dport " + port + " tproxy " + ip + " to :" + port + " meta mark set " +
         mark + " accept";
}

std::string lastLine(const std::string& text) {
  size_t end = text.find_last_not_of("\n \t");
  if (end == std::string::npos) {
    return "";
  }
  size_t begin = text.rfind('\n', end);
  begin = begin == std::string::npos ? 0 : begin + 1;
  return text.substr(begin, end + 1 - begin);
}

std::string describeFailure(const std::vector<std::string>& argv, const util::SysError& e) {
  if (e.code == ENOENT) {
    return argv[0] + " not found: install " + (argv[0] == "nft" ? "nftables" : "iproute2");
  }
  return commandLine(argv) + ": " + e.message();
}

std::string describeFailure(const std::vector<std::string>& argv, const Output& out) {
  std::string why = out.err.empty() ? out.out : out.err;
  while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) {
    why.pop_back();
  }
  return commandLine(argv) + ": exit " + std::to_string(out.code) +
         (why.empty() ? std::string() : ":\n" + why);
}

bool isAbsent(const Step& step, const Output& out) {
  return !out.ok() && !step.absent.empty() && out.err.find(step.absent) != std::string::npos;
}

}  // namespace

std::string nftScript(const Plan& plan) {
  const std::string mark = formatMark(plan.mark);
  std::string s = "table " + std::string(kNftTable) + "\n" +
                  "flush table " + kNftTable + "\n" +
                  "table " + kNftTable + " {\n" +
                  "\tchain prerouting {\n"
                  "\t\ttype filter hook prerouting priority mangle; policy accept;\n"
                  "\t\tmeta l4proto tcp socket transparent 1 meta mark set " + mark + " accept\n";
  for (const auto& i : plan.intercepts) {
    s += "\t\t" + interceptRule(i, mark) + "\n";
  }
  s += "\t}\n}\n";
  return s;
}

std::vector<Step> upSteps(const Plan& plan) {
  std::vector<Step> steps;
  for (int family : {AF_INET, AF_INET6}) {
    if (!(family == AF_INET ? plan.ipv4 : plan.ipv6)) {
      continue;
    }
    const std::string table = std::to_string(plan.table);
    Step route;
    route.argv = ipCommand(family, {"route", "replace", "local",
                                    family == AF_INET ? "default" : "::/0", "dev", "lo",
                                    "table", table});
    steps.push_back(route);
    Step rule;
    rule.argv = ruleCommand(plan, family, "add");
    rule.when = Step::When::Unless;
    rule.probe = ruleCommand(plan, family, "show");
    steps.push_back(rule);
  }
  if (!plan.empty()) {
    steps.push_back(Step{{"nft", "-f", "-"}, nftScript(plan)});
  }
  return steps;
}

std::vector<Step> downSteps(const Plan& plan) {
  std::vector<Step> steps;
  // Declaring the table first makes the delete succeed when there is none, in one
  // transaction.
  steps.push_back(Step{{"nft", "-f", "-"},
                       "table " + std::string(kNftTable) + "\ndelete table " + kNftTable + "\n"});
  for (int family : {AF_INET, AF_INET6}) {
    Step rule;
    rule.argv = ruleCommand(plan, family, "del");
    rule.when = Step::When::While;
    rule.probe = ruleCommand(plan, family, "show");
    steps.push_back(rule);
    Step flush;
    flush.argv = ipCommand(family, {"route", "flush", "table", std::to_string(plan.table)});
    flush.absent = "table does not exist";  // never created: nothing to flush
    steps.push_back(flush);
  }
  return steps;
}

std::string render(const std::vector<std::string>& argv, const std::string& input) {
  if (input.empty()) {
    return commandLine(argv);
  }
  std::string text = commandLine(argv) + " <<'EOF'\n" + input;
  if (text.back() != '\n') {
    text += '\n';
  }
  return text + "EOF";
}

std::optional<std::string> apply(const std::vector<Step>& steps, Runner& runner,
                                 const std::function<void(const std::string&)>& print,
                                 bool dry_run) {
  // Runs argv, printing it first. nullopt: it failed (why in *failure).
  auto exec = [&](const std::vector<std::string>& argv, const std::string& input,
                  std::string* failure) -> std::optional<Output> {
    print(render(argv, input));
    auto out = runner.run(argv, input);
    if (!out) {
      *failure = describeFailure(argv, out.error());
      return std::nullopt;
    }
    return *out;
  };
  for (const Step& step : steps) {
    if (dry_run) {
      std::string line = render(step.argv, step.input);
      if (step.when == Step::When::Unless) {
        line += "  # unless `" + commandLine(step.probe) + "` lists one";
      } else if (step.when == Step::When::While) {
        line += "  # while `" + commandLine(step.probe) + "` lists one";
      }
      print(line);
      continue;
    }
    std::string failure;
    for (int round = 0;; ++round) {
      if (step.when != Step::When::Always) {
        auto probe = exec(step.probe, "", &failure);
        if (!probe) {
          return failure;
        }
        if (!probe->ok()) {
          return describeFailure(step.probe, *probe);
        }
        const bool listed = !lastLine(probe->out).empty();
        if (listed == (step.when == Step::When::Unless)) {
          break;  // Unless: it is there already. While: none left.
        }
        if (round == kMaxRepeats) {
          return commandLine(step.argv) + ": `" + commandLine(step.probe) + "` still lists " +
                 "one after " + std::to_string(kMaxRepeats) + " rounds";
        }
      }
      auto out = exec(step.argv, step.input, &failure);
      if (!out) {
        return failure;
      }
      if (!out->ok() && !isAbsent(step, *out)) {
        return describeFailure(step.argv, *out);
      }
      if (step.when != Step::When::While) {
        break;
      }
    }
  }
  return std::nullopt;
}

}  // namespace weir::netsetup
