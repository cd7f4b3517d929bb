#include <catch2/catch.hpp>

#include <msgpack.hpp>

#include "storage/codec.hpp"
#include "storage/detail/lmdb_ops.hpp"
#include "storage/profile_table.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

/// The snapshot stored under `id` reads back with `seq` and `state`.
void check_stored(read_txn& tx, std::string_view id, std::uint64_t seq, const policies::profile_state& state) {
  std::error_code ec;
  auto snap = profile_table::get(tx, id, ec);
  REQUIRE(!ec);
  REQUIRE(snap);
  CHECK(snap->seq == seq);
  CHECK(test::same(snap->state, state));
}

TEST_CASE("a profile snapshot is stored, replaced, counted and erased", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  std::error_code ec;
  {
    auto tx = e->read();
    CHECK_FALSE(profile_table::get(tx, "p-1", ec));
    CHECK(!ec);
    CHECK_FALSE(profile_table::stored_seq(tx, "p-1", ec));
    CHECK(!ec);
    CHECK(profile_table::count(tx) == 0);
  }
  REQUIRE(!e->commit([](write_txn& tx) {
    profile_table::put(tx, {test::full_profile("p-1"), 3});
    profile_table::put(tx, {test::full_profile("p-2"), 4});
  }));
  {
    auto tx = e->read();
    check_stored(tx, "p-1", 3, test::full_profile("p-1"));
    CHECK(profile_table::stored_seq(tx, "p-2", ec) == std::optional<std::uint64_t>(4));
    CHECK(profile_table::count(tx) == 2);
  }
  auto changed = test::full_profile("p-1");
  changed.traits.clear();
  changed.history.erase(changed.history.begin());
  REQUIRE(!e->commit([&](write_txn& tx) { profile_table::put(tx, {changed, 9}); }));
  {
    auto tx = e->read();
    auto snap = profile_table::get(tx, "p-1", ec);
    REQUIRE(snap);
    CHECK(snap->seq == 9);
    CHECK(test::same(snap->state, changed));
  }
  bool erased = false, erased_again = true;
  REQUIRE(!e->commit([&](write_txn& tx) {
    erased = profile_table::erase(tx, "p-1");
    erased_again = profile_table::erase(tx, "p-1");
  }));
  CHECK(erased);
  CHECK_FALSE(erased_again);
  auto tx = e->read();
  CHECK_FALSE(profile_table::get(tx, "p-1", ec));
  CHECK(profile_table::count(tx) == 1);
}

/// The stored value of `key` in `dbi`, "" when absent.
std::string stored_value(read_txn& tx, MDB_dbi dbi, std::string_view key) {
  std::error_code ec;
  auto v = detail::get(tx, dbi, key, ec);
  REQUIRE(!ec);
  return v ? std::string(detail::to_view(*v)) : std::string();
}

/// The key of a profile's decision chunk (profile_table.hpp).
std::string chunk_key(std::string_view id, std::uint64_t chunk) {
  std::string k(id);
  k.push_back('\0');
  detail::append_be64(k, chunk);
  return k;
}

/// `state` with `n` more decisions appended, ids "d-<ordinal>".
void add_decisions(policies::profile_state& state, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const auto ordinal = state.decisions_base + state.decisions.size();
    state.decisions.push_back(test::make_decision("d-" + std::to_string(ordinal), "m-" + std::to_string(ordinal),
                                                  test::at_ms(1'790'000'000'000 + static_cast<std::int64_t>(ordinal)),
                                                  "web", "hero", "v1", {{"a", "web", "hero"}}, false, {}));
  }
}

/// Profile "p-1" with a log of `n` decisions from ordinal 0, stored at seq 1 by put().
policies::profile_state put_log(env& e, std::size_t n) {
  policies::profile_state state;
  state.id = "p-1";
  add_decisions(state, n);
  REQUIRE(!e.commit([&](write_txn& tx) { profile_table::put(tx, {state, 1}); }));
  return state;
}

