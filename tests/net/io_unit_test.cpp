// The I/O thread as a CAF execution unit: who runs an actor that a message wakes.
#include <catch2/catch.hpp>

#include "actors/journal.hpp"
#include "actors/local_unit.hpp"
#include "net/io_unit.hpp"
#include "../storage/test_support.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <utility>

namespace nudge::net {
namespace {

using namespace std::chrono_literals;

/// An actor that reports the thread of each message it handles (an int: how long
/// to work first, in ms) through the promise the message's sender left.
struct probe {
  std::shared_ptr<std::promise<std::thread::id>> next;
  std::function<void()> then;  ///< called (once) after the next message, on its thread
};

caf::behavior probe_actor(caf::event_based_actor*, std::shared_ptr<probe> p) {
  return {
    [p](int work_ms) {
      std::this_thread::sleep_for(std::chrono::milliseconds(work_ms));
      p->next->set_value(std::this_thread::get_id());
      if (auto then = std::exchange(p->then, nullptr))
        then();
    },
  };
}

/// An io_context on its own thread with `unit` installed there, as net::server runs it.
struct io_thread {
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(ioc);
  std::thread thread;
  std::thread::id id;

  void start(io_unit* unit) {
    std::promise<std::thread::id> started;
    thread = std::thread([this, unit, &started] {
      actors::set_local_unit(unit);
      started.set_value(std::this_thread::get_id());
      ioc.run();
      actors::set_local_unit(nullptr);
    });
    id = started.get_future().get();
  }
  void stop() {
    ioc.stop();
    if (thread.joinable())
      thread.join();
  }
  ~io_thread() { stop(); }
};

/// Sends `work_ms` to `a` from the I/O thread and returns the thread that handled it.
std::thread::id handled_on(io_thread& io, const caf::actor& a, const std::shared_ptr<probe>& p, int work_ms) {
  p->next = std::make_shared<std::promise<std::thread::id>>();
  auto f = p->next->get_future();
  asio::post(io.ioc, [a, work_ms] { actors::send_here(a, work_ms); });
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

/// Waits (bounded) until `a`'s first message has run on a worker, so that its mailbox
/// is idle again: the next message then wakes it.
void settle(io_thread& io, const caf::actor& a, const std::shared_ptr<probe>& p) {
  handled_on(io, a, p, 0);  // the first message runs where the spawn scheduled the actor
  std::this_thread::sleep_for(20ms);
}

/// An actor system, an I/O thread running a unit with `share`, and a settled probe.
struct fixture {
  explicit fixture(double share) : unit(sys, io.ioc, share, nullptr) {
    io.start(&unit);
    a = sys.spawn(probe_actor, p);
    settle(io, a, p);
  }
  ~fixture() {
    io.stop();
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  io_thread io;
  io_unit unit;
  std::shared_ptr<probe> p = std::make_shared<probe>();
  caf::actor a;
};

TEST_CASE("an actor that a message from the I/O thread wakes runs on that thread", "[io_unit][net]") {
  fixture f(1.0);
  for (int i = 0; i < 3; ++i)
    CHECK(handled_on(f.io, f.a, f.p, 0) == f.io.id);
  CHECK(f.unit.resumed() >= 3);
  CHECK(f.unit.offloaded() == 0);
  // A message from a thread without a unit goes through CAF's scheduler (once the
  // actor is idle: a message to a running actor is handled where it runs).
  std::this_thread::sleep_for(20ms);
  f.p->next = std::make_shared<std::promise<std::thread::id>>();
  auto handled = f.p->next->get_future();
  actors::send_here(f.a, 0);
  REQUIRE(handled.wait_for(10s) == std::future_status::ready);
  CHECK(handled.get() != f.io.id);
}

TEST_CASE("past its share of the I/O thread's time, woken actors go to CAF's workers", "[io_unit][net]") {
  fixture f(0.01);
  // This run takes the I/O thread for 5 ms, beyond 1% of the 2 ms window it ends; the
  // next message is sent from the I/O thread right behind it (a window without runs
  // would end the over-share).
  auto second = std::make_shared<std::promise<std::thread::id>>();
  auto handled = second->get_future();
  f.p->then = [&f, second] {
    asio::post(f.io.ioc, [&f, second] {
      f.p->next = second;
      actors::send_here(f.a, 0);
    });
  };
  CHECK(handled_on(f.io, f.a, f.p, 5) == f.io.id);
  REQUIRE(handled.wait_for(10s) == std::future_status::ready);
  CHECK(handled.get() != f.io.id);
  CHECK(f.unit.offloaded() >= 1);
  // Without runs for two windows, the I/O thread takes woken actors again.
  std::this_thread::sleep_for(10ms);
  CHECK(handled_on(f.io, f.a, f.p, 0) == f.io.id);
}

TEST_CASE("actors still queued when the I/O thread stops are handed to CAF's scheduler", "[io_unit][net]") {
  fixture f(1.0);
  f.p->next = std::make_shared<std::promise<std::thread::id>>();
  auto handled = f.p->next->get_future();
  // Queued on the unit, and the thread stops before the run it posted.
  asio::post(f.io.ioc, [&f] {
    actors::send_here(f.a, 0);
    f.io.ioc.stop();
  });
  f.io.thread.join();
  CHECK(handled.wait_for(50ms) == std::future_status::timeout);
  f.unit.hand_over();
  REQUIRE(handled.wait_for(10s) == std::future_status::ready);
  CHECK(handled.get() != f.io.id);
}

/// probe_actor that first reports the thread its initialization runs on.
caf::behavior init_probe(caf::event_based_actor* self, std::shared_ptr<probe> p,
                         std::shared_ptr<std::promise<std::thread::id>> init) {
  init->set_value(std::this_thread::get_id());
  return probe_actor(self, std::move(p));
}

TEST_CASE("an actor spawned with lazy_init is initialized by its first message, on the I/O thread that sends it",
          "[io_unit][net]") {
  // What actors::spawn_profile relies on: an activation (the profile's load from
  // storage) runs where the message that needs it comes from, not on a CAF worker
  // woken for it and then another wake-up back for the reply.
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  io_thread io;
  io_unit unit(sys, io.ioc, 1.0, nullptr);
  io.start(&unit);
  auto p = std::make_shared<probe>();
  auto init = std::make_shared<std::promise<std::thread::id>>();
  auto initialized = init->get_future();
  auto lazy = sys.spawn<caf::lazy_init>(init_probe, p, init);
  CHECK(initialized.wait_for(50ms) == std::future_status::timeout);  // nothing yet
  CHECK(handled_on(io, lazy, p, 0) == io.id);
  REQUIRE(initialized.wait_for(10s) == std::future_status::ready);
  CHECK(initialized.get() == io.id);
  // Spawned eagerly, CAF's scheduler initializes it on a worker.
  auto eager_p = std::make_shared<probe>();
  auto eager_init = std::make_shared<std::promise<std::thread::id>>();
  auto eager_initialized = eager_init->get_future();
  auto eager = sys.spawn(init_probe, eager_p, eager_init);
  REQUIRE(eager_initialized.wait_for(10s) == std::future_status::ready);
  CHECK(eager_initialized.get() != io.id);
  io.stop();
  caf::anon_send_exit(lazy, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(eager, caf::exit_reason::user_shutdown);
}

/// An actor that submits one journal record per message (an int: its seq) with
/// journal::submit_here, as a profile actor does, and reports the thread that ran the
/// record's on_done (the committing thread) through the promise left in `done`.
caf::behavior submitter(caf::event_based_actor*, actors::journal* j,
                        std::shared_ptr<std::shared_ptr<std::promise<std::thread::id>>> done) {
  return {
    [j, done](int seq) {
      actors::write_record rec;
      rec.profile_id = "p-1";
      rec.entry = storage::test::sample_entry(static_cast<std::uint64_t>(seq), "/p-1");
      rec.on_done = [report = *done](bool ok) {
        if (ok)
          report->set_value(std::this_thread::get_id());
      };
      j->submit_here(std::move(rec));
    },
  };
}

TEST_CASE("a run's records commit on the I/O thread, or on the writer thread when the run starts behind its post",
          "[io_unit][net]") {
  storage::test::temp_dir tmp;
  auto e = storage::test::open_env(storage::test::options_for(tmp.path()));
  actors::journal j(*e);
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  io_thread io;
  io_unit unit(sys, io.ioc, 1.0, &j);
  io.start(&unit);
  auto done = std::make_shared<std::shared_ptr<std::promise<std::thread::id>>>();
  // Lazily spawned: its first message, from the I/O thread, starts it there.
  auto a = sys.spawn<caf::lazy_init>(submitter, &j, done);
  // Sends `seq` from the I/O thread, after `ahead` (a handler queued before the run
  // that the message posts, taking the thread for that long), and returns the thread
  // that committed its record.
  auto committed_on = [&](int seq, std::chrono::microseconds ahead) {
    *done = std::make_shared<std::promise<std::thread::id>>();
    auto f = (*done)->get_future();
    asio::post(io.ioc, [&, seq, ahead] {
      if (ahead.count() > 0)
        asio::post(io.ioc, [ahead] { std::this_thread::sleep_for(ahead); });
      actors::send_here(a, seq);
    });
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    std::this_thread::sleep_for(20ms);  // the actor idle again, the writer waiting
    return f.get();
  };
  CHECK(committed_on(1, 0us) == io.id);
  CHECK(unit.handed_to_writer() == 0);
  const auto writer = committed_on(2, 3 * io_unit::behind);
  CHECK(writer != io.id);
  CHECK(writer != std::this_thread::get_id());
  CHECK(unit.handed_to_writer() == 1);
  CHECK(committed_on(3, 0us) == io.id);
  io.stop();
  j.stop();
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace nudge::net
