// Ids sort by creation: "the oldest profile" of a merge is the smallest id, also for
// ids made within one millisecond.
#include "actors/ids.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace nudge::actors {
namespace {

TEST_CASE("ids made one after another sort in the order they were made", "[actors][ids]") {
  std::string previous = new_id('p');
  for (int i = 0; i < 100000; ++i) {
    auto next = new_id('p');
    REQUIRE(next.size() == 28);
    REQUIRE(previous < next);
    previous = std::move(next);
  }
}

TEST_CASE("an id is its prefix, a dash, 10 characters of time and 16 of counter in Crockford's base 32",
          "[actors][ids]") {
  const auto before = static_cast<std::uint64_t>(
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  const auto id = new_id('d');
  REQUIRE(id.size() == 28);
  CHECK(id[0] == 'd');
  CHECK(id[1] == '-');
  const std::string alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  std::uint64_t ms = 0;
  for (std::size_t i = 2; i < id.size(); ++i) {
    const auto digit = alphabet.find(id[i]);
    REQUIRE(digit != std::string::npos);
    if (i < 12)
      ms = ms * 32 + digit;
  }
  // The time part reads back as the milliseconds it was made at (or a later one, if
  // an earlier id of this process took a later clock reading).
  CHECK(ms >= before);
  CHECK(ms < before + 60000);
}

TEST_CASE("ids made on several threads at once are unique", "[actors][ids]") {
  std::vector<std::vector<std::string>> made(4);
  std::vector<std::thread> threads;
  for (auto& out : made)
    threads.emplace_back([&out] {
      for (int i = 0; i < 20000; ++i)
        out.push_back(new_id('d'));
    });
  for (auto& t : threads)
    t.join();
  std::set<std::string> all;
  for (const auto& out : made)
    all.insert(out.begin(), out.end());
  CHECK(all.size() == 80000);
}

}  // namespace
}  // namespace nudge::actors
