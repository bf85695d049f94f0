#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

// Who holds the server's connection slots and request-body memory, and whom to evict when a new
// client needs them. Pure bookkeeping (no sockets), shared by every session under one mutex.
//
// The rule: a client that has not yet completed a request (handshaking, or trickling a header
// or body) and a keep-alive connection idling between requests cost us a slot but do nothing for
// anybody. When the table is full, the oldest of them goes, so slow-loris clients and idle
// floods cannot keep a well-behaved client out: it only has to finish its request before a
// limit's worth of newer connections arrive.
namespace imagegate::server {

struct ConnectionLimits {
  std::size_t maxConnections = 1024;
  /// Connections from one address that have not completed a request yet.
  std::size_t maxPendingPerAddress = 256;
  /// Request bodies being received, all connections together.
  std::size_t maxBodyBytesInFlight = 64 * 1024 * 1024;
};

class ConnectionTable {
 public:
  using Id = std::uint64_t;
  /// Asks a connection to close (from any thread; the session does it on its own thread).
  using Closer = std::function<void()>;

  explicit ConnectionTable(ConnectionLimits limits) : limits_(limits) {}

  /// A new connection from `address`. Evicts to make room when a limit is reached; nullopt when
  /// every slot is doing useful work, and the caller must close it.
  std::optional<Id> admit(const std::string& address, Closer closer);
  /// Between requests on a keep-alive connection (evictable) or busy with one (not evictable).
  void setIdle(Id id, bool idle);
  /// Room for a request body of `bytes`; evicts the unfinished uploads that began first when the
  /// total would pass the limit (by upload, not connection age: a long-lived keep-alive client
  /// sending its next small body is the newest upload, not the oldest). False when there is no room
  /// even so (the caller answers 503).
  bool reserveBody(Id id, std::size_t bytes);
  /// A whole request has arrived: the connection is no longer pending, and its body (which
  /// counts until released) is no longer evictable, since its request is now under review.
  void requestReceived(Id id);
  void releaseBody(Id id);
  /// The connection is gone (closed by itself or evicted); releases what it held.
  void remove(Id id);

  std::size_t size() const;
  std::size_t bodyBytesInFlight() const;
  std::size_t evictions() const;

 private:
  enum class State { kPending, kBusy, kIdle };
  struct Entry {
    Id id;
    std::string address;
    Closer closer;
    State state = State::kPending;
    std::size_t bodyBytes = 0;
    bool uploading = false;
    std::uint64_t uploadOrder = 0;  ///< When the current upload began (smaller is earlier).
  };
  using Entries = std::list<Entry>;  ///< Oldest first.

  /// The oldest entry matching `evictable`, or end().
  template <class Predicate>
  Entries::iterator oldest(Predicate evictable);
  /// Forgets `entry` and returns its closer, to be called after the lock is released.
  Closer evict(Entries::iterator entry);
  void forget(Entries::iterator entry);
  void leavePending(Entry& entry);
  /// The upload in progress that began first, other than `except`'s, or end().
  Entries::iterator earliestUpload(Id except);

  ConnectionLimits limits_;
  mutable std::mutex mutex_;
  Entries entries_;
  std::unordered_map<Id, Entries::iterator> byId_;
  std::unordered_map<std::string, std::size_t> pendingByAddress_;
  std::size_t bodyBytes_ = 0;
  std::size_t evictions_ = 0;
  Id nextId_ = 1;
  std::uint64_t nextUpload_ = 1;
};

}  // namespace imagegate::server
