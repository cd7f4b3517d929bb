// The gateway's shared state: options, credentials, and the hand-off of decoded
// messages to the actors. Sessions (one strand each) call it concurrently; it
// never waits for an actor: it resolves identities and enqueues, nothing more.
#pragma once

#include "actors/context.hpp"
#include "actors/identity_resolver.hpp"
#include "actors/message.hpp"
#include "net/gateway_options.hpp"

#include <atomic>
#include <iosfwd>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace nudge::net {

class gateway {
public:
  gateway(gateway_options opts, actors::context& ctx, actors::identity_resolver& resolver)
    : opts_(std::move(opts)), ctx_(ctx), resolver_(resolver) {
    opts_.blocked_seen = &ctx_.metrics.identities_blocked;
  }

  /// A connection's memory of its last resolution: a connection that keeps sending
  /// the same identities skips the resolver until a merge or erasure bumps its
  /// generation. Owned by one session (its strand).
  struct route_cache {
    std::vector<policies::identity> ids;
    std::string profile_id;
    std::vector<policies::identity> added;
    std::uint64_t generation = 0;
  };

  const gateway_options& options() const noexcept { return opts_; }
  /// The reply lane of the calling I/O thread (net/io_lane.hpp), or null off them. A
  /// session takes its thread's lane when it starts.
  static actors::reply_lane* lane_here() noexcept;
  static void set_lane_here(actors::reply_lane* lane) noexcept;
  actors::context& ctx() noexcept { return ctx_; }
  actors::identity_resolver& resolver() noexcept { return resolver_; }

  /// The stream source whose write key this is (constant-time compare), or null.
  const stream_source* source_for_key(std::string_view key) const;
  /// Whether `token` is the admin token (constant-time compare).
  bool is_admin(std::string_view token) const;

  /// Resolves `env`'s identities (through `cache` when it still holds them) and
  /// sends it to its profile actor. The reply arrives through env->sink.
  void dispatch(actors::envelope_ptr env, route_cache* cache = nullptr);
  /// As dispatch, with a resolution the caller cached.
  void dispatch_to(const std::string& profile_id, actors::envelope_ptr env);

  /// Whether a profile with this id is active or stored.
  bool profile_exists(const std::string& profile_id);

  /// When a message carries a suppressed identity (an erasure with ?suppress=true),
  /// answers it here — `{"type":"decision",...,"suppressed":true,"actions":[]}` or an
  /// ack with "suppressed": true — and returns true: nothing of it is stored and no
  /// profile is resolved or created. Call before resolution.
  bool answer_if_suppressed(const actors::envelope_ptr& env);

  /// A message that reached an erased profile's id: an operator's request is
  /// answered 404; anything else is resolved again (and so starts a new profile).
  void redispatch(actors::envelope_ptr env);

  /// The profile an admin path names: a merged-away id answers its survivor; nullopt
  /// when neither is active nor stored.
  std::optional<std::string> find_profile(const std::string& id);

  std::string metrics_text() const;
  /// GET /v1/stats. Rates are per second over the last minute (since start when the
  /// service is younger): each call keeps at most one sample per second.
  std::string stats_json();

  /// A connection's place in its remote address's count (max_connections_per_address),
  /// given back when the last session holding it ends; empty when there is no limit.
  using address_slot = std::shared_ptr<void>;
  /// False when `address` holds max_connections_per_address connections already.
  bool take_address_slot(const std::string& address, address_slot& slot);

  std::atomic<bool> ready{false};
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> ws_dropped{0};
  std::atomic<std::uint64_t> connections_refused{0};  ///< past max_connections (or per address)
  std::atomic<std::int64_t> inflight{0};

private:
  /// `"timers": {...}, "outbox": {...}` for stats_json.
  void schedule_stats(std::ostream& o) const;
  struct rate_sample {
    std::chrono::steady_clock::time_point at;
    std::uint64_t messages = 0;
    std::uint64_t decisions = 0;
  };

  gateway_options opts_;
  std::mutex addresses_mtx_;
  std::unordered_map<std::string, std::size_t> addresses_;  ///< connections per remote address
  std::mutex rates_mtx_;
  std::deque<rate_sample> rate_samples_;  ///< oldest first, one per second at most, 60 s
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  actors::context& ctx_;
  actors::identity_resolver& resolver_;
};

}  // namespace nudge::net