/// Stores `state` (seq 1) with every chunk, reads it back whole, and returns the marks
/// the read gives (what a profile's next snapshot passes to encode()).
profile_table::chunk_marks put_and_read_marks(env& e, const policies::profile_state& state) {
  REQUIRE(!e.commit([&](write_txn& tx) { profile_table::put(tx, {state, 1}); }));
  profile_table::chunk_marks sealed;
  auto tx = e.read();
  std::error_code ec;
  auto snap = profile_table::get(tx, state.id, ec, &sealed);
  REQUIRE(snap);
  CHECK(test::same(snap->state, state));
  return sealed;
}

/// `state` with `n` more events appended, ids "e-<ordinal>", each a second after the last.
void add_events(policies::profile_state& state, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const auto ordinal = state.history_base + state.history.size();
    state.history.push_back(test::make_event("e-" + std::to_string(ordinal), i % 2 ? "page_view" : "cart_add",
                                             test::at_ms(1'790'000'000'000 + 1000 * static_cast<std::int64_t>(ordinal)),
                                             "web", {{"sku", "SKU-" + std::to_string(ordinal)}}));
  }
}

/// `state` with `n` more seen messages, a second apart after the last.
void add_seen(policies::profile_state& state, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const auto ordinal = state.seen_base + state.seen.size();
    state.seen.push_back({0x9e3779b97f4a7c15ULL * (ordinal + 1),
                          test::at_ms(1'790'000'000'000 + 1000 * static_cast<std::int64_t>(ordinal))});
  }
}

/// Drops the `n` oldest decisions of `state`, as a full log does.
void drop_decisions(policies::profile_state& state, std::size_t n) {
  state.decisions.erase(state.decisions.begin(), state.decisions.begin() + static_cast<std::ptrdiff_t>(n));
  state.decisions_base += n;
}

TEST_CASE("a snapshot encoded ahead of the commit is stored as put() stores it", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  auto state = test::full_profile("p-1");
  add_decisions(state, 40);  // two chunks, the second partly full
  const auto encoded = profile_table::encode(state, 7, {});
  REQUIRE_FALSE(encoded.empty());
  CHECK(encoded.decisions.first_chunk == 0);
  CHECK(encoded.decisions.chunks.size() == 2);
  REQUIRE(!e->commit([&](write_txn& tx) { profile_table::put_encoded(tx, "p-1", encoded); }));
  std::string core, chunk0, chunk1;
  {
    auto tx = e->read();
    core = stored_value(tx, e->profiles(), "p-1");
    chunk0 = stored_value(tx, e->decision_chunks(), chunk_key("p-1", 0));
    chunk1 = stored_value(tx, e->decision_chunks(), chunk_key("p-1", 1));
    check_stored(tx, "p-1", 7, state);
  }
  REQUIRE(!e->commit([&](write_txn& tx) {
    profile_table::put(tx, {state, 7});
    profile_table::put_encoded(tx, "p-3", profile_table::encode(test::full_profile("p-3"), 2, {}));
  }));
  auto tx = e->read();
  // put() wrote the same keys after put_encoded(): the stored bytes are identical.
  CHECK(stored_value(tx, e->profiles(), "p-1") == core);
  CHECK(stored_value(tx, e->decision_chunks(), chunk_key("p-1", 0)) == chunk0);
  CHECK(stored_value(tx, e->decision_chunks(), chunk_key("p-1", 1)) == chunk1);
  CHECK(core == encoded.core);
  check_stored(tx, "p-3", 2, test::full_profile("p-3"));
  CHECK(profile_table::count(tx) == 2);
}

