// actor_floor: what one idle CAF 0.17 actor costs in resident memory, before any state
// of ours. Spawns N stateful actors the way profile actors are spawned (a function-based
// behavior over a state struct), holds their handles in a vector as the directory
// does, and prints the anonymous resident memory per actor. Scenario (3)'s target is
// judged against this floor (docs/BENCHMARKS.md): an actor per active profile cannot
// cost less than it.
//
//   build/tests/bench/actor_floor --actors 1000000
#include <caf/all.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

/// Anonymous resident memory (kB) of this process, from /proc/self/status.
long rss_anon_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("RssAnon:", 0) == 0)
      return std::stol(line.substr(8));
  return -1;
}

struct empty_state {
  int touched = 0;
};

caf::behavior idle_actor(caf::stateful_actor<empty_state>* self) {
  return {
    [self](int x) { self->state.touched += x; },
  };
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"resident memory per idle CAF actor"};
  std::size_t count = 1000000;
  app.add_option("--actors", count, "actors to spawn")->check(CLI::Range(1, 50000000));
  CLI11_PARSE(app, argc, argv);

  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", std::size_t{2});
  cfg.set("scheduler.policy", caf::atom("sharing"));
  cfg.set("logger.console", caf::atom("none"));
  caf::actor_system system{cfg};

  std::vector<caf::actor> actors;
  actors.reserve(count);
  const long before = rss_anon_kb();
  for (std::size_t i = 0; i < count; ++i)
    actors.push_back(system.spawn(idle_actor));
  // Each actor has run its initialization once: wait until the scheduler is idle.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long after = rss_anon_kb();
  const double per_actor = static_cast<double>(after - before) * 1024.0 / static_cast<double>(count);
  std::printf("{\"actors\":%zu,\"rss_anon_kb_before\":%ld,\"rss_anon_kb_after\":%ld,\"bytes_per_actor\":%.0f,"
              "\"handle_bytes\":%zu}\n",
              count, before, after, per_actor, sizeof(caf::actor));
  for (auto& a : actors)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  actors.clear();
  return 0;
}
