// The control socket: weirctl's requests, answered from inside the master's loop.
#include <algorithm>

#include <spdlog/spdlog.h>

#include "master/supervisor.h"
#include "master/view.h"
#include "master/view_text.h"
#include "net/address.h"
#include "shm/backend_map.h"
#include "shm/pool_slots.h"
#include "worker/worker.h"

namespace weir::master {
namespace {

using control::Command;
using control::Format;
using control::Reply;
using shm::AdminState;

// What an admin command asks for, and the state it may clear.
struct AdminChange {
  AdminState to;
  AdminState clears;  // undrain/enable: the state they undo (None for drain/disable)
  const char* done;   // past tense, for messages
};

AdminChange changeOf(Command command) {
  switch (command) {
    case Command::Drain:
      return {AdminState::Drain, AdminState::None, "drained"};
    case Command::Undrain:
      return {AdminState::None, AdminState::Drain, "undrained"};
    case Command::Disable:
      return {AdminState::Maint, AdminState::None, "disabled"};
    default:
      return {AdminState::None, AdminState::Maint, "enabled"};
  }
}

const char* meaning(AdminState state) {
  switch (state) {
    case AdminState::Drain:
      return "no new connections; open ones continue; health checks continue";
    case AdminState::Maint:
      return "no new connections; open ones continue; health checks paused";
    case AdminState::None:
      break;
  }
  return "health decides";
}

std::string listOf(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    out += (out.empty() ? "" : ", ") + name;
  }
  return out.empty() ? "none" : out;
}

std::string jsonString(std::string_view text) {
  std::string out;
  appendJsonString(out, text);
  return out;
}

// A reply in the request's format: text as it is, or {"ok":...,"message":text}.
Reply simpleReply(Format format, bool ok, const std::string& text) {
  if (format == Format::Text) {
    return {ok, text};
  }
  return {ok, std::string("{\"ok\":") + (ok ? "true" : "false") +
                  ",\"message\":" + jsonString(text) + "}"};
}

}  // namespace

void Supervisor::syncControlSocket(bool take_over) {
  const std::string& path = cfg_->global.control_socket;
  const std::optional<uint32_t> gid = cfg_->global.gid;
  if (path.empty()) {
    if (control_) {
      spdlog::info("control socket {} closed", control_->path());
    }
    control_.reset();
    return;
  }
  if (control_ && control_->path() == path && control_->gid() == gid) {
    control_->setReadOnlyUid(cfg_->global.uid);  // a reload may change the children's user
    return;
  }
  const bool own_path = control_ && control_->path() == path;
  auto handler = [this](const control::Request& request) { return onRequest(request); };
  if (!control_) {
    // Start-up: a master without the socket it was configured with does not start.
    control_ = std::make_unique<ControlSocket>(path, gid, handler, take_over);
  } else {
    try {
      // The new socket replaces the old one, which unlinks its path (if it is another).
      control_ = std::make_unique<ControlSocket>(path, gid, handler, take_over || own_path);
    } catch (const std::exception& e) {
      spdlog::error("{}; weirctl still reaches this master at {}", e.what(), control_->path());
      control_->setReadOnlyUid(cfg_->global.uid);
      return;
    }
  }
  control_->setReadOnlyUid(cfg_->global.uid);
  spdlog::info("control socket {} (mode 0660{})", path,
               gid ? ", group " + std::to_string(*gid) : "");
}

Reply Supervisor::onRequest(const control::Request& request) {
  switch (request.command) {
    case Command::Drain:
    case Command::Undrain:
    case Command::Disable:
    case Command::Enable:
      return setAdmin(request);
    case Command::Reload: {
      const ReloadResult result = reload(ReloadBy::Control);
      return simpleReply(request.format, result.ok, result.message);
    }
    case Command::Status:
    case Command::Backends:
      return showView(request);
  }
  return simpleReply(request.format, false, "unknown command");  // parseRequest made sure
}

Reply Supervisor::showView(const control::Request& request) {
  View view = gatherView(*gens_, *steering_, counters_, worker::monotonicMs());
  if (request.command == Command::Backends && !request.args.empty()) {
    const std::string& pool = request.args[0];
    std::vector<std::string> names;
    std::erase_if(view.pools, [&](const PoolView& p) {
      names.push_back(p.name);
      return p.name != pool;
    });
    if (view.pools.empty()) {
      return simpleReply(request.format, false,
                         "no pool \"" + pool + "\" (pools: " + listOf(names) + ")");
    }
  }
  if (request.format == Format::Json) {
    return Reply::success(toJson(view));
  }
  return Reply::success(request.command == Command::Status ? statusText(view)
                                                           : backendsText(view));
}