TEST_CASE("a later snapshot writes only the chunks of the log not stored full, and drops those left behind",
          "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  auto state = put_log(*e, 70);  // ordinals 0..69: chunks 0 and 1 full, 2 partly
  profile_table::chunk_marks sealed{1, 1};
  {
    auto tx = e->read();
    std::error_code ec;
    auto snap = profile_table::get(tx, "p-1", ec, &sealed);
    REQUIRE(snap);
    CHECK(test::same(snap->state, state));
    CHECK(sealed.decisions == 64);
    CHECK(sealed.history == 0);
    CHECK(e->entries(e->decision_chunks()) == 3);
  }
  CHECK(profile_table::sealed_after(state).decisions == 64);

  add_decisions(state, 30);    // up to ordinal 99
  drop_decisions(state, 40);   // from ordinal 40: chunk 0 is behind the log
  const auto encoded = profile_table::encode(state, 2, sealed);
  CHECK(encoded.decisions.first_chunk == 2);  // chunk 1 is full and unchanged
  CHECK(encoded.decisions.chunks.size() == 2);  // 2 (64..95) and 3 (96..99)
  CHECK(encoded.decisions.drop_below == 1);
  REQUIRE(!e->commit([&](write_txn& tx) { profile_table::put_encoded(tx, "p-1", encoded); }));
  auto tx = e->read();
  check_stored(tx, "p-1", 2, state);
  CHECK(stored_value(tx, e->decision_chunks(), chunk_key("p-1", 0)).empty());
  CHECK(e->entries(e->decision_chunks()) == 3);
  CHECK(profile_table::sealed_after(state).decisions == 96);
}

TEST_CASE("a log that starts a new range of ordinals is written whole", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  auto state = put_log(*e, 50);
  // A merge rebuilds the log: its ordinals continue after the old end.
  const auto sealed = profile_table::sealed_after(state);
  state.decisions_base += state.decisions.size();
  state.decisions.clear();
  add_decisions(state, 5);
  const auto encoded = profile_table::encode(state, 2, sealed);
  CHECK(encoded.decisions.first_chunk == 1);  // ordinal 50 is in chunk 1, rewritten from there
  CHECK(encoded.decisions.drop_below == 1);
  REQUIRE(!e->commit([&](write_txn& tx) { profile_table::put_encoded(tx, "p-1", encoded); }));
  auto tx = e->read();
  check_stored(tx, "p-1", 2, state);
  CHECK(e->entries(e->decision_chunks()) == 1);
}

TEST_CASE("a history is stored in chunks: a later snapshot writes those not stored full, drops those behind",
          "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  policies::profile_state state;
  state.id = "p-1";
  add_events(state, 40);  // ordinals 0..39: chunks 0 and 1 full (16 each), 2 partly
  const auto sealed = put_and_read_marks(*e, state);
  CHECK(sealed.history == 32);
  CHECK(e->entries(e->history_chunks()) == 3);
  {
    auto tx = e->read();
    CHECK(stored_value(tx, e->profiles(), "p-1").size() < 200);  // the core holds no event
  }
  add_events(state, 10);  // up to ordinal 49
  state.history.erase(state.history.begin(), state.history.begin() + 20);
  state.history_base += 20;  // from ordinal 20: chunk 0 is behind the history
  const auto encoded = profile_table::encode(state, 2, sealed);
  CHECK(encoded.history.first_chunk == 2);      // chunk 1 is full and unchanged
  CHECK(encoded.history.chunks.size() == 2);    // 2 (32..47) and 3 (48, 49)
  CHECK(encoded.history.drop_below == 1);
  CHECK(encoded.decisions.chunks.empty());
  REQUIRE(!e->commit([&](write_txn& tx) { profile_table::put_encoded(tx, "p-1", encoded); }));
  auto tx = e->read();
  check_stored(tx, "p-1", 2, state);
  CHECK(stored_value(tx, e->history_chunks(), chunk_key("p-1", 0)).empty());
  CHECK(e->entries(e->history_chunks()) == 3);
  CHECK(profile_table::sealed_after(state).history == 48);
}

