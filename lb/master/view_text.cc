#include "master/view_text.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <vector>

namespace weir::master {
namespace {

// Rows of cells printed in columns as wide as their widest cell, two spaces apart; the last
// column is not padded (it holds free text: an error).
class Table {
public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  std::string render() const {
    std::vector<size_t> width(rows_[0].size(), 0);
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size(); ++i) {
        width[i] = std::max(width[i], row[i].size());
      }
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) {
          line.append(width[i] - row[i].size() + 2, ' ');
        }
      }
      line.erase(line.find_last_not_of(' ') + 1);
      out += line + "\n";
    }
    return out;
  }

private:
  std::vector<std::vector<std::string>> rows_;
};

std::string number(uint64_t n) { return std::to_string(n); }

// Error texts come from shared memory: printable ASCII only, on one line.
std::string printable(const std::string& text) {
  if (text.empty()) {
    return "-";
  }
  std::string out;
  for (char c : text) {
    out += c >= 0x20 && c < 0x7f ? c : '?';
  }
  return out;
}

std::string evenness(const GenerationView& gen) {
  uint64_t most = 0;
  uint64_t fewest = UINT64_MAX;
  for (const WorkerView& w : gen.workers) {
    most = std::max(most, w.accepted);
    fewest = std::min(fewest, w.accepted);
  }
  const std::string of = "generation " + std::to_string(gen.number);
  if (gen.workers.empty() || most == 0) {
    return "evenness (" + of + "): no connection accepted yet\n";
  }
  if (fewest == 0) {
    return "evenness (" + of + "): accepted max/min = inf (" + number(most) +
           " / 0: a worker has accepted nothing yet)\n";
  }
  char ratio[32];
  std::snprintf(ratio, sizeof(ratio), "%.2f", static_cast<double>(most) / fewest);
  return "evenness (" + of + "): accepted max/min = " + ratio + " (" + number(most) + " / " +
         number(fewest) + ")\n";
}

}  // namespace

std::string formatAge(int64_t age_ms) {
  if (age_ms < 0) {
    return "never";
  }
  const int64_t s = age_ms / 1000;
  std::string out;
  if (s < 60) {
    out = std::to_string(s) + "s";
  } else if (s < 3600) {
    out = std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  } else if (s < 86400) {
    out = std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
  } else {
    out = std::to_string(s / 86400) + "d" + std::to_string(s % 86400 / 3600) + "h";
  }
  return out + " ago";
}

std::string statusText(const View& view) {
  std::string out = "master pid " + std::to_string(view.master_pid) + ", steering " +
                    view.steering + (view.steering_bpf ? " (bpf)" : " (kernel hash)") + ", " +
                    number(view.reloads) + " reload" + (view.reloads == 1 ? "" : "s") + "\n";
  Table table({"GEN", "STATE", "SLOT", "PID", "ACTIVE", "ACCEPTED"});
  for (const GenerationView& g : view.generations) {
    for (const WorkerView& w : g.workers) {
      table.add({number(g.number), g.draining ? "draining" : "serving", std::to_string(w.slot),
                 w.pid > 0 ? std::to_string(w.pid) : "-", std::to_string(w.active),
                 number(w.accepted)});
    }
  }
  out += table.render();
  if (!view.generations.empty() && !view.generations.back().draining) {
    out += evenness(view.generations.back());
  }
  return out;
}

namespace {

// The configured weight, or "EFFECTIVE/WEIGHT" while slow start ramps the backend.
std::string weightText(const BackendView& b) {
  if (b.slow_start_remaining_ms <= 0) {
    return number(b.weight);
  }
  char effective[32];
  std::snprintf(effective, sizeof(effective), "%.2f", b.effective_weight);
  return std::string(effective) + "/" + number(b.weight);
}

}  // namespace

std::string backendsText(const View& view) {
  Table table({"POOL", "BACKEND", "STATE", "ADMIN", "WEIGHT", "ACTIVE", "TOTAL", "FAILED",
               "CHECKED", "ERROR"});
  for (const PoolView& p : view.pools) {
    for (const BackendView& b : p.backends) {
      const std::string name = b.resolved.empty() ? b.address
                                                  : b.address + " (" + b.resolved + ")";
      table.add({p.name, name, b.state, b.admin, weightText(b), std::to_string(b.active),
                 number(b.total), number(b.failed_connects), formatAge(b.last_check_age_ms),
                 printable(b.last_error)});
    }
  }
  return table.render();
}

}  // namespace weir::master
