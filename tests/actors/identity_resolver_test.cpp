// Resolution steps of API.md section 5 against a real LMDB environment: new,
// matching and merging profiles, per-type limits given up lowest priority first,
// pending links that keep racing messages on one profile, and aliases.
#include "actors/identity_resolver.hpp"

#include "storage/alias_table.hpp"
#include "storage/identity_table.hpp"
#include "tests/storage/test_support.hpp"

#include <catch2/catch.hpp>

namespace nudge::actors {
namespace {

using policies::identity;
namespace st = storage::test;

const std::vector<identity_limit> limits{{"user_id", 1}, {"email", 2}, {"device_id", 50}, {"anonymous_id", 100}};

const identity user_ann{"user_id", "u-ann"};
const identity user_bob{"user_id", "u-bob"};
const identity tablet{"device_id", "tablet-1"};
const identity anon1{"anonymous_id", "a-1"};
const identity anon2{"anonymous_id", "a-2"};

/// Commits what `r` linked, as the journal writer would, and settles its ticket.
void commit(storage::env& e, identity_resolver& res, const identity_resolver::result& r) {
  REQUIRE(!e.commit([&](storage::write_txn& tx) {
    for (const auto& m : r.merged) {
      storage::identity_table::move_all(tx, m, r.profile_id);
      storage::alias_table::put(tx, m, r.profile_id);
    }
    for (const auto& id : r.added)
      storage::identity_table::put(tx, id, r.profile_id);
  }));
  res.settled(r.ticket);
}

TEST_CASE("resolve: unknown identities make a new profile, known ones find it", "[actors][identity]") {
  st::temp_dir tmp;
  auto e = st::open_env(st::options_for(tmp.path()));
  identity_resolver res(*e, limits);
  auto first = res.resolve({user_ann, tablet});
  CHECK(first.created);
  CHECK(first.added.size() == 2);
  CHECK(first.ticket != 0);
  // Before the commit, a racing message with an overlapping identity finds the same profile.
  auto racing = res.resolve({anon1, tablet});
  CHECK_FALSE(racing.created);
  CHECK(racing.profile_id == first.profile_id);
  commit(*e, res, first);
  commit(*e, res, racing);
  auto again = res.resolve({anon1});
  CHECK(again.profile_id == first.profile_id);
  CHECK(again.ticket == 0);  // nothing new: nothing pending
  CHECK(res.find(anon1) == first.profile_id);
}

TEST_CASE("resolve: a link that breaks a limit is given up, lowest priority first", "[actors][identity]") {
  st::temp_dir tmp;
  auto e = st::open_env(st::options_for(tmp.path()));
  identity_resolver res(*e, limits);
  auto ann = res.resolve({user_ann, tablet});
  commit(*e, res, ann);
  // Bob logs in on Ann's tablet: two user_ids would break limit 1; the tablet link
  // (lower priority) is given up and Bob gets a profile of his own.
  auto bob = res.resolve({user_bob, tablet});
  CHECK(bob.created);
  CHECK(bob.profile_id != ann.profile_id);
  CHECK(bob.given_up == std::vector<identity>{tablet});
  CHECK(bob.added == std::vector<identity>{user_bob});
  CHECK(res.given_up() == 1);
  commit(*e, res, bob);
  CHECK(res.find(tablet) == ann.profile_id);
  CHECK(res.find(user_bob) == bob.profile_id);
}

TEST_CASE("resolve: limits count what the matched profiles hold together", "[actors][identity]") {
  st::temp_dir tmp;
  auto e = st::open_env(st::options_for(tmp.path()));
  identity_resolver res(*e, limits);
  // email limit 2: a profile with two emails cannot take a third.
  auto p = res.resolve({{"email", "a@x"}, anon1});
  commit(*e, res, p);
  commit(*e, res, res.resolve({{"email", "b@x"}, anon1}));
  auto third = res.resolve({{"email", "c@x"}, anon1});
  // The message's lowest-priority identity goes first: anon1, after which c@x is new.
  CHECK(third.given_up == std::vector<identity>{anon1});
  CHECK(third.created);
}

TEST_CASE("resolve: several profiles merge into the oldest, which stays resolvable", "[actors][identity]") {
  st::temp_dir tmp;
  auto e = st::open_env(st::options_for(tmp.path()));
  identity_resolver res(*e, limits);
  auto older = res.resolve({anon1});
  commit(*e, res, older);
  auto newer = res.resolve({anon2, user_ann});
  commit(*e, res, newer);
  REQUIRE(older.profile_id < newer.profile_id);
  auto generation = res.generation();

  auto joined = res.resolve({anon1, user_ann});
  CHECK(joined.profile_id == older.profile_id);
  CHECK(joined.merged == std::vector<std::string>{newer.profile_id});
  CHECK(joined.merged_identities.size() == 2);
  CHECK(res.generation() > generation);  // connections' cached routes are stale
  CHECK(res.merges() == 1);
  // Pending (not yet committed): the merged identities already resolve to the survivor.
  CHECK(res.find(anon2) == older.profile_id);
  CHECK(res.canonical(newer.profile_id) == older.profile_id);
  commit(*e, res, joined);
  CHECK(res.find(anon2) == older.profile_id);
  CHECK(res.canonical(newer.profile_id) == older.profile_id);
  auto tx = e->read();
  std::error_code ec;
  CHECK(storage::identity_table::members(tx, older.profile_id, ec).size() == 3);
}

TEST_CASE("resolve: a merge that would break a limit gives up the link instead", "[actors][identity]") {
  st::temp_dir tmp;
  auto e = st::open_env(st::options_for(tmp.path()));
  identity_resolver res(*e, limits);
  auto ann = res.resolve({user_ann, anon1});
  commit(*e, res, ann);
  auto bob = res.resolve({user_bob, anon2});
  commit(*e, res, bob);
  // anon1 (Ann's) with Bob's user_id: merging would give one profile two user_ids.
  auto r = res.resolve({user_bob, anon1});
  CHECK(r.merged.empty());
  CHECK(r.profile_id == bob.profile_id);
  CHECK(r.given_up == std::vector<identity>{anon1});
}

TEST_CASE("settled: an uncommitted resolution leaves no trace", "[actors][identity]") {
  st::temp_dir tmp;
  auto e = st::open_env(st::options_for(tmp.path()));
  identity_resolver res(*e, limits);
  auto r = res.resolve({anon1});
  CHECK(res.find(anon1) == r.profile_id);
  res.settled(r.ticket);  // the record failed to commit
  CHECK_FALSE(res.find(anon1));
  CHECK(res.resolve({anon1}).profile_id != r.profile_id);
}

}  // namespace
}  // namespace nudge::actors
