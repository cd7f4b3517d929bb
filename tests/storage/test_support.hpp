// Shared fixtures for the storage tests: a fresh temporary directory per test case
// (removed afterwards) and fully populated sample values.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include "policies/profile.hpp"
#include "storage/env.hpp"
#include "storage/journal_entry.hpp"
#include "storage/meta_table.hpp"
#include "storage/profile_snapshot.hpp"

namespace nudge::storage::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "nudge-storage-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& sub) const { return path_ / sub; }

 private:
  fs::path path_;
};

/// An event record from brace lists (the record's constructor takes spans).
inline policies::event_record make_event(std::string_view id, std::string_view name, policies::timestamp ts,
                                         std::string_view channel, std::vector<policies::property> properties) {
  return {id, name, ts, channel, std::span<const policies::property>(properties)};
}

/// A decision record from brace lists (the record's constructor takes spans).
inline policies::decision_record make_decision(std::string_view decision_id, std::string_view request_id,
                                               policies::timestamp ts, std::string_view channel,
                                               std::string_view placement, std::string_view version,
                                               std::initializer_list<policies::shown_action> actions, bool holdout,
                                               std::initializer_list<std::string_view> relied_on) {
  return {decision_id, request_id, ts, channel, placement, version,
          std::span(actions.begin(), actions.size()), holdout, std::span(relied_on.begin(), relied_on.size())};
}

inline env_options options_for(const fs::path& dir) {
  env_options o;
  o.dir = dir;
  o.map_size_initial = 1ull << 20;
  o.map_size_max = 1ull << 30;
  return o;
}

/// Opens an env or fails the test (through the exception Catch reports).
inline std::unique_ptr<env> open_env(const env_options& o) {
  std::error_code ec;
  auto e = env::open(o, ec);
  if (!e || ec)
    throw std::runtime_error("env::open failed: " + ec.message());
  return e;
}

/// Commits `count` meta entries of `value_bytes` each, keyed prefix + index.
inline std::error_code write_blobs(env& e, const std::string& prefix, int first, int count,
                                   std::size_t value_bytes) {
  const std::string blob(value_bytes, 'x');
  return e.commit([&](write_txn& tx) {
    for (int i = first; i < first + count; ++i)
      meta_table::put(tx, prefix + std::to_string(i), blob);
  });
}

inline policies::timestamp at_ms(std::int64_t ms) {
  return policies::timestamp{std::chrono::milliseconds{ms}};
}

/// A profile with every field set, nested optionals included.
inline policies::profile_state full_profile(const std::string& id) {
  using namespace nudge::policies;
  profile_state s;
  s.id = id;
  s.created_at = at_ms(1'790'000'000'000);
  s.updated_at = at_ms(1'790'000'500'123);
  s.identities = {{"anonymous_id", "a-91"}, {"email", "sha256:9f2c"}};
  s.merged_from = {"p-old-1", "p-old-2"};
  s.traits = {{"tier", std::string("gold"), at_ms(1'790'000'000'001)},
              {"vip", true, at_ms(1'790'000'000'002)},
              {"ltv", 1234.5, at_ms(1'790'000'000'003)},
              {"unset", std::monostate{}, at_ms(-5)}};
  s.stats.events = 37;
  s.stats.first_seen = at_ms(1'780'000'000'000);
  s.stats.last_seen = at_ms(1'790'000'500'000);
  s.stats.by_name = {{"purchase", 2, {{"price", 98.0}, {"qty", 3.0}}}, {"view", 35, {}}};
  auto e1 = make_event("e-1", "cart_add", at_ms(1'790'000'100'000), "mobile",
                       {{"sku", std::string("SKU-42")}, {"price", 49.0}, {"gift", false},
                        {"meta.none", std::monostate{}}, {"tags", std::string("[\"a\",\"b\"]")}});
  auto e2 = make_event("e-2", "purchase", at_ms(1'790'000'200'000), "web", {});
  s.history = {e1, e2};
  auto d1 = make_decision("d-1", "e-1", at_ms(1'790'000'100'001), "mobile", "banner", "2026-11-24.1",
                          {{"cart_recovery", "mobile", "banner"}, {"upsell", "email", ""}}, false,
                          {"personalization", "marketing_email"});
  auto d2 = make_decision("d-2", "q-1", at_ms(1'790'000'300'000), "support", "agent_panel", "2026-11-24.2", {},
                          true, {});
  s.decisions = {d1, d2};
  s.decisions_base = 3;  // the log dropped three from its front
  s.consent = {{"personalization", true, at_ms(1'790'000'000'010), "cmp-banner",
                at_ms(1'800'000'000'000)},
               {"marketing_email", false, at_ms(1'790'000'000'011), "admin", std::nullopt}};
  s.timers = {{"abandoned_cart", at_ms(1'790'000'102'700), "e-1"}, {"winback", at_ms(1'800'000'000'000), "e-2"}};
  s.seen = {{0x6a4c23080bfd653eULL, at_ms(1'790'000'100'000)}, {~std::uint64_t{0}, at_ms(1'790'000'100'001)}};
  s.seen_spill_until = at_ms(1'790'086'500'000);
  return s;
}

