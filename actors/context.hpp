// What every profile actor shares: options, the active policy, storage, the
// journal writer, the directory and the counters behind /metrics. Created once by
// the composition root (app/) and outlives the actor system.
#pragma once

#include "actors/latency_histogram.hpp"
#include "policies/policy.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace caf {
class actor_system;
}
namespace nudge::storage {
class env;
}

namespace nudge::actors {

class journal;
class directory;
class counter_store;
class timer_service;
class outbox_service;
class suppression_list;
struct envelope;

struct profile_options {
  std::size_t history_max_events = 500;
  std::chrono::milliseconds history_max_age = std::chrono::hours(24 * 400);
  std::chrono::milliseconds idle_passivate = std::chrono::minutes(10);
  std::size_t max_active = 1000000;
  std::chrono::milliseconds dedupe_window = std::chrono::hours(24);
  /// The messages a profile remembers as seen within the dedupe window (their replies
  /// stored by time); past this many, ids are also stored by id (profile_logic.hpp).
  std::size_t dedupe_seen_max = 1024;
  /// Consent purposes in config order and their defaults (true: granted).
  std::vector<std::string> purposes{"analytics", "personalization", "marketing_email",
                                    "marketing_sms", "marketing_push"};
  std::vector<bool> purpose_defaults = std::vector<bool>(5, false);
  /// A snapshot is written after this many journal entries (and on passivation).
  std::uint64_t snapshot_every = 64;
  /// Decisions kept per profile at most (caps look back through them; policy
  /// validation refuses a cap over this, policies::policy_limits::decisions_kept).
  std::size_t decisions_max = policies::decisions_kept;
  /// Retention: a profile holding only identities of `anonymous_types` is erased once
  /// idle this long (0: never).
  std::chrono::milliseconds anonymous_ttl{0};
  std::vector<std::string> anonymous_types{"device_id", "anonymous_id"};
};

/// Counters for /metrics and /v1/stats; relaxed atomics, any thread.
struct service_metrics {
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> events{0};
  std::atomic<std::uint64_t> decisions{0};
  std::atomic<std::uint64_t> decisions_with_actions{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> activations{0};
  std::atomic<std::uint64_t> passivations{0};
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> decision_ns_total{0};
  std::atomic<std::uint64_t> schedule_fires{0};       ///< timers that fired and decided
  std::atomic<std::uint64_t> schedule_no_identity{0};  ///< sends skipped: no identity for the channel
  std::atomic<std::uint64_t> identities_blocked{0};
  std::atomic<std::uint64_t> merges_failed{0};
  // By outcome (/metrics): messages refused by a profile or answered as suppressed,
  // decisions that were only the fallback, empty, or in the holdout group.
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> suppressed{0};
  std::atomic<std::uint64_t> decisions_fallback{0};
  std::atomic<std::uint64_t> decisions_empty{0};
  std::atomic<std::uint64_t> decisions_holdout{0};
  std::atomic<std::uint64_t> erasures{0};
  /// Time from a message reaching its profile actor to its decision being made.
  latency_histogram decision_latency;
};

/// The active policy; swapped atomically, each decision keeps the one it started with.
class policy_holder {
public:
  std::shared_ptr<const policies::policy> get() const { return ptr_.load(std::memory_order_acquire); }
  void set(std::shared_ptr<const policies::policy> p) { ptr_.store(std::move(p), std::memory_order_release); }

private:
  std::atomic<std::shared_ptr<const policies::policy>> ptr_;
};

struct context {
  profile_options options;
  storage::env* env = nullptr;
  journal* writer = nullptr;
  directory* dir = nullptr;
  counter_store* counters = nullptr;
  timer_service* timers = nullptr;  ///< null: armed timers are stored but fire only after a restart
  outbox_service* outbox = nullptr;  ///< null: no destinations
  caf::actor_system* system = nullptr;
  policy_holder policy;
  service_metrics metrics;
  /// Called (on the writer thread, or on the actor for a message never written) once
  /// what a resolution reserved is settled: identity_resolver::settled.
  std::function<void(std::uint64_t ticket)> on_resolution_settled;
  /// Privacy (issue #5): the suppression list, and how a profile actor being erased
  /// hands on the messages that still reach it (resolved again, so that they start a
  /// new profile) and tells resolution that its identities are gone (any thread).
  suppression_list* suppression = nullptr;
  std::function<void(std::shared_ptr<envelope>)> redispatch;
  std::function<void(const std::string& profile_id)> on_erasing;     ///< identity_resolver::erasing
  std::function<void(const std::string& profile_id)> on_erase_failed;  ///< identity_resolver::erase_failed
};

}  // namespace nudge::actors