TEST_CASE("seen messages are stored in chunks: a later snapshot writes those not stored full, drops those behind",
          "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  policies::profile_state state;
  state.id = "p-1";
  add_seen(state, 150);  // ordinals 0..149: chunks 0 and 1 full (64 each), 128..149 in the core
  // A snapshot no longer rewrites 16 bytes per message of the window, only the newest.
  const auto sealed = put_and_read_marks(*e, state);
  CHECK(sealed.seen == 128);
  CHECK(e->entries(e->seen_chunks()) == 2);
  {
    auto tx = e->read();
    CHECK(stored_value(tx, e->profiles(), "p-1").size() < 100 + 22 * 16);
  }
  add_seen(state, 10);  // up to ordinal 159
  state.seen.erase(state.seen.begin(), state.seen.begin() + 70);
  state.seen_base += 70;  // from ordinal 70, as note_seen drops what left the window
  const auto encoded = profile_table::encode(state, 2, sealed);
  CHECK(encoded.seen.first_chunk == 2);    // chunk 1 is full and unchanged
  CHECK(encoded.seen.chunks.empty());      // 128..159 are fewer than a chunk: in the core
  CHECK(encoded.seen.drop_below == 1);
  CHECK(encoded.history.chunks.empty());
  REQUIRE(!e->commit([&](write_txn& tx) { profile_table::put_encoded(tx, "p-1", encoded); }));
  {
    auto tx = e->read();
    check_stored(tx, "p-1", 2, state);
    CHECK(stored_value(tx, e->seen_chunks(), chunk_key("p-1", 0)).empty());
    CHECK(e->entries(e->seen_chunks()) == 1);
  }
  CHECK(profile_table::sealed_after(state).seen == 128);
  // A profile with fewer than a chunk writes no chunk at all, also once its first
  // ordinal has moved past the last full chunk.
  policies::profile_state few;
  few.id = "p-2";
  add_seen(few, 63);
  CHECK(put_and_read_marks(*e, few).seen == 0);
  CHECK(e->entries(e->seen_chunks()) == 1);
  add_seen(few, 80);  // ordinals 0..142: chunks 0 and 1 full
  few.seen.erase(few.seen.begin(), few.seen.end() - 5);
  few.seen_base = 138;  // past 128, the last full chunk's end
  const auto moved = profile_table::encode(few, 2, {});
  CHECK(moved.seen.chunks.empty());
  CHECK(moved.seen.drop_below == 2);
  // A merge reorders them (profile_logic merges the other profile's in by time): a new
  // range after the old end, written whole from there.
  const auto before_merge = profile_table::sealed_after(state);
  state.seen_base += state.seen.size();
  add_seen(state, 3);
  const auto merged = profile_table::encode(state, 3, before_merge);
  CHECK(merged.seen.first_chunk == 2);  // ordinal 160 is in chunk 2
  CHECK(merged.seen.chunks.size() == 1);  // 160..191; 192..252 in the core
  CHECK(merged.seen.drop_below == 2);
  REQUIRE(!e->commit([&](write_txn& tx) { profile_table::put_encoded(tx, "p-1", merged); }));
  auto tx = e->read();
  check_stored(tx, "p-1", 3, state);
  CHECK(e->entries(e->seen_chunks()) == 1 + 0);  // p-2 has none
  REQUIRE(!e->commit([&](write_txn& tx) { CHECK(profile_table::erase(tx, "p-1")); }));
  CHECK(e->entries(e->seen_chunks()) == 0);
}

TEST_CASE("a history that starts a new range (an event before the newest) is written whole", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  policies::profile_state state;
  state.id = "p-1";
  add_events(state, 40);
  REQUIRE(!e->commit([&](write_txn& tx) { profile_table::put(tx, {state, 1}); }));
  const auto sealed = profile_table::sealed_after(state);
  // As profile_logic inserts an older event: the history renumbers from its old end.
  state.history_base += state.history.size();
  auto late = test::make_event("e-late", "purchase", test::at_ms(1'790'000'000'500), "web", {});
  state.history.insert(state.history.begin() + 1, late);
  const auto encoded = profile_table::encode(state, 2, sealed);
  CHECK(encoded.history.first_chunk == 2);  // ordinal 40 is in chunk 2, written from there
  CHECK(encoded.history.drop_below == 2);
  CHECK(encoded.history.chunks.size() == 4);  // 40..47, 48..63, 64..79, 80
  REQUIRE(!e->commit([&](write_txn& tx) { profile_table::put_encoded(tx, "p-1", encoded); }));
  auto tx = e->read();
  check_stored(tx, "p-1", 2, state);
  CHECK(e->entries(e->history_chunks()) == 4);  // the old 0 and 1 dropped, 2 rewritten
}

