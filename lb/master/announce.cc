#include "master/announce.h"

#include <cstdio>

#include <spdlog/spdlog.h>

namespace weir::master {
namespace {

constexpr int64_t kRetryMs = 5000;
constexpr int64_t kVerifyMs = 5000;

}  // namespace

void Announcer::failed(const util::SysError& error, int64_t now_ms) {
  retry_at_ = now_ms + kRetryMs;
  std::string text = error.message();
  if (text != last_error_) {
    spdlog::error("announce: {} (tried again every {} s; the master needs CAP_NET_ADMIN)", text,
                  kRetryMs / 1000);
    last_error_ = std::move(text);
  }
}

bool Announcer::open(uint32_t table, uint8_t protocol, int64_t now_ms) {
  if (table_ && table_->table() == table && table_->protocol() == protocol) {
    return true;
  }
  if (table_) {
    // A reload moved the routes to another table or protocol: none stay in the old one.
    withdrawAll("announce_table or announce_protocol changed", now_ms);
    table_.reset();
    installed_.clear();
  }
  auto opened = net::RouteTable::open(table, protocol);
  if (!opened) {
    failed(opened.error(), now_ms);
    return false;
  }
  auto found = opened->list();
  if (!found) {
    failed(found.error(), now_ms);
    return false;
  }
  table_.emplace(std::move(*opened));
  installed_.clear();
  installed_.insert(found->begin(), found->end());
  verify_at_ = now_ms + kVerifyMs;
  if (!installed_.empty()) {
    spdlog::info("announce: table {} protocol {} already holds {} route(s) (a binary upgrade's "
                 "old master or a master that did not stop cleanly); keeping those still wanted",
                 table, protocol, installed_.size());
  }
  return true;
}

void Announcer::sync(uint32_t table, uint8_t protocol, const Routes& want,
                     const std::string& why_not, int64_t now_ms) {
  if (retry_at_ >= 0 && now_ms < retry_at_) {
    return;
  }
  if (!open(table, protocol, now_ms)) {
    return;
  }
  retry_at_ = -1;
  if (now_ms >= verify_at_) {
    auto found = table_->list();
    if (!found) {
      failed(found.error(), now_ms);
      return;
    }
    std::set<net::HostAddr> now_there(found->begin(), found->end());
    for (const net::HostAddr& gone : installed_) {
      if (now_there.count(gone) == 0 && want.count(gone) != 0) {
        spdlog::warn("announce: {} was removed from table {} by someone else; adding it again",
                     gone.toString(), table);
      }
    }
    installed_ = std::move(now_there);
    verify_at_ = now_ms + kVerifyMs;
  }
  for (auto it = installed_.begin(); it != installed_.end();) {
    if (want.count(*it) != 0) {
      ++it;
      continue;
    }
    if (auto r = table_->remove(*it); !r) {
      failed(r.error(), now_ms);
      return;
    }
    spdlog::info("announce: withdrew {} from table {}: {}", it->toString(), table, why_not);
    it = installed_.erase(it);
  }
  for (const auto& [vip, why] : want) {
    if (installed_.count(vip) != 0) {
      continue;
    }
    if (auto r = table_->add(vip); !r) {
      failed(r.error(), now_ms);
      return;
    }
    spdlog::info("announce: added {} to table {} ({})", vip.toString(), table, why);
    installed_.insert(vip);
  }
  last_error_.clear();
}

void Announcer::withdrawAll(const std::string& why, int64_t now_ms) {
  if (!table_) {
    return;
  }
  for (auto it = installed_.begin(); it != installed_.end();) {
    if (auto r = table_->remove(*it); !r) {
      failed(r.error(), now_ms);
      ++it;
      continue;
    }
    spdlog::info("announce: withdrew {} from table {}: {}", it->toString(), table_->table(), why);
    it = installed_.erase(it);
  }
}

int withdrawRoutes(const config::Config& cfg) {
  auto table = net::RouteTable::open(cfg.global.announce_table,
                                     static_cast<uint8_t>(cfg.global.announce_protocol));
  auto found = table ? table->list() : util::Result<std::vector<net::HostAddr>>(table.error());
  if (!found) {
    std::fprintf(stderr, "weir: %s\n", found.error().message().c_str());
    return 1;
  }
  int status = 0;
  for (const net::HostAddr& vip : *found) {
    if (auto r = table->remove(vip); !r) {
      std::fprintf(stderr, "weir: %s\n", r.error().message().c_str());
      status = 1;
    } else {
      std::fprintf(stderr, "weir: withdrew %s from table %u\n", vip.toString().c_str(),
                   cfg.global.announce_table);
    }
  }
  return status;
}

void Announcer::forget() {
  table_.reset();
  installed_.clear();
}

}  // namespace weir::master
