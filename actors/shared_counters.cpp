#include "actors/shared_counters.hpp"

#include "storage/env.hpp"
#include "storage/meta_table.hpp"

#include <algorithm>
#include <sstream>

namespace nudge::actors {

namespace {

std::string encode_entry(const counter_store::entry& e) {
  std::ostringstream o;
  o << e.shown << ' ' << e.accepted << ' ' << e.dismissed;
  for (auto ts : e.reservations) o << ' ' << ts.time_since_epoch().count();
  return o.str();
}

void decode_entry(const std::string& s, counter_store::entry& e) {
  std::istringstream in(s);
  in >> e.shown >> e.accepted >> e.dismissed;
  long long ms = 0;
  while (in >> ms) e.reservations.push_back(policies::timestamp{std::chrono::milliseconds(ms)});
}

}  // namespace

class counters_view : public policies::shared_counters {
public:
  counters_view(counter_store& store, const policies::policy& pol) : store_(store) {
    for (std::size_t i = 0; i <= pol.action_count(); ++i) {
      auto info = pol.describe(i);
      if (!info) {
        slots_.push_back({});
        continue;
      }
      std::string id(info->action.id);
      slots_.push_back({&store.slot(id), id, info->global_cap});
    }
  }

  bool try_reserve_global(std::size_t i, policies::timestamp now) override {
    auto* s = at(i);
    if (!s || !s->cap)
      return true;
    std::lock_guard<std::mutex> guard(s->e->mtx);
    prune(*s, now);
    if (s->e->reservations.size() >= s->cap->max)
      return false;
    s->e->reservations.push_back(now);
    store_.mark_dirty(s->id);
    return true;
  }

  bool global_available(std::size_t i, policies::timestamp now) override {
    auto* s = at(i);
    if (!s || !s->cap)
      return true;
    std::lock_guard<std::mutex> guard(s->e->mtx);
    prune(*s, now);
    return s->e->reservations.size() < s->cap->max;
  }

  std::pair<double, double> learned(std::size_t i) override {
    auto* s = at(i);
    if (!s)
      return {0, 0};
    std::lock_guard<std::mutex> guard(s->e->mtx);
    auto answered = s->e->accepted + s->e->dismissed;
    auto unanswered = s->e->shown > answered ? s->e->shown - answered : 0;
    return {static_cast<double>(s->e->accepted), static_cast<double>(s->e->dismissed + unanswered)};
  }

private:
  struct slot_ref {
    counter_store::entry* e = nullptr;
    std::string id;
    std::optional<policies::global_cap_view> cap;
  };
  slot_ref* at(std::size_t i) { return i < slots_.size() && slots_[i].e ? &slots_[i] : nullptr; }
  static void prune(slot_ref& s, policies::timestamp now) {
    while (!s.e->reservations.empty() && s.e->reservations.front() <= now - s.cap->per)
      s.e->reservations.pop_front();
  }

  counter_store& store_;
  std::vector<slot_ref> slots_;
};

counter_store::entry& counter_store::slot(const std::string& action) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto& e = entries_[action];
  if (!e)
    e = std::make_unique<entry>();
  return *e;
}

void counter_store::mark_dirty(const std::string& action) {
  std::lock_guard<std::mutex> guard(mtx_);
  if (std::find(dirty_ids_.begin(), dirty_ids_.end(), action) == dirty_ids_.end())
    dirty_ids_.push_back(action);
}

std::shared_ptr<policies::shared_counters> counter_store::view(const std::shared_ptr<const policies::policy>& pol) {
  {
    std::lock_guard<std::mutex> guard(mtx_);
    if (cached_for_ == pol.get() && cached_view_)
      return cached_view_;
  }
  auto v = std::make_shared<counters_view>(*this, *pol);
  std::lock_guard<std::mutex> guard(mtx_);
  cached_view_ = v;
  cached_for_ = pol.get();
  return v;
}

void counter_store::feedback(const std::string& action, const std::string& outcome, bool holdout) {
  auto& e = slot(action);
  {
    std::lock_guard<std::mutex> guard(e.mtx);
    if (outcome == "shown") ++e.shown;
    else if (outcome == "accepted") ++e.accepted;
    else if (outcome == "dismissed") ++e.dismissed;
  }
  mark_dirty(action);
  if (outcome == "accepted") {
    std::lock_guard<std::mutex> guard(mtx_);
    ++accepted_[holdout ? 1 : 0];
    holdout_dirty_ = true;
  }
}

void counter_store::decided(bool holdout) {
  std::lock_guard<std::mutex> guard(mtx_);
  ++decisions_[holdout ? 1 : 0];
  holdout_dirty_ = true;
}

void counter_store::take_dirty(std::vector<std::pair<std::string, std::string>>& out) {
  std::vector<std::string> ids;
  bool holdout = false;
  std::string holdout_value;
  {
    std::lock_guard<std::mutex> guard(mtx_);
    ids.swap(dirty_ids_);
    holdout = holdout_dirty_;
    holdout_dirty_ = false;
    if (holdout)
      holdout_value = std::to_string(decisions_[0]) + ' ' + std::to_string(accepted_[0]) + ' ' +
                      std::to_string(decisions_[1]) + ' ' + std::to_string(accepted_[1]);
  }
  for (const auto& id : ids) {
    auto& e = slot(id);
    std::lock_guard<std::mutex> guard(e.mtx);
    out.emplace_back("counter:" + id, encode_entry(e));
  }
  if (holdout)
    out.emplace_back("holdout_stats", std::move(holdout_value));
}

void counter_store::load(storage::env& env, const policies::policy& pol) {
  auto txn = env.read();
  for (std::size_t i = 0; i <= pol.action_count(); ++i) {
    auto info = pol.describe(i);
    if (!info)
      continue;
    std::string id(info->action.id);
    if (auto v = storage::meta_table::get(txn, "counter:" + id)) {
      auto& e = slot(id);
      std::lock_guard<std::mutex> guard(e.mtx);
      decode_entry(*v, e);
    }
  }
  if (auto v = storage::meta_table::get(txn, "holdout_stats")) {
    std::istringstream in(*v);
    std::lock_guard<std::mutex> guard(mtx_);
    in >> decisions_[0] >> accepted_[0] >> decisions_[1] >> accepted_[1];
  }
}

std::string counter_store::holdout_json() const {
  std::lock_guard<std::mutex> guard(mtx_);
  std::ostringstream o;
  auto group = [&](const char* name, int g) {
    o << '"' << name << "\":{\"decisions\":" << decisions_[g] << ",\"accepted\":" << accepted_[g]
      << ",\"acceptance\":" << (decisions_[g] ? static_cast<double>(accepted_[g]) / static_cast<double>(decisions_[g]) : 0.0)
      << '}';
  };
  o << '{';
  group("treatment", 0);
  o << ',';
  group("control", 1);
  o << '}';
  return o.str();
}

}  // namespace nudge::actors
