#include "server/connection_table.h"

#include <vector>

namespace imagegate::server {

template <class Predicate>
ConnectionTable::Entries::iterator ConnectionTable::oldest(Predicate evictable) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (evictable(*it)) return it;
  }
  return entries_.end();
}

ConnectionTable::Entries::iterator ConnectionTable::earliestUpload(Id except) {
  auto earliest = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (!it->uploading || it->id == except) continue;
    if (earliest == entries_.end() || it->uploadOrder < earliest->uploadOrder) earliest = it;
  }
  return earliest;
}

void ConnectionTable::leavePending(Entry& entry) {
  if (entry.state != State::kPending) return;
  auto count = pendingByAddress_.find(entry.address);
  if (count != pendingByAddress_.end() && --count->second == 0) pendingByAddress_.erase(count);
  entry.state = State::kBusy;
}

void ConnectionTable::forget(Entries::iterator entry) {
  leavePending(*entry);
  bodyBytes_ -= entry->bodyBytes;
  byId_.erase(entry->id);
  entries_.erase(entry);
}

ConnectionTable::Closer ConnectionTable::evict(Entries::iterator entry) {
  Closer closer = std::move(entry->closer);
  forget(entry);
  ++evictions_;
  return closer;
}

std::optional<ConnectionTable::Id> ConnectionTable::admit(const std::string& address,
                                                          Closer closer) {
  std::vector<Closer> victims;
  std::optional<Id> admitted;
  {
    std::lock_guard lock(mutex_);
    const auto pendingHere = pendingByAddress_.find(address);
    if (pendingHere != pendingByAddress_.end() &&
        pendingHere->second >= limits_.maxPendingPerAddress) {
      auto victim = oldest(
          [&](const Entry& e) { return e.state == State::kPending && e.address == address; });
      if (victim != entries_.end()) victims.push_back(evict(victim));
    }
    if (entries_.size() >= limits_.maxConnections) {
      auto victim = oldest([](const Entry& e) { return e.state == State::kPending; });
      if (victim == entries_.end()) {
        victim = oldest([](const Entry& e) { return e.state == State::kIdle; });
      }
      if (victim != entries_.end()) victims.push_back(evict(victim));
    }
    if (entries_.size() < limits_.maxConnections) {
      const Id id = nextId_++;
      entries_.push_back(Entry{id, address, std::move(closer)});
      byId_.emplace(id, std::prev(entries_.end()));
      ++pendingByAddress_[address];
      admitted = id;
    }
  }
  for (const Closer& victim : victims) victim();
  return admitted;
}

void ConnectionTable::setIdle(Id id, bool idle) {
  std::lock_guard lock(mutex_);
  const auto found = byId_.find(id);
  if (found == byId_.end() || found->second->state == State::kPending) return;
  found->second->state = idle ? State::kIdle : State::kBusy;
}

bool ConnectionTable::reserveBody(Id id, std::size_t bytes) {
  std::vector<Closer> victims;
  bool reserved = false;
  {
    std::lock_guard lock(mutex_);
    const auto found = byId_.find(id);
    if (found == byId_.end()) return false;
    // Uploads that are still arriving, earliest first: a stalled upload began long ago.
    while (bodyBytes_ + bytes > limits_.maxBodyBytesInFlight) {
      auto victim = earliestUpload(id);
      if (victim == entries_.end()) break;
      victims.push_back(evict(victim));
    }
    if (bodyBytes_ + bytes <= limits_.maxBodyBytesInFlight) {
      found->second->bodyBytes += bytes;
      found->second->uploading = true;
      found->second->uploadOrder = nextUpload_++;
      bodyBytes_ += bytes;
      reserved = true;
    }
  }
  for (const Closer& victim : victims) victim();
  return reserved;
}

void ConnectionTable::requestReceived(Id id) {
  std::lock_guard lock(mutex_);
  const auto found = byId_.find(id);
  if (found == byId_.end()) return;
  found->second->uploading = false;
  leavePending(*found->second);
}

void ConnectionTable::releaseBody(Id id) {
  std::lock_guard lock(mutex_);
  const auto found = byId_.find(id);
  if (found == byId_.end()) return;
  bodyBytes_ -= found->second->bodyBytes;
  found->second->bodyBytes = 0;
  found->second->uploading = false;
}

void ConnectionTable::remove(Id id) {
  std::lock_guard lock(mutex_);
  const auto found = byId_.find(id);
  if (found != byId_.end()) forget(found->second);
}

std::size_t ConnectionTable::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::size_t ConnectionTable::bodyBytesInFlight() const {
  std::lock_guard lock(mutex_);
  return bodyBytes_;
}

std::size_t ConnectionTable::evictions() const {
  std::lock_guard lock(mutex_);
  return evictions_;
}

}  // namespace imagegate::server
