#include <utility>

#include "app/serve.hpp"

#include "app/heap_prefault.hpp"
#include "app/options.hpp"

#include "actors/context.hpp"
#include "actors/directory.hpp"
#include "actors/periodic_thread.hpp"
#include "actors/identity_resolver.hpp"
#include "actors/journal.hpp"
#include "actors/outbox_service.hpp"
#include "actors/shared_counters.hpp"
#include "actors/timer_service.hpp"
#include "actors/retention_sweeper.hpp"
#include "actors/shared_counters.hpp"
#include "actors/suppression_list.hpp"
#include "actors/type_ids.hpp"
#include "embedded_policy.hpp"
#include "net/gateway.hpp"
#include "net/http_client.hpp"
#include "net/webhook.hpp"
#include "net/server.hpp"
#include "policies/policy.hpp"
#include "storage/env.hpp"
#include "storage/meta_table.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <pthread.h>
#include <optional>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

namespace nudge::app {

namespace {

constexpr std::string_view active_policy_key = "active_policy";  // also written by net/http_session

std::optional<std::string> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in)
    return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void print_problems(std::string_view file, const std::vector<policies::problem>& problems) {
  for (const auto& p : problems)
    std::cerr << file << ": " << (p.path.empty() ? "(document)" : p.path) << ": " << p.message << '\n';
}

std::vector<actors::destination> destinations_for(const config& cfg) {
  std::vector<actors::destination> out;
  for (const auto& d : cfg.destinations)
    out.push_back({d.id, d.url, d.secret, d.channels, d.timeout, static_cast<int>(d.max_attempts)});
  return out;
}

/// A signed POST (`Nudge-Signature: t=UNIX,v1=HEX`, exactly as webhooks are signed).
actors::outbox_service::send_fn signed_sender(net::http_client& client) {
  return [&client](const actors::destination& d, const std::string& body, actors::outbox_service::completion done) {
    auto t = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    net::http_client::headers h{{"Nudge-Signature", "t=" + t + ",v1=" + net::webhook_signature(d.secret, t, body)}};
    client.post(d.url, body, std::move(h), d.timeout, std::move(done));
  };
}

}  // namespace

int policy_check(const config& cfg, const std::filesystem::path& file) {
  auto text = read_file(file);
  if (!text) {
    std::cerr << file.string() << ": cannot read the file\n";
    return 2;
  }
  auto res = policies::compile(*text, policy_limits_for(cfg));
  if (!res.compiled) {
    print_problems(file.string(), res.problems);
    return 2;
  }
  std::cout << file.string() << ": valid, version " << res.compiled->version() << '\n';
  return 0;
}

