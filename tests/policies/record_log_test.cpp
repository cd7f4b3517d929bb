// record_log: a profile's history and decision log. It must hold what a std::vector
// would through every change the actors make (appends, drops from the front, late
// inserts, clears, copies, moves), free a dropped record's resources at once, and
// drop from the front of a full log without moving every kept record.
#include "policies/record_log.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <random>
#include <string>
#include <vector>

using nudge::policies::record_log;

namespace {

/// A record that owns memory (as event_record's text block) and counts the moves
/// made into existing records.
struct counted {
  static inline std::size_t move_assignments = 0;
  static inline std::size_t alive = 0;
  std::unique_ptr<int> value;

  counted() = default;
  explicit counted(int v) : value(std::make_unique<int>(v)) { ++alive; }
  counted(const counted& o) : value(o.value ? std::make_unique<int>(*o.value) : nullptr) {
    if (value)
      ++alive;
  }
  counted(counted&& o) noexcept = default;
  counted& operator=(const counted& o) {
    if (this != &o)
      *this = counted(o);
    return *this;
  }
  counted& operator=(counted&& o) noexcept {
    ++move_assignments;
    if (value && value != o.value)
      --alive;
    value = std::move(o.value);
    return *this;
  }
  ~counted() {
    if (value)
      --alive;
  }
  int get() const { return value ? *value : -1; }
};

std::vector<int> contents(const record_log<counted>& log) {
  std::vector<int> out;
  for (const auto& r : log)
    out.push_back(r.get());
  return out;
}

}  // namespace

TEST_CASE("record_log holds what a vector holds through appends, front drops, inserts, clears, copies and moves",
          "[policies][record_log]") {
  std::mt19937 rng(20261206);
  record_log<counted> log;
  std::vector<int> model;
  int next = 0, drops = 0, inserts = 0, copies = 0;
  for (int step = 0; step < 5000; ++step) {
    const auto r = rng() % 100;
    if (r < 55) {
      log.push_back(counted(next));
      model.push_back(next++);
    } else if (r < 80) {
      const std::size_t n = std::min<std::size_t>(model.size(), 1 + rng() % 3);
      log.erase(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(n));
      model.erase(model.begin(), model.begin() + static_cast<std::ptrdiff_t>(n));
      ++drops;
    } else if (r < 90) {
      const std::size_t at = model.empty() ? 0 : rng() % (model.size() + 1);
      log.insert(log.begin() + static_cast<std::ptrdiff_t>(at), counted(next));
      model.insert(model.begin() + static_cast<std::ptrdiff_t>(at), next++);
      ++inserts;
    } else if (r < 93 && !model.empty()) {
      const std::size_t at = rng() % model.size();
      log.erase(log.begin() + static_cast<std::ptrdiff_t>(at));
      model.erase(model.begin() + static_cast<std::ptrdiff_t>(at));
    } else if (r < 95) {
      record_log<counted> copy = log;  // holds the live records only
      CHECK(copy.capacity() >= copy.size());
      log = std::move(copy);
      ++copies;
    } else if (r < 96) {
      log.clear();
      model.clear();
    } else {
      log.reserve(model.size() + rng() % 8);
    }
    INFO("step " << step);
    REQUIRE(log.size() == model.size());
    REQUIRE(log.empty() == model.empty());
    REQUIRE(contents(log) == model);
    if (!model.empty()) {
      REQUIRE(log.front().get() == model.front());
      REQUIRE(log.back().get() == model.back());
      REQUIRE(log[model.size() / 2].get() == model[model.size() / 2]);
      REQUIRE(log.data()->get() == model.front());
      REQUIRE(log.rbegin()->get() == model.back());
    }
    // Dropped records free what they own at once: only the live ones hold memory.
    REQUIRE(counted::alive == model.size());
  }
  CHECK(drops > 500);
  CHECK(inserts > 200);
  CHECK(copies > 50);
}

TEST_CASE("a full record_log drops its oldest without moving every kept record", "[policies][record_log]") {
  constexpr std::size_t max = 500;
  record_log<counted> log;
  log.reserve(max);
  for (std::size_t i = 0; i < max; ++i)
    log.push_back(counted(static_cast<int>(i)));
  counted::move_assignments = 0;
  constexpr int appends = 1000;
  for (int i = 0; i < appends; ++i) {  // as actors/profile_logic does with a full log
    log.erase(log.begin(), log.begin() + 1);
    log.push_back(counted(static_cast<int>(max) + i));
  }
  REQUIRE(log.size() == max);
  CHECK(log.front().get() == appends);
  CHECK(log.back().get() == static_cast<int>(max) + appends - 1);
  // A vector moves all 499 kept records per drop (499,000 here); the log moves them
  // once per compact_at drops, plus one assignment that empties the dropped slot.
  const std::size_t bound = appends * (1 + max / record_log<counted>::compact_at + 1);
  CHECK(counted::move_assignments <= bound);
  CHECK(counted::move_assignments >= appends);
  // And carries at most compact_at spare slots for it.
  CHECK(log.capacity() <= max + record_log<counted>::compact_at);
}

TEST_CASE("record_log compares, assigns from a vector and from a list", "[policies][record_log]") {
  record_log<std::string> a{"x", "y", "z"};
  record_log<std::string> b;
  b = std::vector<std::string>{"w", "x", "y", "z"};
  CHECK_FALSE(a == b);
  b.erase(b.begin(), b.begin() + 1);
  CHECK(a == b);
  b = {"q"};
  CHECK(b.size() == 1);
  CHECK(b.front() == "q");
  b.erase(b.begin(), b.end());
  CHECK(b.empty());
  CHECK(b.begin() == b.end());
}
