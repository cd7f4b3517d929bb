// Learned propensities: Thompson sampling from Beta(prior + feedback).
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <random>

using namespace nudge::policies;
using namespace nudge::policies::test;

namespace {

const char* const two_learners = R"({"version": "1", "actions": [
    {"id": "good", "channels": ["web"], "value": 1, "propensity": {"learn": {"prior": [1, 1]}}},
    {"id": "poor", "channels": ["web"], "value": 1, "propensity": {"learn": {"prior": [1, 1]}}}]})";

/// Counts feedback per action as the actor layer would.
class learning_counters : public shared_counters {
public:
  bool try_reserve_global(std::size_t, timestamp) override { return true; }
  bool global_available(std::size_t, timestamp) override { return true; }
  std::pair<double, double> learned(std::size_t i) override { return counts_.at(i); }
  void feedback(std::size_t i, bool accepted) {
    (accepted ? counts_.at(i).first : counts_.at(i).second) += 1;
  }

private:
  std::vector<std::pair<double, double>> counts_{{0, 0}, {0, 0}};
};

}  // namespace

TEST_CASE("thompson sampling learns to prefer the better action", "[policies][learn]") {
  std::string problems;
  auto p = compile_ok(two_learners, &problems);
  INFO(problems);
  REQUIRE(p);
  REQUIRE(p->describe(0)->learns);
  learning_counters counters;
  std::mt19937_64 world(7);  // the simulated users' answers, seeded: deterministic
  std::bernoulli_distribution accepts_good(0.20);
  std::bernoulli_distribution accepts_poor(0.05);
  const auto profile = profile_builder{}.build();
  int good_late = 0;
  for (int round = 0; round < 2000; ++round) {
    auto req = make_request(profile, "web", "", t0(), nullptr, false);
    req.counters = &counters;
    req.random_seed = 1000 + static_cast<std::uint64_t>(round);
    const decision d = p->decide(req);
    REQUIRE(d.actions.size() == 1);
    const std::size_t chosen = d.actions[0].action.index;
    const bool accepted = chosen == 0 ? accepts_good(world) : accepts_poor(world);
    counters.feedback(chosen, accepted);
    if (round >= 1500 && chosen == 0)
      ++good_late;
  }
  INFO("good chosen in " << good_late << " of the last 500");
  CHECK(good_late > 400);
}

TEST_CASE("the same seed draws the same propensities", "[policies][learn]") {
  auto p = compile_ok(two_learners);
  REQUIRE(p);
  fake_counters counters;
  counters.counts[0] = {3, 10};
  counters.counts[1] = {4, 9};
  const auto profile = profile_builder{}.build();
  auto req = make_request(profile, "web", "", t0(), nullptr, false);
  req.counters = &counters;
  req.random_seed = 42;
  const decision a = p->decide(req);
  const decision b = p->decide(req);
  REQUIRE(a.actions.size() == 1);
  CHECK(a.actions[0].action.id == b.actions[0].action.id);
  CHECK(a.actions[0].score == b.actions[0].score);
  CHECK(a.actions[0].score > 0.0);
  CHECK(a.actions[0].score < 1.0);
  bool differs = false;
  for (std::uint64_t seed = 0; seed < 20 && !differs; ++seed) {
    req.random_seed = seed;
    differs = p->decide(req).actions[0].score != a.actions[0].score;
  }
  CHECK(differs);
}

TEST_CASE("without counters a learned propensity is the prior mean", "[policies][learn]") {
  auto p = compile_ok(R"({"version": "1", "actions": [
      {"id": "a", "channels": ["web"], "value": 10, "propensity": {"learn": {"prior": [2, 18]}}}]})");
  REQUIRE(p);
  const auto profile = profile_builder{}.build();
  const decision d = p->decide(make_request(profile, "web", "", t0(), nullptr, false));
  REQUIRE(d.actions.size() == 1);
  CHECK(d.actions[0].score == Approx(1.0));
}

TEST_CASE("a model propensity is the model's score", "[policies][learn]") {
  auto p = compile_ok(R"({"version": "1",
      "models": {"m": {"type": "logistic", "bias": 0.0, "features": []}},
      "actions": [{"id": "a", "channels": ["web"], "value": 4, "weight": 0.5,
                   "propensity": {"model": "m"}}]})");
  REQUIRE(p);
  const auto profile = profile_builder{}.build();
  const decision d = p->decide(make_request(profile, "web", "", t0(), nullptr, false));
  REQUIRE(d.actions.size() == 1);
  CHECK(d.actions[0].score == Approx(0.5 * 4 * 0.5));
}
