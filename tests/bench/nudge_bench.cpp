// nudge_bench: a WebSocket load generator for the nudge stream endpoint (API.md
// section 3), or for echo_baseline, which answers each frame with itself.
//
// Prints a human summary and then one line starting with {"summary": for scripts.
// Exit: 0 when the run completed; 1 when no connection came up, or on any error with
// --fail-on-error; 2 on bad usage.
#include "tests/bench/bench_run.hpp"
#include "net/ws_url.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <random>
#include <string>

namespace {

using nudge::bench::bench_result;
using nudge::bench::bench_settings;

// "10s", "500ms", "2m", "0s", or plain seconds ("10").
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  if (digits == 0 || digits > 9)
    return std::nullopt;
  const long long n = std::stoll(text.substr(0, digits));
  const std::string unit = text.substr(digits);
  if (unit.empty() || unit == "s")
    return std::chrono::seconds(n);
  if (unit == "ms")
    return std::chrono::milliseconds(n);
  if (unit == "m")
    return std::chrono::minutes(n);
  return std::nullopt;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

void print_summary(const bench_settings& s, const std::string& url, const bench_result& r) {
  const auto& h = r.latency_us;
  const double rate =
      r.measured_seconds > 0 ? static_cast<double>(r.measured_replies) / r.measured_seconds : 0;
  const char* format = s.format == nudge::bench::wire_format::json ? "json" : "msgpack";
  const char* mix = s.mix == nudge::bench::message_mix::retail ? "retail" : "page_view";

  std::printf("nudge_bench %s\n", url.c_str());
  if (s.open_loop)
    std::printf(
        "  load       open loop, %.0f msgs/s target over %u connections (%u up), %s, %s mix\n",
        s.rate, s.connections, r.connections_ok, format, mix);
  else
    std::printf("  load       closed loop, window %u x %u connections (%u up), %s, %s mix\n",
                s.window, s.connections, r.connections_ok, format, mix);
  std::printf("  phases     warm-up %.3f s, measured %.3f s, %u io thread(s)\n",
              std::chrono::duration<double>(s.warmup).count(), r.measured_seconds, s.threads);
  std::printf("  throughput %.1f msgs/s (%llu replies in the measured phase; %llu sent, %llu "
              "replied in all)\n",
              rate, static_cast<unsigned long long>(r.measured_replies),
              static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.replies));
  std::printf("  latency    %s, %llu samples, microseconds\n",
              s.open_loop ? "from intended send time" : "from send",
              static_cast<unsigned long long>(h.count()));
  for (double p : {50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99})
    std::printf("    p%-6g %10llu\n", p, static_cast<unsigned long long>(h.value_at_percentile(p)));
  std::printf("    max     %10llu\n    mean    %10.1f\n", static_cast<unsigned long long>(h.max()),
              h.mean());
  if (s.open_loop) {
    // What of that latency the generator added itself: it sent late (its own thread
    // or the machine paused, or every slot of a connection was in flight).
    const auto& lag = r.send_lag_us;
    const auto& fs = r.from_send_us;
    std::printf("  send lag   after the intended time: p50 %llu, p99 %llu, max %llu\n",
                static_cast<unsigned long long>(lag.value_at_percentile(50)),
                static_cast<unsigned long long>(lag.value_at_percentile(99)),
                static_cast<unsigned long long>(lag.max()));
    std::printf("  from send  latency from the actual send: p50 %llu, p99 %llu, p99.9 %llu, max %llu\n",
                static_cast<unsigned long long>(fs.value_at_percentile(50)),
                static_cast<unsigned long long>(fs.value_at_percentile(99)),
                static_cast<unsigned long long>(fs.value_at_percentile(99.9)),
                static_cast<unsigned long long>(fs.max()));
  }
  std::printf(
      "  errors     %llu (error replies %llu, unmatched %llu, unanswered %llu, unsent %llu, "
      "connection failures %llu, io errors %llu); pushes %llu\n",
      static_cast<unsigned long long>(r.errors()), static_cast<unsigned long long>(r.error_replies),
      static_cast<unsigned long long>(r.unmatched), static_cast<unsigned long long>(r.unanswered),
      static_cast<unsigned long long>(r.unsent),
      static_cast<unsigned long long>(r.connect_failures),
      static_cast<unsigned long long>(r.io_errors), static_cast<unsigned long long>(r.pushes));
  const double cpu_per_reply = r.replies > 0 ? r.cpu_seconds * 1e6 / static_cast<double>(r.replies) : 0;
  std::printf("  generator  %.2f s of CPU over the run, %.1f µs per reply (the service's machine pays it too "
              "when shared)\n",
              r.cpu_seconds, cpu_per_reply);
  if (!r.first_connect_error.empty())
    std::printf("  first connection error: %s\n", r.first_connect_error.c_str());
  if (!r.first_io_error.empty())
    std::printf("  first io error: %s\n", r.first_io_error.c_str());