inline journal_entry sample_entry(std::uint64_t seq, const std::string& tag = "") {
  journal_entry j;
  j.seq = seq;
  j.message_id = "m-" + std::to_string(seq) + tag;
  j.source = "web";
  j.received = at_ms(1'790'000'000'000 + static_cast<std::int64_t>(seq));
  j.event = make_event("m-" + std::to_string(seq), "view", at_ms(1'790'000'000'000), "web", {{"n", double(seq)}});
  j.traits = {{"tier", std::string("silver"), at_ms(1)}};
  j.identities_added = {{"device_id", "ios-" + std::to_string(seq)}};
  j.consent = {{"analytics", true, at_ms(2), "cmp", std::nullopt}};
  j.decision = make_decision("d-" + std::to_string(seq), j.message_id, at_ms(3), "web", "hero", "v1",
                             {{"a", "web", "hero"}}, false, {});
  j.timers = {{"abandoned_cart", std::nullopt, ""}, {"abandoned_cart", at_ms(4), j.message_id}};
  return j;
}

// Field-by-field equality of the stored types (policies declares no operator==).
inline bool same(const policies::event_record& a, const policies::event_record& b) {
  if (a.id() != b.id() || a.name() != b.name() || a.ts() != b.ts() || a.channel() != b.channel() ||
      a.property_count() != b.property_count())
    return false;
  for (std::size_t i = 0; i < a.property_count(); ++i) {
    auto x = a.property_at(i), y = b.property_at(i);
    if (x.path != y.path || x.value != y.value)
      return false;
  }
  return true;
}
inline bool same(const policies::trait& a, const policies::trait& b) {
  return a.key == b.key && a.value == b.value && a.ts == b.ts;
}
inline bool same(const policies::decision_record& a, const policies::decision_record& b) {
  if (a.decision_id() != b.decision_id() || a.request_id() != b.request_id() || a.ts() != b.ts() ||
      a.channel() != b.channel() || a.placement() != b.placement() ||
      a.policy_version() != b.policy_version() || a.holdout() != b.holdout() ||
      a.action_count() != b.action_count() || a.relied_on_count() != b.relied_on_count())
    return false;
  for (std::size_t i = 0; i < a.action_count(); ++i) {
    auto x = a.action(i), y = b.action(i);
    if (x.action != y.action || x.channel != y.channel || x.placement != y.placement)
      return false;
  }
  for (std::size_t i = 0; i < a.relied_on_count(); ++i)
    if (a.relied_on(i) != b.relied_on(i))
      return false;
  return true;
}
inline bool same(const policies::consent_record& a, const policies::consent_record& b) {
  return a.purpose == b.purpose && a.granted == b.granted && a.ts == b.ts &&
         a.source == b.source && a.expires == b.expires;
}
inline bool same(const policies::identity& a, const policies::identity& b) { return a == b; }
inline bool same(const policies::armed_timer& a, const policies::armed_timer& b) {
  return a.schedule_id == b.schedule_id && a.due == b.due && a.message_id == b.message_id;
}
inline bool same(const timer_change& a, const timer_change& b) {
  return a.schedule_id == b.schedule_id && a.due == b.due && a.message_id == b.message_id;
}
inline bool same(const std::string& a, const std::string& b) { return a == b; }
inline bool same(const policies::name_stats& a, const policies::name_stats& b) {
  return a.name == b.name && a.count == b.count && a.sums == b.sums;
}
template <class Seq>
bool same_all(const Seq& a, const Seq& b) {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!same(a[i], b[i]))
      return false;
  return true;
}
inline bool same(const policies::lifetime_stats& a, const policies::lifetime_stats& b) {
  return a.events == b.events && a.first_seen == b.first_seen && a.last_seen == b.last_seen &&
         same_all(a.by_name, b.by_name);
}
inline bool same(const policies::profile_state& a, const policies::profile_state& b) {
  return a.id == b.id && a.created_at == b.created_at && a.updated_at == b.updated_at &&
         same_all(a.identities, b.identities) && same_all(a.merged_from, b.merged_from) &&
         same_all(a.traits, b.traits) && same(a.stats, b.stats) &&
         same_all(a.history, b.history) && same_all(a.decisions, b.decisions) &&
         a.decisions_base == b.decisions_base && a.history_base == b.history_base && same_all(a.consent, b.consent) && same_all(a.timers, b.timers) &&
         std::equal(a.seen.begin(), a.seen.end(), b.seen.begin(), b.seen.end(),
                    [](const auto& x, const auto& y) { return x.key_hash == y.key_hash && x.ts == y.ts; }) &&
         a.seen_spill_until == b.seen_spill_until && a.seen_base == b.seen_base;
}
template <class T>
bool same(const std::optional<T>& a, const std::optional<T>& b) {
  return a.has_value() == b.has_value() && (!a || same(*a, *b));
}
inline bool same(const journal_entry& a, const journal_entry& b) {
  return a.seq == b.seq && a.message_id == b.message_id && a.source == b.source &&
         a.received == b.received && same(a.event, b.event) && same_all(a.traits, b.traits) &&
         same_all(a.identities_added, b.identities_added) && same_all(a.consent, b.consent) &&
         same(a.decision, b.decision) && same_all(a.timers, b.timers);
}

}  // namespace nudge::storage::test
