// Ids sort by creation: "the oldest profile" of a merge is the smallest id, also for
// ids made within one millisecond.
#include "actors/ids.hpp"

#include <catch2/catch.hpp>

#include <set>
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
