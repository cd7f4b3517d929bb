#include "policies/detail/evaluator.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace nudge::policies::detail {
namespace {

bool equal(const scalar_view& a, const scalar_view& b) noexcept { return a == b; }

bool ordered(const scalar_view& a, op kind, const scalar_view& b) noexcept {
  auto decide = [kind](auto x, auto y) {
    switch (kind) {
      case op::gt:
        return x > y;
      case op::gte:
        return x >= y;
      case op::lt:
        return x < y;
      case op::lte:
        return x <= y;
      default:
        return false;
    }
  };
  if (const double* x = std::get_if<double>(&a))
    if (const double* y = std::get_if<double>(&b))
      return decide(*x, *y);
  if (const std::string_view* x = std::get_if<std::string_view>(&a))
    if (const std::string_view* y = std::get_if<std::string_view>(&b))
      return decide(*x, *y);
  return false;
}

std::optional<scalar_view> view_of(const scalar* s) noexcept {
  if (!s)
    return std::nullopt;
  return policies::view_of(*s);
}

constexpr std::uint64_t byte_ones = 0x0101010101010101ull;

std::uint64_t load8(const std::uint8_t* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
  if constexpr (std::endian::native == std::endian::big)
    w = __builtin_bswap64(w);
  return w;
}

/// How many of the `n` masks from `p` have bit `slot`: eight masks at a time, their
/// bits gathered into one byte's sum by a multiplication.
std::size_t count_bit(const std::uint8_t* p, std::size_t n, unsigned slot) noexcept {
  std::size_t total = 0, i = 0;
  for (; i + 8 <= n; i += 8)
    total += static_cast<std::size_t>((((load8(p + i) >> slot) & byte_ones) * byte_ones) >> 56);
  for (; i < n; ++i)
    total += (p[i] >> slot) & 1u;
  return total;
}

/// The index of the last of the `n` masks from `p` with bit `slot`, if any.
std::optional<std::size_t> newest_with_bit(const std::uint8_t* p, std::size_t n, unsigned slot) noexcept {
  std::size_t i = n;
  for (; i >= 8; i -= 8)
    if (const std::uint64_t hits = (load8(p + i - 8) >> slot) & byte_ones)
      return i - 8 + static_cast<std::size_t>(std::bit_width(hits) - 1) / 8;
  while (i-- > 0)
    if ((p[i] >> slot) & 1u)
      return i;
  return std::nullopt;
}

template <class Range, class Value>
bool contains(const Range& range, const Value& value) noexcept {
  return std::find(range.begin(), range.end(), value) != range.end();
}

}  // namespace

bool compare(const std::optional<scalar_view>& actual, const comparison& c) noexcept {
  if (c.kind == op::exists)
    return actual.has_value() == std::get<bool>(c.value);
  if (!actual)
    return false;
  switch (c.kind) {
    case op::eq:
      return equal(*actual, policies::view_of(c.value));
    case op::ne:
      return actual->index() == c.value.index() && !equal(*actual, policies::view_of(c.value));
    case op::in:
      return std::any_of(c.list.begin(), c.list.end(),
                         [&actual](const scalar& v) { return equal(*actual, policies::view_of(v)); });
    default:
      return ordered(*actual, c.kind, policies::view_of(c.value));
  }
}

bool compare(double actual, const comparison& c) noexcept { return compare(scalar_view{actual}, c); }

evaluator::evaluator(const program& prog, const decide_request& req, evaluator_scratch& scratch)
    : prog_(prog), req_(req), profile_(*req.profile), segment_cache_(scratch.segments), model_cache_(scratch.models) {
  segment_cache_.assign(prog.segments.size(), -1);
  model_cache_.assign(prog.models.size(), std::numeric_limits<double>::quiet_NaN());
}

