#include "tests/bench/bench_run.hpp"

#include "tests/bench/reply_scanner.hpp"

#include <utility> // before Boost: asio's awaitable.hpp uses std::exchange (STYLE.md)

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/resource.h>

namespace nudge::bench {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;

struct phases {
  clock_type::time_point measure_start;
  clock_type::time_point measure_end;
  clock_type::time_point drain_end;
};

class bench_session;

// Counts connections as they come up, starts every session at once when the last one has
// reported, and stops the stragglers when the drain ends. Its members are guarded by
// mutex_; the drain timer runs on its own strand.
class run_control {
public:
  run_control(net::io_context& ioc, const bench_settings& settings)
      : settings_(settings), timer_(net::make_strand(ioc)) {}

  void add(std::shared_ptr<bench_session> session) { sessions_.push_back(std::move(session)); }
  const std::vector<std::shared_ptr<bench_session>>& sessions() const { return sessions_; }

  /// Called once per session, from its strand, when its handshake succeeded or failed.
  void connected(bool ok, const std::string& error);

  /// Called once per started session, from its strand, when it has ended.
  void session_finished();

  /// A matched reply, for the interval report (any thread; a no-op without one).
  void reply_seen(std::uint64_t latency_us) {
    if (settings_.report_every.count() == 0)
      return;
    std::lock_guard lock(interval_mutex_);
    interval_latency_.record(latency_us);
  }

  /// A message's send lag, for the interval report (any thread; a no-op without one).
  void sent_late(std::uint64_t lag_us) {
    if (settings_.report_every.count() == 0)
      return;
    std::lock_guard lock(interval_mutex_);
    interval_send_lag_max_ = std::max(interval_send_lag_max_, lag_us);
  }

private:
  void start_all();
  void stop_all();
  void arm_report(clock_type::time_point start, clock_type::time_point at, clock_type::time_point until);

  const bench_settings& settings_;
  std::vector<std::shared_ptr<bench_session>> sessions_;
  net::steady_timer timer_;
  std::mutex mutex_;
  std::size_t reported_ = 0;
  std::size_t started_ = 0;
  std::size_t finished_ = 0;
  bool all_finished_ = false;
  net::steady_timer report_timer_{timer_.get_executor()};
  std::mutex interval_mutex_;
  latency_histogram interval_latency_;
  std::uint64_t interval_send_lag_max_ = 0;
};

class bench_session : public std::enable_shared_from_this<bench_session> {
public:
  bench_session(net::io_context& ioc, const bench_settings& settings, std::uint32_t index,
                run_control& control)
      : settings_(settings), control_(control), ws_(net::make_strand(ioc)),
        timer_(ws_.get_executor()),
        workload_(settings.mix, settings.format,
                  settings.run_tag + "-" + std::to_string(index) + "-", slot_count(settings),
                  settings.profiles, settings.seed * 1000003u + index) {
    const std::uint32_t slots = slot_count(settings);
    slots_.resize(slots);
    bodies_.resize(slots);
    queue_.resize(slots);
    free_.reserve(slots);
    for (std::uint32_t i = slots; i-- > 0;)
      free_.push_back(i);
    if (settings.open_loop) {
      double per_connection = settings.rate / settings.connections;
      interval_ = std::chrono::duration_cast<clock_type::duration>(
          std::chrono::duration<double>(1.0 / per_connection));
    }
  }

  bench_result& result() { return result_; }
  bool connected() const { return connected_; }
  clock_type::duration interval() const { return interval_; }
  net::any_io_executor executor() { return ws_.get_executor(); }

  void connect(const tcp::resolver::results_type& endpoints) {
    beast::get_lowest_layer(ws_).expires_after(settings_.connect_timeout);
    beast::get_lowest_layer(ws_).async_connect(
        endpoints, beast::bind_front_handler(&bench_session::on_connect, shared_from_this()));
  }

  /// Runs on the strand: starts reading and sending.
  void begin(const phases& p, clock_type::time_point first_send) {
    phases_ = p;
    next_intended_ = first_send;
    sending_ = true;
    ws_.binary(settings_.format == wire_format::msgpack);
    do_read();
    pump();
  }

  /// Runs on the strand at the end of the drain: whatever is still in flight is lost.
  void stop() {
    if (finished_)
      return;
    stop_sending();
    closing_ = true;
    beast::error_code ec;
    timer_.cancel();
    beast::get_lowest_layer(ws_).socket().close(ec);
  }

private:
  struct slot {
    std::uint64_t seq = 0;
    clock_type::time_point sent;    // intended (open loop) or actual send time
    clock_type::time_point actual;  // when the generator sent it
    bool measured = false; // its (intended) send time lies in the measured phase
    bool awaiting = false; // no reply yet
    bool writing = false;  // queued or being written: bodies_[slot] is in use
  };

