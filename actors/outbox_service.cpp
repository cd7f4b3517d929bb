#include <utility>

#include "actors/outbox_service.hpp"

#include "actors/clock.hpp"
#include "actors/context.hpp"
#include "actors/journal.hpp"
#include "storage/env.hpp"
#include "storage/outbox_table.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include <pthread.h>

namespace nudge::actors {

outbox_service::outbox_service(context& ctx, std::vector<destination> destinations, send_fn send, outbox_options opts)
  : ctx_(ctx), dests_(std::move(destinations)), send_(std::move(send)), opts_(opts), queues_(dests_.size()) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "nudge-outbox");
    run();
  });
}

outbox_service::~outbox_service() {
  stop();
}

void outbox_service::stop() {
  {
    std::lock_guard<std::mutex> guard(mtx_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable())
    thread_.join();
}

std::vector<const destination*> outbox_service::destinations_for(std::string_view channel) const {
  std::vector<const destination*> out;
  for (const auto& d : dests_)
    if (std::find(d.channels.begin(), d.channels.end(), channel) != d.channels.end())
      out.push_back(&d);
  return out;
}

outbox_stats outbox_service::stats() const {
  outbox_stats s;
  s.pending = ctx_.env->entries(ctx_.env->outbox());
  s.failed = ctx_.env->entries(ctx_.env->outbox_failed());
  s.delivered = delivered_.load(std::memory_order_relaxed);
  s.attempts = attempts_.load(std::memory_order_relaxed);
  s.retries = retries_.load(std::memory_order_relaxed);
  s.in_flight = in_flight_.load(std::memory_order_relaxed);
  return s;
}

void outbox_service::forget_profile(const std::string& profile_id) {
  std::lock_guard<std::mutex> guard(mtx_);
  std::string prefix = profile_id;
  prefix.push_back('\0');
  // Queue and retry entries of dropped keys are skipped when they come up.
  for (auto it = items_.lower_bound(prefix); it != items_.end() && it->first.compare(0, prefix.size(), prefix) == 0;)
    it = it->second.st == state::queued || it->second.st == state::waiting ? items_.erase(it) : std::next(it);
  if (scanning_)
    forgotten_during_scan_.push_back(prefix);
  rescan_ = true;  // should the erasure not commit, the entries are read again
}

void outbox_service::added(std::vector<storage::outbox_entry> entries) {
  {
    std::lock_guard<std::mutex> guard(mtx_);
    for (auto& e : entries)
      hold(std::move(e));
  }
  cv_.notify_one();
}

bool outbox_service::hold(storage::outbox_entry e) {
  auto it = std::find_if(dests_.begin(), dests_.end(), [&](const auto& d) { return d.id == e.destination_id; });
  if (it == dests_.end())
    return false;  // a destination no longer configured: the entry waits in LMDB
  auto key = storage::outbox_table::key_of(e);
  if (items_.count(key))
    return true;
  if (items_.size() >= opts_.max_in_memory) {
    missed_ = rescan_ = true;
    return false;
  }
  auto dest = static_cast<std::size_t>(it - dests_.begin());
  const int attempts = static_cast<int>(e.attempts);
  // An entry read back after a restart waits out the backoff its last failure stored
  // (at most backoff_max, should the wall clock have jumped back).
  const auto wait = std::min<std::chrono::milliseconds>(e.next_attempt - now_ms(), opts_.backoff_max);
  if (wait.count() > 0) {
    retry_at_.emplace(std::chrono::steady_clock::now() + wait, key);
    items_.emplace(std::move(key), item{std::move(e), dest, attempts, state::waiting});
    return true;
  }
  queues_[dest].ready.push_back(key);
  items_.emplace(std::move(key), item{std::move(e), dest, attempts, state::queued});
  return true;
}

void outbox_service::rescan(std::unique_lock<std::mutex>& lock) {
  if (!rescan_ || items_.size() >= opts_.max_in_memory / 2)
    return;
  auto after = scan_cursor_;
  auto limit = opts_.max_in_memory - items_.size();
  missed_ = false;
  scanning_ = true;
  lock.unlock();
  std::error_code ec;
  std::vector<storage::outbox_entry> found;
  {
    auto txn = ctx_.env->read();
    found = storage::outbox_table::read_pending(txn, after, limit, ec);
  }
  lock.lock();
  scanning_ = false;
  std::set<std::string> left;
  std::vector<std::string> forgotten;
  left.swap(left_during_scan_);
  forgotten.swap(forgotten_during_scan_);
  if (ec) {
    spdlog::error("outbox: table unreadable: {}", ec.message());
    rescan_ = false;
    return;
  }
  std::string last = found.empty() ? std::string() : storage::outbox_table::key_of(found.back());
  for (auto& e : found) {
    auto key = storage::outbox_table::key_of(e);
    if (left.count(key) || std::any_of(forgotten.begin(), forgotten.end(),
                                       [&](const std::string& p) { return key.compare(0, p.size(), p) == 0; }))
      continue;
    hold(std::move(e));
  }
  if (found.size() < limit) {
    // The end of the table: another pass only for entries that did not fit meanwhile.
    scan_cursor_.clear();
    rescan_ = missed_;
  } else {
    scan_cursor_ = std::move(last);
  }
}

void outbox_service::run() {
  std::unique_lock<std::mutex> lock(mtx_);
  struct start {
    std::size_t dest;
    std::string key;
    std::string body;
  };
  std::vector<start> starts;
  while (!stopping_) {
    rescan(lock);
    auto now = std::chrono::steady_clock::now();
    while (!retry_at_.empty() && retry_at_.begin()->first <= now) {
      auto key = std::move(retry_at_.begin()->second);
      retry_at_.erase(retry_at_.begin());
      if (auto it = items_.find(key); it != items_.end() && it->second.st == state::waiting) {
        it->second.st = state::queued;
        queues_[it->second.dest].ready.push_back(std::move(key));
      }
    }
    for (std::size_t d = 0; d < queues_.size(); ++d) {
      auto& q = queues_[d];
      while (q.in_flight < opts_.max_in_flight && !q.ready.empty()) {
        auto key = std::move(q.ready.front());
        q.ready.pop_front();
        auto it = items_.find(key);
        if (it == items_.end() || it->second.st != state::queued)
          continue;
        it->second.st = state::in_flight;
        ++it->second.attempts;
        ++q.in_flight;
        starts.push_back({d, std::move(key), it->second.entry.body});
      }
    }
    if (!starts.empty()) {
      attempts_.fetch_add(starts.size(), std::memory_order_relaxed);
      in_flight_.fetch_add(starts.size(), std::memory_order_relaxed);
      lock.unlock();
      for (auto& s : starts)
        send_(dests_[s.dest], s.body, [this, key = std::move(s.key)](int status) { completed(key, status); });
      starts.clear();
      lock.lock();
      continue;
    }
    auto wake = now + std::chrono::seconds(1);
    if (!retry_at_.empty())
      wake = std::min(wake, retry_at_.begin()->first);
    cv_.wait_until(lock, wake);
  }
}

void outbox_service::completed(const std::string& key, int status) {
  std::lock_guard<std::mutex> guard(mtx_);
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  auto it = items_.find(key);
  if (it == items_.end())
    return;
  auto& item = it->second;
  --queues_[item.dest].in_flight;
  bool ok = status >= 200 && status < 300;
  if (!ok) {
    retries_.fetch_add(1, std::memory_order_relaxed);
    item.entry.attempts = static_cast<std::uint32_t>(item.attempts);
  }
  if (ok || item.attempts >= dests_[item.dest].max_attempts) {
    item.st = state::closing;
    write_record rec;
    if (ok)
      rec.outbox_erases.push_back(key);
    else
      rec.outbox_failed.push_back(item.entry);
    rec.on_done = [this, key, ok](bool committed) { closed(key, ok, committed); };
    ctx_.writer->submit(std::move(rec));
    if (!ok)
      spdlog::warn("outbox: {} to {} failed {} times; kept in the failed table", item.entry.decision_id,
                   item.entry.destination_id, item.attempts);
  } else {
    auto exp = std::min<std::int64_t>(item.attempts - 1, 20);
    auto backoff = std::min(opts_.backoff_max, opts_.backoff_base * (std::int64_t{1} << exp));
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    auto delay = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(backoff.count()) * jitter(rng_)));
    item.st = state::waiting;
    retry_at_.emplace(std::chrono::steady_clock::now() + delay, key);
    // The count and the next attempt's time survive a restart: a destination that
    // keeps failing reaches max_attempts however often the service restarts, and a
    // restart does not retry before the backoff. Nothing waits on this commit.
    item.entry.next_attempt = now_ms() + delay;
    write_record rec;
    rec.outbox_attempts.push_back(item.entry);
    ctx_.writer->submit(std::move(rec));
  }
  cv_.notify_one();
}

void outbox_service::closed(const std::string& key, bool delivered, bool committed) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto it = items_.find(key);
  if (it == items_.end())
    return;
  if (!committed) {
    // The delete did not reach the disk: try the whole step again later.
    it->second.st = state::waiting;
    retry_at_.emplace(std::chrono::steady_clock::now() + opts_.backoff_base, key);
    return;
  }
  items_.erase(it);
  if (scanning_)
    left_during_scan_.insert(key);
  if (delivered)
    delivered_.fetch_add(1, std::memory_order_relaxed);
  cv_.notify_one();
}

}  // namespace nudge::actors
