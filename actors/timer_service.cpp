#include <utility>

#include "actors/timer_service.hpp"

#include "actors/clock.hpp"
#include "actors/context.hpp"
#include "actors/directory.hpp"
#include "storage/env.hpp"
#include "storage/timer_table.hpp"

#include <spdlog/spdlog.h>

#include <pthread.h>

namespace nudge::actors {

namespace {

policies::timestamp cursor_due(const std::string& cursor) {
  if (cursor.size() < 8)
    return policies::timestamp{};
  std::uint64_t x = 0;
  for (int i = 0; i < 8; ++i)
    x = (x << 8) | static_cast<unsigned char>(cursor[static_cast<std::size_t>(i)]);
  return policies::timestamp{std::chrono::milliseconds{static_cast<std::int64_t>(x)}};
}

}  // namespace

timer_service::timer_service(context& ctx, timer_options opts)
  : ctx_(ctx), opts_(opts), thread_([this] {
      pthread_setname_np(pthread_self(), "nudge-timers");
      run();
    }) {
}

timer_service::~timer_service() {
  stop();
}

void timer_service::stop() {
  {
    std::lock_guard<std::mutex> guard(mtx_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable())
    thread_.join();
}

timer_stats timer_service::stats() const {
  timer_stats s;
  s.fired = fired_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> guard(mtx_);
  s.in_memory = next_.size();
  return s;
}

void timer_service::armed(const std::vector<storage::timer_key>& puts, const std::vector<storage::timer_key>& erases) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> guard(mtx_);
    for (const auto& t : erases)
      next_.erase(storage::timer_table::encode_key(t));
    for (const auto& t : puts) {
      if (loading_)
        arrived_.push_back(t);  // the read in flight may have missed it
      auto key = storage::timer_table::encode_key(t);
      if (!loaded_once_ || key > cursor_)
        continue;  // a later read of the index finds it
      wake = wake || next_.empty() || key < next_.begin()->first;
      next_.emplace(std::move(key), t);
    }
    trim();
  }
  if (wake)
    cv_.notify_one();
}

// Keeps memory bounded: past twice the batch, the latest keys go back to LMDB only.
void timer_service::trim() {
  if (next_.size() <= 2 * opts_.batch)
    return;
  while (next_.size() > opts_.batch)
    next_.erase(std::prev(next_.end()));
  cursor_ = next_.rbegin()->first;
}

void timer_service::load(std::unique_lock<std::mutex>& lock) {
  auto until = now_ms() + opts_.lookahead;
  auto after = cursor_;
  auto limit = opts_.batch;
  loading_ = true;
  lock.unlock();
  std::error_code ec;
  std::vector<storage::timer_key> found;
  {
    auto txn = ctx_.env->read();
    found = storage::timer_table::due_until(txn, until, limit, after, ec);
  }
  lock.lock();
  loading_ = false;
  auto arrived = std::move(arrived_);
  arrived_.clear();
  if (ec) {
    spdlog::error("timers: index unreadable: {}", ec.message());
    return;
  }
  // Keys committed meanwhile and reported by armed() are either beyond the old cursor
  // (and found now) or already in memory; the map dedupes.
  for (auto& t : found)
    next_.emplace(storage::timer_table::encode_key(t), std::move(t));
  if (cursor_ == after)  // trim() may have moved it meanwhile
    cursor_ = found.size() == limit ? storage::timer_table::encode_key(found.back())
                                    : storage::timer_table::key_after_due(until);
  loaded_once_ = true;
  for (auto& t : arrived)
    if (auto key = storage::timer_table::encode_key(t); key <= cursor_)
      next_.emplace(std::move(key), std::move(t));
  trim();
}

void timer_service::run() {
  std::unique_lock<std::mutex> lock(mtx_);
  while (!stopping_) {
    auto now = now_ms();
    if (!loaded_once_ || (next_.size() < opts_.batch / 2 && cursor_due(cursor_) < now + opts_.lookahead / 2))
      load(lock);
    std::vector<storage::timer_key> due;
    while (!next_.empty() && due.size() < opts_.per_tick && next_.begin()->second.due <= now) {
      due.push_back(std::move(next_.begin()->second));
      next_.erase(next_.begin());
    }
    bool more = !next_.empty() && next_.begin()->second.due <= now;
    if (!due.empty()) {
      lock.unlock();
      for (auto& t : due) {
        auto env = make_envelope();
        env->msg.kind = message_kind::fire;
        // Unique per profile: ids are deduplicated per source across profiles.
        env->msg.id = "schedule:" + t.schedule_id + ":" + std::to_string(t.due.time_since_epoch().count()) + ":" +
                      t.profile_id;
        env->msg.source = "schedule";
        env->msg.schedule_id = std::move(t.schedule_id);
        env->msg.due = t.due;
        ctx_.dir->dispatch(t.profile_id, std::move(env));
      }
      fired_.fetch_add(due.size(), std::memory_order_relaxed);
      lock.lock();
    }
    if (stopping_)
      break;
    if (more) {
      cv_.wait_for(lock, opts_.tick);
      continue;
    }
    auto wake = std::chrono::system_clock::now() + opts_.idle_wake;
    if (!next_.empty())
      wake = std::min<std::chrono::system_clock::time_point>(wake, next_.begin()->second.due);
    cv_.wait_until(lock, wake);
  }
}

}  // namespace nudge::actors