bool evaluator::matches(const event_record& e, const std::vector<where_entry>& where) const {
  for (const auto& w : where) {
    const std::optional<scalar_view> actual = e.find(w.path);
    switch (w.from) {
      case where_entry::source::literal:
        for (const auto& c : w.compare)
          if (!compare(actual, c))
            return false;
        break;
      case where_entry::source::current: {
        const auto other = req_.current ? req_.current->find(w.ref) : std::nullopt;
        if (!actual || !other || !equal(*actual, *other))
          return false;
        break;
      }
      case where_entry::source::param: {
        const auto other = view_of(action_ ? action_->find_param(w.ref) : nullptr);
        if (!actual || !other || !equal(*actual, *other))
          return false;
        break;
      }
    }
  }
  return true;
}

void evaluator::sync_memo() {
  if (memo_synced_)
    return;
  memo_synced_ = true;
  history_memo& m = profile_.memo;
  const auto& history = profile_.history;
  const std::uint64_t base = profile_.history_base;
  const std::uint64_t end = base + history.size();
  if (m.program != prog_.serial || m.first > base || m.first + m.masks.size() > end) {
    m.clear();
    m.program = prog_.serial;
    m.first = base;
  }
  if (m.first < base) {
    const auto gone = std::min<std::uint64_t>(base - m.first, m.masks.size());
    m.masks.erase(m.masks.begin(), m.masks.begin() + static_cast<std::ptrdiff_t>(gone));
    m.first = base;
  }
  if (m.masks.capacity() < history.size())
    m.masks.reserve(history.capacity());
  for (std::size_t i = m.masks.size(); i < history.size(); ++i) {
    const event_record& e = history[i];
    std::uint8_t mask = 0;
    for (std::size_t slot = 0; slot < prog_.memo.size(); ++slot) {
      const memo_matcher& x = prog_.memo[slot];
      if (x.key.names(e, x.name) && (!x.where_of || matches(e, prog_.conditions[*x.where_of].where)))
        mask = static_cast<std::uint8_t>(mask | (1u << slot));
    }
    m.masks.push_back(mask);
  }
}

std::size_t evaluator::window_start(const condition& c) {
  const auto& history = profile_.history;
  // History is in time order (actors/profile_logic keeps it so): each edge is found
  // by binary search.
  std::size_t lo = 0;
  if (c.since) {
    // The newest event named `since`; the window holds the events after its time.
    std::optional<std::size_t> at;
    if (c.since_slot >= 0) {
      sync_memo();
      at = newest_with_bit(profile_.memo.masks.data(), history.size(), static_cast<unsigned>(c.since_slot));
    } else {
      for (std::size_t i = history.size(); i-- > 0;)
        if (c.since_key.names(history[i], *c.since)) {
          at = i;
          break;
        }
    }
    // "After" is the history's order: by time, and in arrival order within one
    // timestamp (an event applied later with the same ts goes after), so an event that
    // shares its millisecond (or a webhook's second) with the `since` event but came
    // after it counts.
    if (at)
      lo = *at + 1;
  }
  if (c.within) {
    const timestamp lower = req_.now - *c.within;
    const auto from = history.begin() + static_cast<std::ptrdiff_t>(lo);
    lo += static_cast<std::size_t>(
        std::partition_point(from, history.end(), [lower](const event_record& e) { return e.ts() < lower; }) - from);
  }
  return lo;
}

double evaluator::measure(const condition& c) {
  const auto& history = profile_.history;
  const std::size_t lo = window_start(c);
  if (c.memo_slot >= 0) {
    // Which events match is remembered per event: only the masks are read.
    sync_memo();
    return static_cast<double>(
        count_bit(profile_.memo.masks.data() + lo, history.size() - lo, static_cast<unsigned>(c.memo_slot)));
  }
  double total = 0;
  const auto& key = c.key;
  // The texts of the events that may match are read (on the heap, seldom in cache):
  // each is asked for `ahead` records before it is reached.
  const bool reads = !key.exact || c.sum || !c.where.empty();
  constexpr std::size_t ahead = 8;
  if (reads)
    for (std::size_t i = history.size(); i-- > lo && history.size() - i <= ahead;)
      if (key.may_name(history[i].name_tag()))
        history[i].prefetch();
  for (std::size_t i = history.size(); i-- > lo;) {
    const event_record& e = history[i];
    if (reads && i >= lo + ahead && key.may_name(history[i - ahead].name_tag()))
      history[i - ahead].prefetch();
    if (!key.names(e, c.name) || !matches(e, c.where))
      continue;
    if (c.sum) {
      if (const auto v = e.find(*c.sum))
        if (const double* d = std::get_if<double>(&*v))
          total += *d;
    } else {
      total += 1;
    }
  }
  return total;
}