  static std::uint64_t to_us(clock_type::duration d) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    return static_cast<std::uint64_t>(us < 0 ? 0 : us);
  }

  static std::uint32_t slot_count(const bench_settings& s) {
    return s.open_loop ? s.max_in_flight : s.window;
  }

  void on_connect(beast::error_code ec, const tcp::endpoint&) {
    if (ec)
      return connect_failed("connect: " + ec.message());
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
    ws_.set_option(websocket::stream_base::decorator(
        [bearer = settings_.bearer](websocket::request_type& req) {
          req.set(http::field::user_agent, "nudge-bench");
          if (!bearer.empty())
            req.set(http::field::authorization, "Bearer " + bearer);
        }));
    ws_.auto_fragment(false);
    std::string host = settings_.host.find(':') != std::string::npos
                           ? "[" + settings_.host + "]:" + settings_.port
                           : settings_.host + ":" + settings_.port;
    ws_.async_handshake(
        response_, host, settings_.target,
        beast::bind_front_handler(&bench_session::on_handshake, shared_from_this()));
  }

  void on_handshake(beast::error_code ec) {
    if (ec) {
      if (response_.result_int() != 0)
        return connect_failed("upgrade refused: HTTP " + std::to_string(response_.result_int()) +
                              " " + std::string(response_.reason()) +
                              (response_.body().empty() ? "" : ": " + response_.body()));
      return connect_failed("handshake: " + ec.message());
    }
    // The TCP timeout covered connect and upgrade; the WebSocket has its own now.
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    connected_ = true;
    control_.connected(true, {});
  }

  void connect_failed(const std::string& what) {
    result_.connect_failures = 1;
    result_.first_connect_error = what;
    control_.connected(false, what);
  }

  // Sends one message whose latency runs from `intended`; false when every slot is taken.
  bool send_one(clock_type::time_point intended) {
    if (free_.empty())
      return false;
    const std::uint32_t index = free_.back();
    free_.pop_back();
    slot& s = slots_[index];
    s.seq = next_seq_++;
    s.sent = intended;
    s.actual = intended;
    s.measured = intended >= phases_.measure_start && intended < phases_.measure_end;
    if (settings_.open_loop) {  // a closed loop sends when it means to: no lag
      s.actual = clock_type::now();
      const auto lag = to_us(s.actual - intended);
      if (s.measured)
        result_.send_lag_us.record(lag);
      control_.sent_late(lag);
    }
    s.awaiting = true;
    s.writing = true;
    workload_.next(bodies_[index], index, s.seq);
    ++in_flight_;
    ++result_.sent;
    queue_[(queue_head_ + queue_size_) % queue_.size()] = index;
    if (++queue_size_ == 1)
      do_write();
    return true;
  }

  void release_if_idle(std::uint32_t index) {
    const slot& s = slots_[index];
    if (!s.awaiting && !s.writing)
      free_.push_back(index);
  }

  void stop_sending() {
    if (!sending_)
      return;
    sending_ = false;
    if (settings_.open_loop && next_intended_ < phases_.measure_end) {
      auto left = phases_.measure_end - next_intended_;
      result_.unsent +=
          static_cast<std::uint64_t>((left + interval_ - clock_type::duration(1)) / interval_);
    }
  }

  void pump() {
    if (!sending_)
      return maybe_close();
    const auto now = clock_type::now();
    if (!settings_.open_loop) {
      if (now >= phases_.measure_end) {
        sending_ = false;
        return maybe_close();
      }
      while (send_one(now)) {}
      return;
    }
    while (next_intended_ < phases_.measure_end && next_intended_ <= now) {
      // Saturated: the backlog waits for a reply to free a slot, keeping its
      // intended times, so the wait shows in the latency.
      if (!send_one(next_intended_))
        return;
      next_intended_ += interval_;
    }
    if (next_intended_ >= phases_.measure_end) {
      sending_ = false;
      return maybe_close();
    }
    if (!timer_armed_) {
      timer_armed_ = true;
      timer_.expires_at(next_intended_);
      timer_.async_wait(beast::bind_front_handler(&bench_session::on_timer, shared_from_this()));
    }
  }

  void on_timer(beast::error_code ec) {
    timer_armed_ = false;
    if (ec || closing_)
      return;
    pump();
  }