  std::printf(
      "{\"summary\":{\"messages\":%llu,\"rate\":%.1f,\"errors\":%llu,"
      "\"p50_us\":%llu,\"p90_us\":%llu,\"p99_us\":%llu,\"p999_us\":%llu,\"max_us\":%llu,"
      "\"mean_us\":%.1f,\"send_lag_p99_us\":%llu,\"send_lag_max_us\":%llu,\"from_send_p99_us\":%llu,"
      "\"from_send_max_us\":%llu,\"connections\":%u,\"connections_up\":%u,\"format\":\"%s\","
      "\"mode\":\"%s\",\"window\":%u,\"target_rate\":%.1f,\"mix\":\"%s\","
      "\"duration_s\":%.3f,\"warmup_s\":%.3f,\"threads\":%u,\"sent\":%llu,\"replies\":%llu,"
      "\"error_replies\":%llu,\"unmatched\":%llu,\"unanswered\":%llu,\"unsent\":%llu,"
      "\"connect_failures\":%llu,\"io_errors\":%llu,\"pushes\":%llu,\"gen_cpu_us_per_reply\":%.1f,"
      "\"url\":\"%s\"}}\n",
      static_cast<unsigned long long>(r.measured_replies), rate,
      static_cast<unsigned long long>(r.errors()),
      static_cast<unsigned long long>(h.value_at_percentile(50)),
      static_cast<unsigned long long>(h.value_at_percentile(90)),
      static_cast<unsigned long long>(h.value_at_percentile(99)),
      static_cast<unsigned long long>(h.value_at_percentile(99.9)),
      static_cast<unsigned long long>(h.max()), h.mean(),
      static_cast<unsigned long long>(r.send_lag_us.value_at_percentile(99)),
      static_cast<unsigned long long>(r.send_lag_us.max()),
      static_cast<unsigned long long>(r.from_send_us.value_at_percentile(99)),
      static_cast<unsigned long long>(r.from_send_us.max()), s.connections, r.connections_ok, format,
      s.open_loop ? "open" : "closed", s.open_loop ? 0u : s.window, s.open_loop ? s.rate : 0.0, mix,
      r.measured_seconds, std::chrono::duration<double>(s.warmup).count(), s.threads,
      static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.replies),
      static_cast<unsigned long long>(r.error_replies),
      static_cast<unsigned long long>(r.unmatched), static_cast<unsigned long long>(r.unanswered),
      static_cast<unsigned long long>(r.unsent),
      static_cast<unsigned long long>(r.connect_failures),
      static_cast<unsigned long long>(r.io_errors), static_cast<unsigned long long>(r.pushes), cpu_per_reply,
      json_escape(url).c_str());
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  CLI::App app{"nudge_bench: WebSocket load generator for nudge's /v1/stream"};
  std::string url = "ws://127.0.0.1:8080/v1/stream";
  std::string key;
  bool bearer = false;
  std::string format = "json";
  std::string mode = "closed";
  std::string mix = "retail";
  std::string warmup = "2s";
  std::string duration = "10s";
  std::string drain = "5s";
  std::string run_id;
  bool fail_on_error = false;
  bench_settings s;
  std::uint64_t seed = 0;

  app.add_option("--url", url, "ws://HOST:PORT/PATH of the stream endpoint")->capture_default_str();
  app.add_option("--key", key, "write key, appended as ?key=KEY");
  app.add_flag("--bearer", bearer, "send the key as Authorization: Bearer instead of ?key=");
  app.add_option("--connections", s.connections, "WebSocket connections")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--profiles", s.profiles, "distinct anonymous_id values, chosen uniformly")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000000000000}));
  app.add_option("--format", format, "json (text frames) or msgpack (binary frames)")
      ->capture_default_str()
      ->check(CLI::IsMember({"json", "msgpack"}));
  app.add_option("--mode", mode, "closed (a window per connection) or open (a fixed rate)")
      ->capture_default_str()
      ->check(CLI::IsMember({"closed", "open"}));
  app.add_option("--window", s.window, "closed loop: messages in flight per connection")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--rate", s.rate, "open loop: messages per second over all connections")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-in-flight", s.max_in_flight,
                 "open loop: cap of unanswered messages per connection")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--warmup", warmup, "warm-up before measuring (500ms, 2s, 1m)")
      ->capture_default_str();
  app.add_option("--duration", duration, "measured phase")->capture_default_str();
  app.add_option("--drain", drain, "how long to wait for outstanding replies after it")
      ->capture_default_str();
  app.add_option("--threads", s.threads, "io_context threads")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  app.add_option("--mix", mix, "retail (a shop session mix) or page_view (page views only)")
      ->capture_default_str()
      ->check(CLI::IsMember({"retail", "page_view"}));
  app.add_option("--seed", seed, "random seed (default: from the clock)");
  app.add_option("--run-id", run_id, "first part of every message id (default: random hex)");
  app.add_flag("--fail-on-error", fail_on_error, "exit 1 when any error was counted");
  std::string interval;
  app.add_option("--interval", interval,
                 "also print one {\"interval\": ...} line per period (1s, 250ms): replies and "
                 "their p50/p99/max latency, from the start of the warm-up to the end of the drain");
  CLI11_PARSE(app, argc, argv);

  std::string error;
  auto parsed = nudge::net::parse_ws_url(url, error);
  if (!parsed) {
    std::cerr << "nudge_bench: --url " << url << ": " << error << "\n";
    return 2;
  }
  auto w = parse_duration(warmup);
  auto d = parse_duration(duration);
  auto dr = parse_duration(drain);
  if (!w || !d || !dr || d->count() == 0) {
    std::cerr << "nudge_bench: durations are <digits>[ms|s|m] and --duration must be > 0\n";
    return 2;
  }
  if (!interval.empty()) {
    auto every = parse_duration(interval);
    if (!every || every->count() < 10) {
      std::cerr << "nudge_bench: --interval is <digits>[ms|s|m], at least 10ms\n";
      return 2;
    }
    s.report_every = *every;
  }
  if (mode == "open" && s.rate <= 0) {
    std::cerr << "nudge_bench: --mode open needs --rate N (messages per second)\n";
    return 2;
  }

  s.host = parsed->host;
  s.port = parsed->port;
  s.target = parsed->target;
  if (!key.empty()) {
    if (bearer)
      s.bearer = key;
    else
      nudge::net::append_key(s.target, key);
  }
  s.format =
      format == "json" ? nudge::bench::wire_format::json : nudge::bench::wire_format::msgpack;
  s.mix =
      mix == "retail" ? nudge::bench::message_mix::retail : nudge::bench::message_mix::page_view;
  s.open_loop = mode == "open";
  s.warmup = *w;
  s.duration = *d;
  s.drain = *dr;
  std::random_device entropy;
  s.seed = app.count("--seed") ? seed : (std::uint64_t{entropy()} << 32) ^ entropy();
  if (run_id.empty()) {
    char tag[16];
    std::snprintf(tag, sizeof tag, "%08x", entropy());
    run_id = tag;
  }
  if (run_id.find_first_of("#@~\"\\") != std::string::npos || run_id.size() > 64) {
    std::cerr << "nudge_bench: --run-id must be at most 64 characters without # @ ~ \" \\\n";
    return 2;
  }
  s.run_tag = run_id;

  bench_result r = nudge::bench::run_bench(s);
  print_summary(s, url, r);
  if (r.connections_ok == 0)
    return 1;
  if (fail_on_error && r.errors() > 0)
    return 1;
  return 0;
}