Reply Supervisor::setAdmin(const control::Request& request) {
  const std::string& pool_name = request.args[0];
  auto pool = std::find_if(cfg_->pools.begin(), cfg_->pools.end(),
                           [&](const config::Pool& p) { return p.name == pool_name; });
  if (pool == cfg_->pools.end()) {
    std::vector<std::string> names;
    for (const auto& p : cfg_->pools) {
      names.push_back(p.name);
    }
    return simpleReply(request.format, false,
                       "no pool \"" + pool_name + "\" (pools: " + listOf(names) + ")");
  }
  // A backend is named as the config and shm write it ("[::1]:80", not "[0::1]:80"; a named
  // backend's slot as "NAME:PORT#K"), or, for a named slot, by the address it holds now.
  const std::optional<net::SockAddr> parsed = net::SockAddr::parse(request.args[1]);
  const std::string asked = parsed ? parsed->toString() : request.args[1];
  std::vector<std::string> addresses;
  std::string address;  // the shm key of the backend asked for
  std::string shown;    // how the replies name it
  const size_t pool_index = static_cast<size_t>(pool - cfg_->pools.begin());
  const Generation* gen = gens_->serving();
  if (gen != nullptr && gen->cfg.get() != cfg_.get()) {
    gen = nullptr;  // its backends are another config's
  }
  for (size_t i = 0; i < pool->backends.size(); ++i) {
    const config::Backend& b = pool->backends[i];
    std::string name = config::backendName(b);
    bool match = name == asked;
    if (!match && b.named() && parsed && gen != nullptr && gen->backends &&
        pool_index < gen->backends->poolCount() && i < gen->backends->pool(pool_index).size()) {
      const shm::PoolSlots& slots = gen->backends->pool(pool_index);
      const auto held = slots.resolved(i);
      match = held && *held == *parsed && slots.state(i) != shm::BackendState::Empty;
    }
    if (match && address.empty()) {
      address = shm::slotKey(b);
      shown = name;
    }
    addresses.push_back(std::move(name));
  }
  if (address.empty()) {
    return simpleReply(request.format, false,
                       "pool " + pool_name + " has no backend " + request.args[1] +
                           " (backends: " + listOf(addresses) + ")");
  }
  const AdminChange change = changeOf(request.command);
  const AdminState was = admin_.get(pool_name, address);
  const std::string what = "pool " + pool_name + ": backend " + shown;
  if (change.to == AdminState::None && was != change.clears && was != AdminState::None) {
    // undrain of a disabled backend, enable of a drained one: say which command undoes it.
    const bool disabled = was == AdminState::Maint;
    const std::string is = disabled ? " is disabled, not drained" : " is drained, not disabled";
    return simpleReply(request.format, false,
                       what + is + "; use weirctl " + (disabled ? "enable" : "undrain"));
  }
  const bool changed = was != change.to;
  if (changed) {
    admin_.set(pool_name, address, change.to);
    if (was == AdminState::Maint) {
      // Back from maintenance, a backend ramps as one coming up does (slow_start); first,
      // so that no worker sees it eligible with its old state-change time.
      gens_->restartRamp(pool_name, address, worker::monotonicMs());
    }
    gens_->setAdmin(pool_name, address, change.to);
    spdlog::info("{} {} by weirctl: admin state {} (was {}): {}", what, change.done,
                 shm::toString(change.to), shm::toString(was), meaning(change.to));
  }
  if (request.format == Format::Json) {
    return Reply::success("{\"ok\":true,\"pool\":" + jsonString(pool_name) +
                          ",\"address\":" + jsonString(shown) +
                          ",\"admin\":" + jsonString(shm::toString(change.to)) +
                          ",\"was\":" + jsonString(shm::toString(was)) +
                          ",\"changed\":" + (changed ? "true" : "false") + "}");
  }
  std::string said = what + " " + change.done;
  if (!changed) {
    said = change.to != AdminState::None ? what + " is already " + change.done
           : change.clears == AdminState::Drain ? what + " is not drained"
                                                : what + " is not disabled";
  }
  return Reply::success(said + ": admin state " + shm::toString(change.to) + " (" +
                        meaning(change.to) + ")");
}

}  // namespace weir::master