TEST_CASE("a snapshot whose history chunk is missing reads as corrupt", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  policies::profile_state state;
  state.id = "p-1";
  add_events(state, 40);
  REQUIRE(!e->commit([&](write_txn& tx) { profile_table::put(tx, {state, 1}); }));
  REQUIRE(!e->commit([&](write_txn& tx) { detail::del(tx, e->history_chunks(), chunk_key("p-1", 1)); }));
  auto tx = e->read();
  std::error_code ec;
  CHECK_FALSE(profile_table::get(tx, "p-1", ec));
  CHECK(ec == errc::corrupt);
  CHECK(profile_table::stored_seq(tx, "p-1", ec) == 1);  // the core alone still reads
}

TEST_CASE("a snapshot whose chunk is missing or short reads as corrupt", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  auto state = put_log(*e, 70);
  std::error_code ec;
  SECTION("missing") {
    REQUIRE(!e->commit([&](write_txn& tx) { detail::del(tx, e->decision_chunks(), chunk_key("p-1", 1)); }));
  }
  SECTION("short: a chunk written before it was full, and the snapshot that filled it lost") {
    policies::profile_state older = state;
    older.decisions.resize(40);
    const auto partial = profile_table::encode(older, 1, {});
    REQUIRE(partial.decisions.chunks.size() == 2);
    REQUIRE(!e->commit([&](write_txn& tx) {
      detail::put(tx, e->decision_chunks(), chunk_key("p-1", 1), partial.decisions.chunks[1]);
    }));
  }
  auto tx = e->read();
  CHECK_FALSE(profile_table::get(tx, "p-1", ec));
  CHECK(ec == errc::corrupt);
}

TEST_CASE("a snapshot stored with its decisions and history inline still reads", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  const auto state = test::full_profile("p-1");
  msgpack::sbuffer inline_bytes;
  encode(profile_snapshot{state, 5}, inline_bytes);
  REQUIRE(!e->commit([&](write_txn& tx) {
    detail::put(tx, e->profiles(), "p-1", std::string_view(inline_bytes.data(), inline_bytes.size()));
  }));
  auto tx = e->read();
  std::error_code ec;
  profile_table::chunk_marks sealed{1, 1};
  auto snap = profile_table::get(tx, "p-1", ec, &sealed);
  REQUIRE(snap);
  CHECK(test::same(snap->state, state));
  CHECK(sealed == profile_table::chunk_marks{});  // no chunks stored: the next snapshot writes them all
}

TEST_CASE("erasing a profile erases its chunks, not another's", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  policies::profile_state a, b;
  a.id = "p-1";
  b.id = "p-10";  // p-1 is a prefix of its id
  add_decisions(a, 40);
  add_decisions(b, 40);
  add_events(a, 20);
  add_events(b, 20);
  add_seen(a, 70);
  add_seen(b, 70);
  REQUIRE(!e->commit([&](write_txn& tx) {
    profile_table::put(tx, {a, 1});
    profile_table::put(tx, {b, 1});
  }));
  REQUIRE(!e->commit([&](write_txn& tx) { CHECK(profile_table::erase(tx, "p-1")); }));
  auto tx = e->read();
  CHECK(e->entries(e->decision_chunks()) == 2);
  CHECK(e->entries(e->history_chunks()) == 2);
  CHECK(e->entries(e->seen_chunks()) == 1);  // p-10's one full chunk (64 of its 70)
  check_stored(tx, "p-10", 1, b);
}

