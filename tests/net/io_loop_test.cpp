// run_io: the I/O thread's loop, with and without polling before it sleeps.
#include <catch2/catch.hpp>

#include "net/io_loop.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <thread>

namespace nudge::net {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

/// Posts `n` handlers from this thread, some at once and some after a pause longer
/// than the spin window (so that the loop has gone to sleep), and waits (bounded)
/// until all ran on the loop's thread. Returns how many ran there.
int post_and_count(asio::io_context& ioc, std::thread::id loop_thread, int n) {
  std::atomic<int> ran{0};
  std::atomic<int> elsewhere{0};
  for (int i = 0; i < n; ++i) {
    asio::post(ioc, [&] {
      if (std::this_thread::get_id() != loop_thread)
        elsewhere.fetch_add(1);
      ran.fetch_add(1);
    });
    if (i % 10 == 9)
      std::this_thread::sleep_for(2ms);  // the window (1 ms at most here) closes: it sleeps
  }
  for (int i = 0; i < 1000 && ran.load() < n; ++i)
    std::this_thread::sleep_for(5ms);
  CHECK(elsewhere.load() == 0);
  return ran.load();
}

TEST_CASE("run_io runs every handler posted while it polls and after it slept, and returns when stopped",
          "[net][io_loop]") {
  for (const auto spin : {0us, 100us, 1000us}) {
    INFO("spin " << spin.count() << " us");
    asio::io_context ioc(1);
    auto busy = asio::make_work_guard(ioc);
    std::atomic<bool> returned{false};
    std::thread loop([&] {
      run_io(ioc, spin);
      returned.store(true);
    });
    CHECK(post_and_count(ioc, loop.get_id(), 100) == 100);
    // A timer fires through the loop too (epoll's timerfd).
    std::atomic<bool> fired{false};
    asio::steady_timer timer(ioc, 3ms);
    timer.async_wait([&](const boost::system::error_code& ec) { fired.store(!ec); });
    for (int i = 0; i < 1000 && !fired.load(); ++i)
      std::this_thread::sleep_for(5ms);
    CHECK(fired.load());
    ioc.stop();
    loop.join();
    CHECK(returned.load());
  }
}

TEST_CASE("run_io returns when its io_context runs out of work", "[net][io_loop]") {
  for (const auto spin : {0us, 100us}) {
    asio::io_context ioc(1);
    int ran = 0;
    asio::post(ioc, [&] { ++ran; });
    asio::post(ioc, [&] { asio::post(ioc, [&] { ++ran; }); });
    run_io(ioc, spin);  // no work guard: returns once the three handlers ran
    CHECK(ran == 2);
    CHECK(ioc.stopped());
  }
}

}  // namespace
}  // namespace nudge::net
