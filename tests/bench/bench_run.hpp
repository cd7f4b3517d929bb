// One load-generation run against a WebSocket endpoint: connect every connection, warm
// up, measure, drain, close. Beast stays behind this header.
//
// Timing rules. Closed loop: each connection keeps `window` messages in flight and sends
// the next one when a reply arrives; latency runs from the moment the message is queued
// for writing. Open loop: each connection sends at rate / connections on a fixed schedule
// (connections staggered evenly); latency runs from the INTENDED send time, so a message
// held back by a slow server (no free in-flight slot, or a write queue behind) carries
// its waiting time too. In both modes the histogram holds every message whose (intended)
// send time falls in the measured phase, answered during the phase or the drain after
// it; `measured_replies` counts replies that arrived during the phase, so
// rate = measured_replies / duration. Messages still unanswered when the drain ends are
// counted in `unanswered` (open loop: also the backlog never sent, in `unsent`).
#pragma once

#include "tests/bench/latency_histogram.hpp"
#include "tests/bench/workload.hpp"

#include <chrono>
#include <cstdint>
#include <string>

namespace nudge::bench {

struct bench_settings {
  std::string host;   // as in the URL, without brackets for IPv6
  std::string port;   // "80" when the URL has none
  std::string target; // path and query, "?key=" already appended
  std::string bearer; // when set, sent as "Authorization: Bearer ..." instead
  wire_format format = wire_format::json;
  message_mix mix = message_mix::retail;
  bool open_loop = false;
  std::uint32_t connections = 64;
  std::uint32_t window = 16;          // closed loop: messages in flight per connection
  double rate = 0;                    // open loop: messages per second, all connections
  std::uint32_t max_in_flight = 4096; // open loop: cap per connection
  std::uint64_t profiles = 10000;
  std::uint64_t seed = 1;
  std::string run_tag; // first part of every id; unique per run
  std::chrono::milliseconds warmup{2000};
  std::chrono::milliseconds duration{10000};
  std::chrono::milliseconds drain{5000}; // wait for outstanding replies after the phase
  std::chrono::milliseconds connect_timeout{10000};
  unsigned threads = 1;
  /// When set: one {"interval": ...} line on stdout per period of the warm-up, the
  /// measured phase and the drain, with the replies that arrived in it and their
  /// latencies (from the (intended) send time, as in the histogram) and the largest
  /// send lag of the messages sent in it. For watching a run fall behind or stall,
  /// which a whole-run percentile hides.
  std::chrono::milliseconds report_every{0};
};

struct bench_result {
  std::uint32_t connections_ok = 0;
  std::uint64_t connect_failures = 0;
  std::string first_connect_error;    // for the human summary
  std::uint64_t sent = 0;             // all phases
  std::uint64_t replies = 0;          // matched replies, all phases
  std::uint64_t measured_replies = 0; // matched replies that arrived in the measured phase
  std::uint64_t error_replies = 0;    // "type":"error", any id
  std::uint64_t unmatched = 0;        // frames whose id is not one in flight, or unreadable
  std::uint64_t pushes = 0;           // "id": null and not an error: not counted as errors
  std::uint64_t unanswered = 0;       // in flight when the connection ended
  std::uint64_t unsent = 0;           // open loop: scheduled but never sent
  std::uint64_t io_errors = 0;        // connections that ended with a read or write error
  std::string first_io_error;
  double measured_seconds = 0; // the measured phase as it actually ran
  /// The generator's own CPU time (user + system, all its threads) over the whole run.
  /// On a machine it shares with the service, what it takes is the service's loss:
  /// divided by `replies` it is the generator's cost per message.
  double cpu_seconds = 0;
  latency_histogram latency_us;
  /// Measured messages: how late the generator sent each one after its intended time
  /// (open loop; empty in a closed loop, reported as 0). A pause of the generator's own thread, or of the
  /// whole machine, shows here as well as in latency_us; the service's back-pressure
  /// (every slot of a connection in flight) does too.
  latency_histogram send_lag_us;
  /// Measured messages: from the actual send to the reply (latency_us less the send lag).
  latency_histogram from_send_us;

  std::uint64_t errors() const {
    return connect_failures + error_replies + unmatched + unanswered + unsent + io_errors;
  }
};

/// Runs to completion on settings.threads threads (the caller's included) and returns
/// the merged figures. Does not throw on network errors: they are counted.
bench_result run_bench(const bench_settings& settings);

} // namespace nudge::bench