TEST_CASE("a range or a prefix erase deletes exactly its keys, 0xff bytes included", "[storage][lmdb]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  using namespace std::string_literals;
  const std::vector<std::string> keys = {"a"s, "a\0"s, "a\0\x01"s, "a\xff"s, "a\xff\xff"s, "b"s, "\xff"s, "\xff\xff"s};
  const MDB_dbi dbi = e->decision_chunks();
  REQUIRE(!e->commit([&](write_txn& tx) {
    for (const auto& k : keys)
      detail::put(tx, dbi, k, "v");
  }));
  auto left = [&] {
    std::vector<std::string> out;
    auto tx = e->read();
    for (const auto& k : keys)
      if (!stored_value(tx, dbi, k).empty())
        out.push_back(k);
    return out;
  };
  std::size_t n = 0;
  // [a 0, a 0xff): both keys that start a 0, not a itself nor a 0xff.
  REQUIRE(!e->commit([&](write_txn& tx) { n = detail::erase_range(tx, dbi, "a\0"s, "a\xff"s); }));
  CHECK(n == 2);
  CHECK(left() == std::vector<std::string>{"a"s, "a\xff"s, "a\xff\xff"s, "b"s, "\xff"s, "\xff\xff"s});
  // The prefix a 0xff ends before b, its successor once the 0xff is dropped.
  REQUIRE(!e->commit([&](write_txn& tx) { n = detail::erase_prefix(tx, dbi, "a\xff"s); }));
  CHECK(n == 2);
  CHECK(left() == std::vector<std::string>{"a"s, "b"s, "\xff"s, "\xff\xff"s});
  // A prefix of only 0xff bytes has no successor: it runs to the end.
  REQUIRE(!e->commit([&](write_txn& tx) { n = detail::erase_prefix(tx, dbi, "\xff\xff"s); }));
  CHECK(n == 1);
  CHECK(left() == std::vector<std::string>{"a"s, "b"s, "\xff"s});
  // No upper bound: everything from b on.
  REQUIRE(!e->commit([&](write_txn& tx) { n = detail::erase_range(tx, dbi, "b"s, std::nullopt); }));
  CHECK(n == 2);
  CHECK(left() == std::vector<std::string>{"a"s});
}

TEST_CASE("an undecodable stored profile reads as corrupt", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([&](write_txn& tx) {
    detail::put(tx, e->profiles(), "p-bad", "\x93\x01garbage");
  }));
  auto tx = e->read();
  std::error_code ec;
  CHECK_FALSE(profile_table::get(tx, "p-bad", ec));
  CHECK(ec == errc::corrupt);
  CHECK_FALSE(profile_table::stored_seq(tx, "p-bad", ec));
  CHECK(ec == errc::corrupt);
}

TEST_CASE("profile ids can be paged in key order", "[storage][profile]") {
  test::temp_dir tmp;
  auto e = test::open_env(test::options_for(tmp.path()));
  REQUIRE(!e->commit([](write_txn& tx) {
    for (const char* id : {"p-3", "p-1", "p-2", "p-10"}) {
      profile_snapshot s;
      s.state.id = id;
      profile_table::put(tx, s);
    }
  }));
  auto tx = e->read();
  std::error_code ec;
  CHECK(profile_table::ids_after(tx, "", 2, ec) == std::vector<std::string>{"p-1", "p-10"});
  CHECK(profile_table::ids_after(tx, "p-10", 10, ec) == std::vector<std::string>{"p-2", "p-3"});
  CHECK(profile_table::ids_after(tx, "p-15", 10, ec) == std::vector<std::string>{"p-2", "p-3"});
  CHECK(profile_table::ids_after(tx, "p-3", 10, ec).empty());
  CHECK(!ec);
}

TEST_CASE("an empty read transaction reports txn_failed", "[storage][profile]") {
  read_txn empty;
  std::error_code ec;
  CHECK_FALSE(profile_table::get(empty, "p-1", ec));
  CHECK(ec == errc::txn_failed);
  CHECK(profile_table::count(empty) == 0);
}

}  // namespace
}  // namespace nudge::storage