bool evaluator::eval_segment(std::size_t index) {
  const segment& s = prog_.segments[index];
  if (s.uses_param)
    return eval(s.root);
  std::int8_t& cached = segment_cache_[index];
  if (cached < 0)
    cached = eval(s.root) ? 1 : 0;
  return cached == 1;
}

double evaluator::score(std::size_t index) {
  double& cached = model_cache_[index];
  if (!std::isnan(cached))
    return cached;
  const model& m = prog_.models[index];
  const action* saved = action_;
  action_ = nullptr;  // models are shared by all actions: no `$param`
  double z = m.bias;
  for (const auto& f : m.features) {
    const condition& x = prog_.conditions[f.x];
    const double value = x.kind == cond_kind::event ? measure(x) : (eval(f.x) ? 1.0 : 0.0);
    z += f.weight * value;
  }
  action_ = saved;
  cached = 1.0 / (1.0 + std::exp(-z));
  return cached;
}

bool evaluator::eval(std::uint32_t index) {
  const condition& c = prog_.conditions[index];
  switch (c.kind) {
    case cond_kind::all:
      for (auto child : c.children)
        if (!eval(child))
          return false;
      return true;
    case cond_kind::any:
      for (auto child : c.children)
        if (eval(child))
          return true;
      return false;
    case cond_kind::negate:
      return !eval(c.children.front());
    case cond_kind::event: {
      const double m = measure(c);
      for (const auto& cmp : c.compare)
        if (!compare(m, cmp))
          return false;
      return true;
    }
    case cond_kind::current:
      if (!req_.current)
        return false;
      if (!c.names.empty() && !contains(c.names, req_.current->name()))
        return false;
      return matches(*req_.current, c.where);
    case cond_kind::trait: {
      const trait* t = profile_.find_trait(c.name);
      const auto actual = view_of(t ? &t->value : nullptr);
      for (const auto& cmp : c.compare)
        if (!compare(actual, cmp))
          return false;
      return true;
    }
    case cond_kind::stat: {
      const auto& stats = profile_.stats;
      double actual = 0;
      switch (c.stat) {
        case stat_kind::event_count:
          actual = static_cast<double>(stats.events);
          break;
        case stat_kind::first_seen_ago:
          if (stats.events == 0)
            return false;
          actual = static_cast<double>((req_.now - stats.first_seen).count());
          break;
        case stat_kind::last_seen_ago:
          if (stats.events == 0)
            return false;
          actual = static_cast<double>((req_.now - stats.last_seen).count());
          break;
      }
      for (const auto& cmp : c.compare)
        if (!compare(actual, cmp))
          return false;
      return true;
    }
    case cond_kind::segment:
      return eval_segment(c.ref);
    case cond_kind::score: {
      const double s = score(c.ref);
      for (const auto& cmp : c.compare)
        if (!compare(s, cmp))
          return false;
      return true;
    }
    case cond_kind::channel:
      return contains(c.names, req_.channel);
    case cond_kind::placement:
      return !req_.placement.empty() && contains(c.names, req_.placement);
    case cond_kind::identity:
      return profile_.has_identity_type(c.name);
    case cond_kind::consent:
      return req_.consent && c.ref < req_.consent->size() && (*req_.consent)[c.ref];
  }
  return false;
}

const std::string& evaluator::blame(std::uint32_t index, bool value) {
  const condition& c = prog_.conditions[index];
  switch (c.kind) {
    case cond_kind::all:
      if (!value)
        for (auto child : c.children)
          if (!eval(child))
            return blame(child, false);
      break;
    case cond_kind::any:
      if (value)
        for (auto child : c.children)
          if (eval(child))
            return blame(child, true);
      break;
    case cond_kind::segment:
      return blame(prog_.segments[c.ref].root, value);
    default:
      break;
  }
  return c.pointer;
}

}  // namespace nudge::policies::detail