  void do_write() {
    const std::uint32_t index = queue_[queue_head_];
    ws_.async_write(net::buffer(bodies_[index]),
                    beast::bind_front_handler(&bench_session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    const std::uint32_t index = queue_[queue_head_];
    queue_head_ = (queue_head_ + 1) % queue_.size();
    --queue_size_;
    slots_[index].writing = false;
    release_if_idle(index);
    if (ec) {
      if (!closing_)
        io_failed("write: " + ec.message());
      return;
    }
    if (queue_size_ > 0)
      do_write();
    if (!closing_)
      pump();
    maybe_close();
  }

  void do_read() {
    ws_.async_read(buffer_, beast::bind_front_handler(&bench_session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      if (!closing_)
        io_failed("read: " + ec.message());
      return finish();
    }
    const auto now = clock_type::now();
    const auto data = buffer_.data();
    handle_reply(static_cast<const char*>(data.data()), data.size(), ws_.got_binary(), now);
    buffer_.consume(buffer_.size());
    if (!closing_)
      pump();
    maybe_close();
    do_read();
  }

  void handle_reply(const char* data, std::size_t size, bool binary, clock_type::time_point now) {
    const bool readable = scanner_.scan(data, size, binary);
    if (scanner_.is_error())
      ++result_.error_replies;
    parsed_id id;
    if (readable && scanner_.has_string_id() && workload_.parse_id(scanner_.id(), id) &&
        id.slot < slots_.size() && slots_[id.slot].awaiting && slots_[id.slot].seq == id.seq) {
      slot& s = slots_[id.slot];
      s.awaiting = false;
      --in_flight_;
      ++result_.replies;
      if (now >= phases_.measure_start && now < phases_.measure_end)
        ++result_.measured_replies;
      const auto latency = to_us(now - s.sent);
      if (s.measured) {
        result_.latency_us.record(latency);
        result_.from_send_us.record(to_us(now - s.actual));
      }
      control_.reply_seen(latency);
      release_if_idle(id.slot);
      return;
    }
    if (scanner_.is_error())
      return; // an error without one of our ids: counted once
    if (readable && !scanner_.has_string_id()) {
      ++result_.pushes;
      return;
    }
    ++result_.unmatched;
  }

  void maybe_close() {
    if (sending_ || closing_ || finished_ || in_flight_ > 0 || queue_size_ > 0)
      return;
    closing_ = true;
    timer_.cancel();
    ws_.async_close(websocket::close_code::normal,
                    beast::bind_front_handler(&bench_session::on_close, shared_from_this()));
  }

  void on_close(beast::error_code ec) {
    // The pending read ends with websocket::error::closed and calls finish().
    if (ec) {
      beast::get_lowest_layer(ws_).socket().close(ec);
    }
  }

  void io_failed(const std::string& what) {
    if (finished_)
      return;
    ++result_.io_errors;
    result_.first_io_error = what;
    closing_ = true;
    beast::error_code ignored;
    timer_.cancel();
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  void finish() {
    if (finished_)
      return;
    finished_ = true;
    stop_sending();
    result_.unanswered += in_flight_;
    in_flight_ = 0;
    control_.session_finished();
  }

  const bench_settings& settings_;
  run_control& control_;
  websocket::stream<beast::tcp_stream> ws_;
  net::steady_timer timer_;
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  workload workload_;
  reply_scanner scanner_;
  bench_result result_;
  phases phases_{};

  std::vector<slot> slots_;
  std::vector<std::string> bodies_;  // bodies_[i] is the message of slots_[i]
  std::vector<std::uint32_t> free_;  // slots neither awaiting a reply nor being written
  std::vector<std::uint32_t> queue_; // ring of slots waiting to be written, front in flight
  std::size_t queue_head_ = 0;
  std::size_t queue_size_ = 0;

  std::uint64_t next_seq_ = 0;
  std::uint64_t in_flight_ = 0;
  clock_type::duration interval_{};
  clock_type::time_point next_intended_;
  bool connected_ = false;
  bool sending_ = false;
  bool timer_armed_ = false;
  bool closing_ = false;
  bool finished_ = false;
};

void run_control::connected(bool ok, const std::string& error) {
  std::lock_guard lock(mutex_);
  if (!ok)
    std::cerr << "nudge_bench: connection failed: " << error << "\n";
  if (++reported_ == sessions_.size())
    start_all();
}

void run_control::start_all() {
  const auto now = clock_type::now();
  const phases p{now + settings_.warmup, now + settings_.warmup + settings_.duration,
                 now + settings_.warmup + settings_.duration + settings_.drain};
  for (const auto& s : sessions_)
    if (s->connected())
      ++started_;
  std::cerr << "nudge_bench: " << started_ << "/" << sessions_.size() << " connected; warm-up "
            << settings_.warmup.count() << " ms, measuring " << settings_.duration.count()
            << " ms\n";
  if (started_ == 0)
    return;
  // Armed before any session starts, so a session_finished() can never precede it.
  net::post(timer_.get_executor(), [this, p] {
    {
      std::lock_guard lock(mutex_);
      if (all_finished_)
        return;
    }
    timer_.expires_at(p.drain_end);
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec)
        stop_all();
    });
  });
  if (settings_.report_every.count() > 0)
    net::post(timer_.get_executor(), [this, now, p] { arm_report(now, now + settings_.report_every, p.drain_end); });
  std::uint32_t i = 0;
  for (const auto& s : sessions_) {
    if (!s->connected())
      continue;
    // Open loop: spread the connections' schedules evenly over one interval.
    const auto offset = settings_.open_loop ? s->interval() * static_cast<std::int64_t>(i) /
                                                  static_cast<std::int64_t>(started_)
                                            : clock_type::duration(0);
    ++i;
    net::post(s->executor(), [s, p, first = now + offset] { s->begin(p, first); });
  }
}

void run_control::arm_report(clock_type::time_point start, clock_type::time_point at,
                             clock_type::time_point until) {
  report_timer_.expires_at(at);
  report_timer_.async_wait([this, start, at, until](beast::error_code ec) {
    if (ec)
      return;  // cancelled: the run ended
    latency_histogram h;
    std::uint64_t lag_max = 0;
    {
      std::lock_guard lock(interval_mutex_);
      std::swap(h, interval_latency_);
      std::swap(lag_max, interval_send_lag_max_);
    }
    const double period = std::chrono::duration<double>(settings_.report_every).count();
    std::printf("{\"interval\":{\"t_s\":%.3f,\"replies\":%llu,\"rate\":%.1f,\"p50_us\":%llu,"
                "\"p99_us\":%llu,\"max_us\":%llu,\"send_lag_max_us\":%llu}}\n",
                std::chrono::duration<double>(at - start).count(), static_cast<unsigned long long>(h.count()),
                static_cast<double>(h.count()) / period, static_cast<unsigned long long>(h.value_at_percentile(50)),
                static_cast<unsigned long long>(h.value_at_percentile(99)), static_cast<unsigned long long>(h.max()),
                static_cast<unsigned long long>(lag_max));
    std::fflush(stdout);
    if (at + settings_.report_every <= until)
      arm_report(start, at + settings_.report_every, until);
  });
}

void run_control::stop_all() {
  for (const auto& s : sessions_)
    if (s->connected())
      net::post(s->executor(), [s] { s->stop(); });
}

void run_control::session_finished() {
  std::lock_guard lock(mutex_);
  if (++finished_ < started_)
    return;
  all_finished_ = true;
  net::post(timer_.get_executor(), [this] {
    timer_.cancel();
    report_timer_.cancel();
  });
}

} // namespace