int serve(config cfg) {
  // The exec of main.cpp (malloc tuning) leaves the process named "exe" after
  // /proc/self/exe: named again so that ps, top and pgrep find "nudge". The service's
  // own threads name themselves (nudge-io-0, nudge-writer, ...); CAF's keep theirs.
  pthread_setname_np(pthread_self(), "nudge");
  std::vector<std::string> notices;
  if (auto err = resolve_secrets(cfg, notices)) {
    std::cerr << err->message << '\n';
    return 2;
  }

  // Storage first: it is destroyed last.
  storage::env_options eo;
  eo.dir = cfg.server.data_dir;
  eo.map_size_initial = cfg.storage.map_size_initial;
  eo.map_size_max = cfg.storage.map_size_max;
  eo.preallocate_ahead = cfg.storage.preallocate_ahead;
  eo.prefault = cfg.storage.prefault;
  eo.writable_map = cfg.storage.writable_map;
  eo.reader_check_interval = cfg.storage.reader_check_interval;
  eo.sync_each_commit = cfg.durability.mode == durability_mode::power;
  eo.commit_log = eo.sync_each_commit && cfg.durability.power_sync == power_sync_mode::log;
  eo.log_checkpoint_interval = cfg.durability.log_checkpoint_interval;
  std::error_code ec;
  auto env = storage::env::open(eo, ec);
  if (!env) {
    std::cerr << "storage " << eo.dir.string() << ": " << ec.message() << '\n';
    return 1;
  }
  if (const auto replayed = env->stats().log_records_replayed; replayed > 0)
    spdlog::info("storage: {} commits replayed from the commit log", replayed);
  if (eo.commit_log && !env->has_commit_log())
    spdlog::warn("storage: LMDB's meta pages are not laid out as this build expects; power durability syncs "
                 "LMDB's own pages instead of a commit log");

  // The policy: --policy, else the one last activated, else the embedded example.
  auto limits = policy_limits_for(cfg);
  std::string policy_text;
  std::string policy_origin;
  if (!cfg.policy_file.empty()) {
    auto text = read_file(cfg.policy_file);
    if (!text) {
      std::cerr << cfg.policy_file.string() << ": cannot read the file\n";
      return 2;
    }
    policy_text = std::move(*text);
    policy_origin = cfg.policy_file.string();
  } else {
    auto txn = env->read();
    if (auto stored = storage::meta_table::get(txn, active_policy_key)) {
      policy_text = std::move(*stored);
      policy_origin = "stored active policy";
    } else {
      policy_text = std::string(embedded_retail_policy);
      policy_origin = "embedded retail policy";
    }
  }
  auto compiled = policies::compile(policy_text, limits);
  if (!compiled.compiled) {
    print_problems(policy_origin, compiled.problems);
    return 2;
  }
  if (auto cec = env->commit([&](storage::write_txn& txn) {
        storage::meta_table::put(txn, active_policy_key, compiled.compiled->source());
      })) {
    std::cerr << "storage: cannot record the active policy: " << cec.message() << '\n';
    return 1;
  }

  // Signals are taken by sigwait below; every thread started from here inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  caf::actor_system_config caf_cfg;
  caf_cfg.add_message_types<caf::id_block::nudge>();
  // Measured on 2 cores: one worker or two give the same throughput (the I/O thread
  // and the writer take the rest); two keep a long decision from stalling the others.
  caf_cfg.set("scheduler.max-threads", static_cast<std::size_t>(std::max(2u, std::thread::hardware_concurrency())));
  caf_cfg.set("logger.console", caf::atom("none"));
  // Work stealing parks idle workers in sleeps of up to 10 ms, which a message then
  // waits out; the sharing policy wakes a worker through a condition variable instead.
  caf_cfg.set("scheduler.policy", caf::atom("sharing"));
  auto system = std::make_unique<caf::actor_system>(caf_cfg);

  actors::context ctx;
  ctx.options.history_max_events = cfg.profiles.history_max_events;
  ctx.options.history_max_age = cfg.profiles.history_max_age;
  ctx.options.idle_passivate = cfg.profiles.idle_passivate;
  ctx.options.max_active = cfg.profiles.max_active;
  ctx.options.dedupe_window = cfg.durability.dedupe_window;
  ctx.options.dedupe_seen_max = cfg.durability.dedupe_seen_max;
  ctx.options.purposes = cfg.consent.purposes;
  ctx.options.purpose_defaults.clear();
  for (const auto& p : cfg.consent.purposes) {
    auto it = cfg.consent.overrides.find(p);
    ctx.options.purpose_defaults.push_back(it != cfg.consent.overrides.end() ? it->second : cfg.consent.default_granted);
  }
  ctx.options.anonymous_ttl = cfg.profiles.anonymous_ttl;
  ctx.options.anonymous_types.clear();
  for (const auto& t : cfg.identities)
    if (t.anonymous)
      ctx.options.anonymous_types.push_back(t.name);
  ctx.env = env.get();
  ctx.system = system.get();
  ctx.policy.set(compiled.compiled);
  // spdlog's registry is a lazy static inside libspdlog: build it here, before the
  // first thread, rather than on whichever thread logs first (ThreadSanitizer cannot
  // see that library's init guard and reported it).
  spdlog::default_logger_raw();
  actors::journal writer(*env, actors::journal_options{cfg.durability.dedupe_window, cfg.durability.checkpoint_entries});
  if (auto jec = writer.start_error()) {
    std::cerr << "data directory " << cfg.server.data_dir.string() << ": the journal cannot be read: " << jec.message() << '\n';
    writer.stop();
    return 1;
  }
  ctx.writer = &writer;
  actors::counter_store counters;
  counters.load(*env, *compiled.compiled);
  ctx.counters = &counters;
  // The counters that decisions and feedback change go to storage with each commit.
  writer.on_meta([&counters](std::vector<std::pair<std::string, std::string>>& out) { counters.take_dirty(out); });
  actors::directory dir(ctx);
  ctx.dir = &dir;
  // The journal asks the profiles that hold its oldest entries for a snapshot.
  writer.on_checkpoint([&dir](std::vector<std::string> ids) {
    for (auto& id : ids) {
      auto e = actors::make_envelope();
      e->msg.kind = actors::message_kind::checkpoint;
      e->msg.id = "checkpoint";
      e->msg.source = "journal";
      dir.dispatch(id, std::move(e));
    }
  });
  // Idle profiles leave memory: actors not dispatched to for a whole sweep period
  // are asked to check themselves (no per-actor timer: CAF's delayed messages keep
  // their receiver allocated until due, which an early passivation then waited out).
  actors::periodic_thread idle_sweep(
    "nudge-idle",
    std::clamp<std::chrono::milliseconds>(cfg.profiles.idle_passivate / 2, std::chrono::milliseconds(10),
                                          std::chrono::minutes(10)),
    [&dir] { dir.sweep_idle(); });
  // The heap's untouched tail is faulted in here, ahead of the allocation that would
  // touch it first on an I/O thread (app/heap_prefault.hpp): every 10 ms, up to 64 MiB
  // a step, which is over 6 GB/s, more than the heap ever grows.
  heap_prefault heap_tail;
  actors::periodic_thread heap_prefaulter("nudge-heap", std::chrono::milliseconds(10),
                                          [&heap_tail] { heap_tail.step(std::size_t{64} << 20); });
  std::vector<actors::identity_limit> identity_limits;
  for (const auto& t : cfg.identities)
    identity_limits.push_back({t.name, t.limit});
  actors::identity_resolver resolver(*env, std::move(identity_limits));
  ctx.on_resolution_settled = [&resolver](std::uint64_t ticket) {
    resolver.settled(ticket);
  };
  // Outbound: destinations get a client with its own io thread; timers fire from start.
  net::http_client http_out;
  actors::outbox_service outbox(ctx, destinations_for(cfg), signed_sender(http_out));
  ctx.outbox = &outbox;
  ctx.on_erasing = [&resolver, &outbox](const std::string& pid) {
    resolver.erasing(pid);
    outbox.forget_profile(pid);
  };
  actors::timer_service timers(ctx);
  ctx.timers = &timers;

  actors::suppression_list suppression(*env, cfg.server.suppression_key);
  ctx.suppression = &suppression;

  net::gateway gw(gateway_options_for(cfg), ctx, resolver);
  ctx.redispatch = [&gw](actors::envelope_ptr e) { gw.redispatch(std::move(e)); };
  ctx.on_erase_failed = [&resolver](const std::string& pid) { resolver.erase_failed(pid); };
  // Idle anonymous profiles: the due-time index is read a few times per ttl (at
  // most once a minute, at least every half second).
  std::optional<actors::retention_sweeper> sweeper;
  if (cfg.profiles.anonymous_ttl.count() > 0 && !ctx.options.anonymous_types.empty())
    sweeper.emplace(ctx, std::clamp<std::chrono::milliseconds>(cfg.profiles.anonymous_ttl / 4,
                                                               std::chrono::milliseconds(500), std::chrono::minutes(1)));
  net::server srv(gw, static_cast<int>(cfg.server.io_threads), cfg.server.io_actor_percent / 100.0,
                  std::chrono::microseconds{cfg.server.io_spin_us});
  // 1. No new connections; 2. in-flight messages finish (bounded wait);
  // 3. active profiles persist and leave; 4. the writer drains; 5. close.
  // Also the way out when listening fails: timers and outbox deliveries fire from
  // their start, so profile actors may already be running on `ctx`, which must
  // outlive them (a failed listen over a data dir with due timers crashed here).
  auto shut_down = [&] {
    gw.ready = false;
    if (sweeper)
      sweeper->stop();
    srv.stop_accepting();
    auto wait_for = [](auto pred, std::chrono::milliseconds limit) {
      auto until = std::chrono::steady_clock::now() + limit;
      while (!pred() && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    };
    wait_for([&] { return gw.inflight.load() <= 0; }, std::chrono::seconds(5));
    // No more firings or deliveries; what is pending stays in LMDB for the next start.
    timers.stop();
    http_out.stop();
    outbox.stop();
    idle_sweep.stop();
    writer.stop_checkpoints();  // passivation snapshots every profile anyway
    dir.passivate_all();
    wait_for([&] { return dir.active() == 0; }, std::chrono::seconds(5));
    // The actor system's teardown waits for every actor: one that did not leave must not
    // hold the process forever.
    if (auto left = dir.active(); left > 0) {
      spdlog::warn("{} profiles did not leave within 5 s of shutdown; stopping them", left);
      dir.stop_all();
    }
    srv.stop();
    writer.stop();
    system.reset();
    env->sync();
  };
  auto port = srv.start(cfg.server.listen_host, cfg.server.listen_port, ec);
  if (port == 0) {
    std::cerr << "listen " << cfg.server.listen_host << ':' << cfg.server.listen_port
              << (cfg.server.tls_cert.empty() ? "" : " (TLS: tls_cert, tls_key)") << ": " << ec.message() << '\n';
    shut_down();
    return 1;
  }
  gw.ready = true;
  for (const auto& n : notices)
    std::cout << n << '\n';
  std::cout << "policy " << compiled.compiled->version() << " (" << policy_origin << ")\n";
  auto host = cfg.server.listen_host.find(':') != std::string::npos ? "[" + cfg.server.listen_host + "]"
                                                                     : cfg.server.listen_host;
  std::cout << "listening on " << (cfg.server.tls_cert.empty() ? "http://" : "https://") << host << ':' << port
            << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down", sig);

  shut_down();
  return 0;
}

int backup(const config& cfg, const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code fec;
  if (!fs::exists(cfg.server.data_dir / "data.mdb", fec)) {
    std::cerr << (cfg.server.data_dir / "data.mdb").string() << ": no such file (is the data dir right?)\n";
    return 2;
  }
  if (fs::exists(dir / "data.mdb", fec)) {
    std::cerr << (dir / "data.mdb").string() << ": already exists; back up into a new directory\n";
    return 2;
  }
  // A second process on the same environment: LMDB's lock file coordinates it with
  // the running service, whose writes go on while the copy reads one snapshot. The
  // copy is then rewritten record by record, so that it holds no remnant of erased
  // data (see env::scrubbed_copy_to).
  storage::env_options eo;
  eo.dir = cfg.server.data_dir;
  eo.map_size_initial = cfg.storage.map_size_initial;
  eo.map_size_max = cfg.storage.map_size_max;
  eo.preallocate_ahead = cfg.storage.preallocate_ahead;
  eo.prefault = cfg.storage.prefault;
  eo.writable_map = cfg.storage.writable_map;
  eo.reader_check_interval = cfg.storage.reader_check_interval;
  eo.secondary = true;  // the commit log is the serving process's
  std::error_code ec;
  auto env = storage::env::open(eo, ec);
  if (!env) {
    std::cerr << "storage " << eo.dir.string() << ": " << ec.message() << '\n';
    return 1;
  }
  if ((ec = env->scrubbed_copy_to(dir))) {
    std::cerr << "backup to " << dir.string() << ": " << ec.message() << '\n';
    return 1;
  }
  // The generated secrets go along (0600): without suppression.key a restored service
  // could not recognise the suppressed identities.
  for (const auto& entry : fs::directory_iterator(cfg.server.data_dir, fec)) {
    auto name = entry.path().filename().string();
    if (name != "admin.token" && entry.path().extension() != ".key")
      continue;
    fs::copy_file(entry.path(), dir / name, fs::copy_options::skip_existing, fec);
    fs::permissions(dir / name, fs::perms::owner_read | fs::perms::owner_write, fs::perm_options::replace, fec);
  }
  auto size = fs::file_size(dir / "data.mdb", fec);
  std::cout << "backup of " << eo.dir.string() << " written to " << (dir / "data.mdb").string() << " ("
            << (fec ? 0 : size) << " bytes, compacted)\n";
  return 0;
}

}  // namespace nudge::app
