// The merge rules of API.md section 5, one at a time, on plain profile states.
#include "actors/profile_logic.hpp"

#include <catch2/catch.hpp>

namespace nudge::actors {
namespace {

using namespace std::chrono_literals;
using policies::timestamp;

const timestamp t0{std::chrono::milliseconds(1'800'000'000'000)};

profile_options granted_options() {
  profile_options opt;
  opt.purpose_defaults.assign(opt.purposes.size(), true);  // opt-out: analytics granted
  return opt;
}

policies::decision_record decided(std::string_view id, std::string_view request, timestamp ts, std::string_view channel,
                                  std::initializer_list<policies::shown_action> actions) {
  return {id, request, ts, channel, "", "v1", std::span(actions.begin(), actions.size()), false, {}};
}

policies::event_record ev(std::string id, std::string name, timestamp ts) {
  return {id, name, ts, "web", std::span<const policies::property>{}};
}

TEST_CASE("merge: identities and merged_from are united", "[actors][merge]") {
  auto opt = granted_options();
  policies::profile_state s, l;
  s.id = "p-1";
  l.id = "p-2";
  s.identities = {{"device_id", "ios-1"}};
  l.identities = {{"anonymous_id", "a-1"}, {"device_id", "ios-1"}};
  l.merged_from = {"p-3"};
  merge_profiles(s, l, opt, t0);
  CHECK(s.identities.size() == 2);
  CHECK(s.merged_from == std::vector<std::string>{"p-3", "p-2"});
}

TEST_CASE("merge: history is united in time order and deduplicated by message id", "[actors][merge]") {
  auto opt = granted_options();
  policies::profile_state s, l;
  s.history = {ev("e-1", "page_view", t0), ev("e-3", "cart_add", t0 + 2s)};
  l.history = {ev("e-2", "product_view", t0 + 1s), ev("e-3", "cart_add", t0 + 2s), ev("e-4", "purchase", t0 + 3s)};
  merge_profiles(s, l, opt, t0 + 4s);
  REQUIRE(s.history.size() == 4);
  CHECK(s.history[0].id() == "e-1");
  CHECK(s.history[1].id() == "e-2");
  CHECK(s.history[2].id() == "e-3");
  CHECK(s.history[3].id() == "e-4");

  // Still bounded by history_max_events: the oldest go.
  opt.history_max_events = 2;
  policies::profile_state a, b;
  a.history = {ev("x-1", "a", t0), ev("x-3", "a", t0 + 2s)};
  b.history = {ev("x-2", "a", t0 + 1s)};
  merge_profiles(a, b, opt, t0 + 3s);
  REQUIRE(a.history.size() == 2);
  CHECK(a.history[0].id() == "x-2");
}

TEST_CASE("merge: stats add counts and sums and widen first and last seen", "[actors][merge]") {
  auto opt = granted_options();
  policies::profile_state s, l;
  s.stats.events = 3;
  s.stats.first_seen = t0 + 10s;
  s.stats.last_seen = t0 + 20s;
  s.stats.by_name = {{"purchase", 1, {{"price", 49.0}}}};
  l.stats.events = 2;
  l.stats.first_seen = t0;
  l.stats.last_seen = t0 + 30s;
  l.stats.by_name = {{"purchase", 1, {{"price", 51.0}, {"qty", 2.0}}}, {"page_view", 1, {}}};
  merge_profiles(s, l, opt, t0 + 40s);
  CHECK(s.stats.events == 5);
  CHECK(s.stats.first_seen == t0);
  CHECK(s.stats.last_seen == t0 + 30s);
  REQUIRE(s.stats.by_name.size() == 2);
  CHECK(s.stats.by_name[0].count == 2);
  CHECK(s.stats.by_name[0].sums == std::vector<std::pair<std::string, double>>{{"price", 100.0}, {"qty", 2.0}});
  CHECK(s.stats.by_name[1].name == "page_view");
}

TEST_CASE("merge: traits keep the latest value per key", "[actors][merge]") {
  auto opt = granted_options();
  policies::profile_state s, l;
  s.traits = {{"tier", std::string("silver"), t0 + 5s}, {"city", std::string("Leeds"), t0 + 9s}};
  l.traits = {{"tier", std::string("gold"), t0 + 7s}, {"city", std::string("York"), t0 + 1s},
              {"lang", std::string("en"), t0}};
  merge_profiles(s, l, opt, t0 + 10s);
  REQUIRE(s.traits.size() == 3);
  CHECK(std::get<std::string>(s.find_trait("tier")->value) == "gold");
  CHECK(std::get<std::string>(s.find_trait("city")->value) == "Leeds");
  CHECK(std::get<std::string>(s.find_trait("lang")->value) == "en");
}

TEST_CASE("merge: consent keeps the latest decision per purpose, denied wins a tie", "[actors][merge]") {
  auto opt = granted_options();
  policies::profile_state s, l;
  s.consent = {{"personalization", true, t0 + 5s, "cmp", {}},
               {"marketing_email", true, t0 + 5s, "cmp", {}},
               {"marketing_sms", false, t0 + 9s, "cmp", {}}};
  l.consent = {{"personalization", false, t0 + 7s, "app", {}},
               {"marketing_email", false, t0 + 5s, "app", {}},
               {"marketing_sms", true, t0 + 1s, "app", {}},
               {"marketing_push", true, t0, "app", {}}};
  merge_profiles(s, l, opt, t0 + 10s);
  auto state = [&](const char* purpose) {
    for (const auto& c : s.consent)
      if (c.purpose == purpose)
        return c.granted;
    FAIL(purpose);
    return false;
  };
  CHECK_FALSE(state("personalization"));  // later denial
  CHECK_FALSE(state("marketing_email"));  // tie: denied
  CHECK_FALSE(state("marketing_sms"));    // the survivor's own later denial stays
  CHECK(state("marketing_push"));         // only the loser had it
}

TEST_CASE("merge: decisions (caps and cooldowns) are united in time order", "[actors][merge]") {
  auto opt = granted_options();
  policies::profile_state s, l;
  s.decisions = {decided("d-1", "e-1", t0, "web", {{"cart_recovery", "web", "banner"}})};
  l.decisions = {decided("d-0", "m-1", t0 - 1s, "mobile", {{"cart_recovery", "mobile", "banner"}}),
                 decided("d-1", "e-1", t0, "web", {})};
  s.decisions_base = 5;
  s.history = {ev("e-1", "page_view", t0)};
  s.history_base = 9;
  merge_profiles(s, l, opt, t0 + 1s);
  CHECK(s.history_base == 10);  // the rebuilt history's ordinals follow the old one's
  REQUIRE(s.decisions.size() == 2);
  CHECK(s.decisions_base == 6);  // the rebuilt log's ordinals follow the old log's
  CHECK(s.decisions[0].decision_id() == "d-0");
  CHECK(s.decisions[0].action(0).channel == "mobile");
  CHECK(s.decisions[1].decision_id() == "d-1");
  CHECK(s.decisions[1].action_count() == 1);

  opt.decisions_max = 1;  // the merged log keeps the newest decisions_max
  policies::profile_state a, b;
  a.decisions = {decided("d-2", "e-2", t0 + 2s, "web", {})};
  b.decisions = {decided("d-1", "e-1", t0 + 1s, "web", {}), decided("d-3", "e-3", t0 + 3s, "web", {})};
  merge_profiles(a, b, opt, t0 + 4s);
  REQUIRE(a.decisions.size() == 1);
  CHECK(a.decisions[0].decision_id() == "d-3");
}

TEST_CASE("the decision log keeps the newest decisions_max records, oldest first", "[actors][merge]") {
  profile_options opt;
  opt.decisions_max = 3;
  policies::profile_state p;
  for (int i = 0; i < 7; ++i) {
    const auto id = "d-" + std::to_string(i);
    apply_decision(p, decided(id, "m", t0 + std::chrono::seconds(i), "web", {{"a", "", ""}}), opt);
    CHECK(p.decisions.size() == static_cast<std::size_t>(std::min(i + 1, 3)));
    CHECK(p.decisions.back().decision_id() == id);
    // The first kept decision's ordinal: the decisions dropped from the front.
    CHECK(p.decisions_base == static_cast<std::uint64_t>(std::max(i - 2, 0)));
  }
  CHECK(p.decisions.front().decision_id() == "d-4");
  CHECK(p.decisions.capacity() <= 4);  // a full log carries at most slack() spare slots (here 1)
  opt.decisions_max = 2;  // a lower bound drops more at once
  apply_decision(p, decided("d-7", "m", t0 + 7s, "web", {}), opt);
  CHECK(p.decisions.front().decision_id() == "d-6");
  CHECK(p.decisions_base == 6);
  opt.decisions_max = 0;
  apply_decision(p, decided("d-9", "m", t0, "web", {}), opt);
  CHECK(p.decisions.empty());
  CHECK(p.decisions_base == 8);
}

TEST_CASE("history keeps the newest history_max_events in time order, late events placed by their ts",
          "[actors][merge]") {
  auto opt = granted_options();
  opt.history_max_events = 3;
  policies::profile_state p;
  auto add = [&](std::string id, timestamp ts) {
    storage::journal_entry e;
    e.received = t0 + 1h;
    e.event = ev(std::move(id), "page_view", ts);
    apply_entry(p, e, opt);
  };
  auto ids = [&] {
    std::string out;
    for (const auto& h : p.history) out += std::string(h.id()) + " ";
    return out;
  };
  // history_base, the first event's ordinal (storage's chunks are numbered by it):
  // drops from the front advance it; an event placed before the newest renumbers the
  // rest, so the history takes a new range after its old end.
  add("e-2", t0 + 2s);
  CHECK(p.history_base == 0);
  add("e-1", t0 + 1s);  // late: placed before e-2
  CHECK(p.history_base == 1);  // a new range: 1 (e-1), 2 (e-2)
  add("e-4", t0 + 4s);
  CHECK(ids() == "e-1 e-2 e-4 ");
  CHECK(p.history_base == 1);  // appended
  add("e-3", t0 + 3s);  // full: the oldest goes, the late one is placed
  CHECK(ids() == "e-2 e-3 e-4 ");
  CHECK(p.history_base == 4);  // one dropped (2), then a new range after the end (2 + 2)
  add("e-0", t0);  // full, and older than all kept: not kept
  CHECK(ids() == "e-2 e-3 e-4 ");
  CHECK(p.history_base == 4);
  add("e-2b", t0 + 2s);  // ties the oldest: kept after it, the oldest goes
  CHECK(ids() == "e-2b e-3 e-4 ");
  CHECK(p.history_base == 7);
  for (int i = 5; i < 40; ++i)
    add("e-" + std::to_string(i), t0 + std::chrono::seconds(i));
  CHECK(ids() == "e-37 e-38 e-39 ");
  CHECK(p.history_base == 42);  // each of the 35 dropped one from the front
  CHECK(p.history.capacity() <= 4);  // a full log carries at most slack() spare slots (here 1)
  CHECK(p.stats.events == 41);  // stats count every event, kept or not
  opt.history_max_age = 10s;  // and events older than history_max_age before `received` go
  add("e-40", t0 + 40s);
  CHECK(p.history.empty());
  CHECK(p.history_base == 46);  // one for the full history, then all three by age

  // Withdrawing analytics clears the history: the next events start after its end.
  opt.history_max_age = std::chrono::hours(24 * 400);
  add("e-41", t0 + 41s);
  add("e-42", t0 + 42s);
  CHECK(p.history_base == 46);
  storage::journal_entry withdraw;
  withdraw.received = t0 + 1h;
  withdraw.consent = {{"analytics", false, t0 + 43s, "cmp", {}}};
  apply_entry(p, withdraw, opt);
  CHECK(p.history.empty());
  CHECK(p.history_base == 48);
}

TEST_CASE("merge: created_at is the older one, and without analytics behaviour is not kept", "[actors][merge]") {
  profile_options opt;  // opt-in: nothing granted by default
  policies::profile_state s, l;
  s.created_at = t0 + 5s;
  l.created_at = t0;
  s.history = {ev("e-1", "page_view", t0 + 5s)};
  s.stats.events = 1;
  l.consent = {{"analytics", false, t0 + 6s, "cmp", {}}};
  merge_profiles(s, l, opt, t0 + 7s);
  CHECK(s.created_at == t0);
  CHECK(s.history.empty());
  CHECK(s.history_base == 2);  // rebuilt (a new range after 1 event), then cleared
  CHECK(s.stats.events == 0);
}

TEST_CASE("a message's seen hash is the first 8 bytes of SHA-256 of source, NUL, id", "[actors][dedupe]") {
  // sha256("web\0e-1") = 6a4c23080bfd653e...; stored in snapshots, so fixed here.
  CHECK(seen_key_hash("web", "e-1") == 0x6a4c23080bfd653eULL);
  CHECK(seen_key_hash("", "") == 0x6e340b9cffb37a98ULL);
  CHECK(seen_key_hash("we", "b\0e-1") != seen_key_hash("web", "e-1"));
}

TEST_CASE("seen messages: the window drops the old, the bound spills to ids for a window", "[actors][dedupe]") {
  profile_options opt;
  opt.dedupe_window = 10min;
  opt.dedupe_seen_max = 3;
  policies::profile_state p;
  CHECK(note_seen(p, 1, t0, opt));
  CHECK(note_seen(p, 2, t0 + 1min, opt));
  CHECK(note_seen(p, 3, t0 + 2min, opt));
  // Full: the fourth is not noted, and ids go by id until its window ends.
  CHECK_FALSE(note_seen(p, 4, t0 + 3min, opt));
  CHECK(p.seen.size() == 3);
  CHECK(p.seen_spill_until == t0 + 13min);
  // Once the first leaves the window there is room again; the spill bound stays.
  CHECK(note_seen(p, 5, t0 + 10min + 1ms, opt));
  REQUIRE(p.seen.size() == 3);
  CHECK(p.seen.front().key_hash == 2);
  CHECK(p.seen.back().key_hash == 5);
  CHECK(p.seen_spill_until == t0 + 13min);
  // Drops from the front keep the others' ordinals (storage chunks them by ordinal).
  CHECK(p.seen_base == 1);
  // All of them gone after a quiet window.
  CHECK(note_seen(p, 6, t0 + 1h, opt));
  REQUIRE(p.seen.size() == 1);
  CHECK(p.seen.front().ts == t0 + 1h);
  CHECK(p.seen_base == 4);
  // A bound of 0 notes nothing: every id goes by id.
  opt.dedupe_seen_max = 0;
  policies::profile_state none;
  CHECK_FALSE(note_seen(none, 1, t0, opt));
  CHECK(none.seen.empty());
  CHECK(none.seen_spill_until == t0 + 10min);
}

TEST_CASE("find_seen: the newest in-window entries with the hash, newest first, as the plain loop finds them", "[actors][dedupe]") {
  // The plain loop it replaces, widened as find_seen is: newest first, stopping at the
  // first entry before `oldest` from the back, within blocks of four any in-window hit.
  const auto reference = [](const std::vector<policies::seen_message>& seen, std::uint64_t h, timestamp oldest) {
    std::vector<std::size_t> out;
    for (std::size_t i = seen.size(); i > 0 && seen[i - 1].ts >= oldest; --i)
      if (seen[i - 1].key_hash == h)
        out.push_back(i - 1);
    return out;
  };
  const auto all = [](const std::vector<policies::seen_message>& seen, std::uint64_t h, timestamp oldest) {
    std::vector<std::size_t> out;
    for (auto i = find_seen(seen, seen.size(), h, oldest); i != seen.size(); i = find_seen(seen, i, h, oldest))
      out.push_back(i);
    return out;
  };
  std::vector<policies::seen_message> empty;
  CHECK(find_seen(empty, 0, 1, t0) == 0);
  CHECK(find_seen(empty, 5, 1, t0) == 0);  // an end past the size is the size

  // Every length from 0 to 40 (blocks of four and every remainder), hashes drawn from a
  // few values so that each repeats, the window's start at every position.
  std::uint64_t state = 7;
  auto next = [&state] { state = state * 6364136223846793005ULL + 1442695040888963407ULL; return state >> 33; };
  for (std::size_t n = 0; n <= 40; ++n) {
    std::vector<policies::seen_message> seen;
    for (std::size_t i = 0; i < n; ++i)
      seen.push_back({next() % 5, t0 + std::chrono::seconds(i)});
    for (std::size_t cut = 0; cut <= n + 1; ++cut) {
      const timestamp oldest = t0 + std::chrono::seconds(cut);
      for (std::uint64_t h = 0; h < 6; ++h) {
        INFO("n " << n << " window from " << cut << " hash " << h);
        CHECK(all(seen, h, oldest) == reference(seen, h, oldest));
      }
    }
  }

  // Out of time order (a clock set back): an entry before the window is never
  // returned; those after it are, newest first; whether the one behind it is looked at
  // depends on where the blocks of four fall (the plain loop stopped at the gap).
  std::vector<policies::seen_message> odd{{9, t0 + 5s}, {9, t0}, {9, t0 + 6s}, {9, t0 + 7s}, {9, t0 + 8s}};
  auto found = all(odd, 9, t0 + 5s);
  REQUIRE(found.size() >= 3);
  CHECK(std::vector<std::size_t>(found.begin(), found.begin() + 3) == std::vector<std::size_t>{4, 3, 2});
  for (auto i : found)
    CHECK(odd[i].ts >= t0 + 5s);
  odd.insert(odd.begin(), {9, t0 + 5s});  // now the gap sits inside the first block looked at
  found = all(odd, 9, t0 + 5s);
  CHECK(found == std::vector<std::size_t>{5, 4, 3});
}

TEST_CASE("merge: seen messages of both, in time order, in a new range of ordinals", "[actors][merge][dedupe]") {
  profile_options opt;
  opt.dedupe_window = 10min;
  policies::profile_state s, l;
  s.id = "p-s";
  l.id = "p-l";
  s.seen_base = 7;
  CHECK(note_seen(s, 1, t0, opt));
  CHECK(note_seen(s, 3, t0 + 2s, opt));
  CHECK(note_seen(l, 2, t0 + 1s, opt));
  merge_profiles(s, l, opt, t0 + 3s);
  REQUIRE(s.seen.size() == 3);
  CHECK(s.seen[0].key_hash == 1);
  CHECK(s.seen[1].key_hash == 2);
  CHECK(s.seen[2].key_hash == 3);
  // Reordered: after the old end (7 + 2), so no stored chunk is taken for current.
  CHECK(s.seen_base == 9);
  // Nothing to merge: the ordinals stay.
  policies::profile_state empty;
  empty.id = "p-e";
  merge_profiles(s, empty, opt, t0 + 4s);
  CHECK(s.seen_base == 9);
}

TEST_CASE("replaying journal entries rebuilds the same seen messages", "[actors][dedupe]") {
  profile_options opt;
  opt.dedupe_seen_max = 2;
  policies::profile_state live;
  policies::profile_state replayed;
  for (int i = 0; i < 4; ++i) {
    storage::journal_entry e;
    e.seq = static_cast<std::uint64_t>(i + 1);
    e.message_id = "m-" + std::to_string(i);
    e.source = "web";
    e.received = t0 + 1s * i;
    note_seen(live, seen_key_hash(e.source, e.message_id), e.received, opt);
    apply_entry(replayed, e, opt);
  }
  REQUIRE(replayed.seen.size() == 2);
  CHECK(replayed.seen[1].key_hash == live.seen[1].key_hash);
  CHECK(replayed.seen[1].key_hash == seen_key_hash("web", "m-1"));
  CHECK(replayed.seen_spill_until == live.seen_spill_until);
  CHECK(replayed.seen_spill_until == t0 + 3s + opt.dedupe_window);  // the last one spilled
}

TEST_CASE("merge: seen messages are united in time order, with the later spill bound", "[actors][merge][dedupe]") {
  auto opt = granted_options();
  policies::profile_state s, l;
  s.id = "p-1";
  l.id = "p-2";
  s.seen = {{1, t0}, {3, t0 + 2s}};
  l.seen = {{2, t0 + 1s}, {4, t0 + 3s}};
  l.seen_spill_until = t0 + 1h;
  merge_profiles(s, l, opt, t0 + 4s);
  REQUIRE(s.seen.size() == 4);
  for (std::size_t i = 0; i < 4; ++i)
    CHECK(s.seen[i].key_hash == i + 1);
  CHECK(s.seen_spill_until == t0 + 1h);
}

TEST_CASE("consent bits follow opt.purposes, into a reused vector as into a new one", "[actors][consent]") {
  profile_options opt;  // opt-in: nothing granted by default
  policies::profile_state p;
  p.consent = {{"personalization", true, t0, "cmp", {}},
               {"marketing_email", true, t0, "cmp", t0 + 5s},  // expires
               {"analytics", false, t0, "cmp", {}}};
  const auto bits = consent_bits(p, opt, t0 + 1s);
  REQUIRE(bits.size() == opt.purposes.size());
  for (std::size_t i = 0; i < opt.purposes.size(); ++i)
    CHECK(bits[i] == (opt.purposes[i] == "personalization" || opt.purposes[i] == "marketing_email"));
  // A vector that held more, all set, is resized and every bit written.
  std::vector<bool> reused(opt.purposes.size() + 3, true);
  consent_bits(p, opt, t0 + 1s, reused);
  CHECK(reused == bits);
  consent_bits(p, opt, t0 + 10s, reused);  // the email grant has expired
  for (std::size_t i = 0; i < opt.purposes.size(); ++i)
    CHECK(reused[i] == (opt.purposes[i] == "personalization"));
}

TEST_CASE("relied_on: the granted purposes that the chosen actions require, once each", "[actors][consent]") {
  profile_options opt;
  // analytics and marketing_email granted, personalization and marketing_sms not.
  const std::vector<bool> bits{true, false, true, false, false};
  const std::vector<std::string> needs_analytics{"analytics"};
  const std::vector<std::string> needs_personalization{"personalization"};
  policies::decision d;
  d.actions.push_back({policies::action_view{0, "a", "null", "", needs_analytics}, 1.0, "email", ""});
  d.actions.push_back({policies::action_view{1, "b", "null", "", needs_analytics}, 1.0, "", ""});
  d.actions.push_back({policies::action_view{2, "c", "null", "", needs_personalization}, 1.0, "sms", ""});
  std::vector<std::string_view> out{"left over"};
  relied_on(d, "web", opt, bits, false, out);
  CHECK(out == std::vector<std::string_view>{"analytics", "marketing_email"});
  relied_on(d, "web", opt, {true, true, true, true, true}, true, out);
  CHECK(out == std::vector<std::string_view>{"personalization", "analytics", "marketing_email", "marketing_sms"});
}

}  // namespace
}  // namespace nudge::actors