bench_result run_bench(const bench_settings& settings) {
  net::io_context ioc(static_cast<int>(settings.threads));
  bench_result total;

  tcp::resolver resolver(ioc);
  beast::error_code ec;
  auto endpoints = resolver.resolve(settings.host, settings.port, ec);
  if (ec) {
    total.connect_failures = settings.connections;
    total.first_connect_error = "resolve " + settings.host + ": " + ec.message();
    return total;
  }

  run_control control(ioc, settings);
  for (std::uint32_t i = 0; i < settings.connections; ++i)
    control.add(std::make_shared<bench_session>(ioc, settings, i, control));
  for (const auto& s : control.sessions())
    s->connect(endpoints);

  const auto cpu_now = [] {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return seconds(u.ru_utime) + seconds(u.ru_stime);
  };
  const double cpu_before = cpu_now();
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < settings.threads; ++i)
    threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads)
    t.join();
  total.cpu_seconds = cpu_now() - cpu_before;

  total.measured_seconds = std::chrono::duration<double>(settings.duration).count();
  for (const auto& s : control.sessions()) {
    const bench_result& r = s->result();
    if (s->connected())
      ++total.connections_ok;
    total.connect_failures += r.connect_failures;
    if (total.first_connect_error.empty())
      total.first_connect_error = r.first_connect_error;
    total.sent += r.sent;
    total.replies += r.replies;
    total.measured_replies += r.measured_replies;
    total.error_replies += r.error_replies;
    total.unmatched += r.unmatched;
    total.pushes += r.pushes;
    total.unanswered += r.unanswered;
    total.unsent += r.unsent;
    total.io_errors += r.io_errors;
    if (total.first_io_error.empty())
      total.first_io_error = r.first_io_error;
    total.latency_us.merge(r.latency_us);
    total.send_lag_us.merge(r.send_lag_us);
    total.from_send_us.merge(r.from_send_us);
  }
  return total;
}

} // namespace nudge::bench
