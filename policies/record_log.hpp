// A profile's log of records (history events, decisions), oldest first: a vector that
// drops from its front without shifting. A full log drops its oldest record at every
// append; with std::vector that moved every kept record down one place (500 events and
// 200 decisions per message at the defaults, ~8,000 instructions: docs/BENCHMARKS.md,
// "Windows by binary search"). Here a drop empties the front slot and steps past it;
// an append into full storage moves the kept records down over the dead front when it
// holds slack() slots (an eighth of the log, 1 to compact_at), and otherwise grows the
// storage to make room for that many. So a full log carries up to slack() spare slots
// and moves its records once per slack() appends.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <initializer_list>
#include <utility>
#include <vector>

namespace nudge::policies {

template <class T>
class record_log {
  using storage = std::vector<T>;

public:
  using value_type = T;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using reference = T&;
  using const_reference = const T&;
  using iterator = typename storage::iterator;
  using const_iterator = typename storage::const_iterator;
  using reverse_iterator = std::reverse_iterator<iterator>;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  /// The most spare slots a full log carries (see slack()).
  static constexpr std::size_t compact_at = 32;

  record_log() = default;
  record_log(std::initializer_list<T> items) : items_(items) {}
  /// Copies hold the live records only.
  record_log(const record_log& other) : items_(other.begin(), other.end()) {}
  record_log(record_log&& other) noexcept : items_(std::move(other.items_)), head_(std::exchange(other.head_, 0)) {}
  record_log& operator=(const record_log& other) {
    if (this != &other) {
      items_.assign(other.begin(), other.end());
      head_ = 0;
    }
    return *this;
  }
  record_log& operator=(record_log&& other) noexcept {
    items_ = std::move(other.items_);
    head_ = std::exchange(other.head_, 0);
    return *this;
  }
  record_log& operator=(std::vector<T> items) noexcept {
    items_ = std::move(items);
    head_ = 0;
    return *this;
  }
  record_log& operator=(std::initializer_list<T> items) {
    items_.assign(items);
    head_ = 0;
    return *this;
  }

  iterator begin() noexcept { return items_.begin() + static_cast<difference_type>(head_); }
  iterator end() noexcept { return items_.end(); }
  const_iterator begin() const noexcept { return items_.begin() + static_cast<difference_type>(head_); }
  const_iterator end() const noexcept { return items_.end(); }
  const_iterator cbegin() const noexcept { return begin(); }
  const_iterator cend() const noexcept { return end(); }
  reverse_iterator rbegin() noexcept { return reverse_iterator(end()); }
  reverse_iterator rend() noexcept { return reverse_iterator(begin()); }
  const_reverse_iterator rbegin() const noexcept { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const noexcept { return const_reverse_iterator(begin()); }

  std::size_t size() const noexcept { return items_.size() - head_; }
  bool empty() const noexcept { return items_.size() == head_; }
  /// How many records fit, the dead front reclaimed.
  std::size_t capacity() const noexcept { return items_.capacity(); }
  T* data() noexcept { return items_.data() + head_; }
  const T* data() const noexcept { return items_.data() + head_; }
  T& operator[](std::size_t i) noexcept { return items_[head_ + i]; }
  const T& operator[](std::size_t i) const noexcept { return items_[head_ + i]; }
  T& front() noexcept { return items_[head_]; }
  const T& front() const noexcept { return items_[head_]; }
  T& back() noexcept { return items_.back(); }
  const T& back() const noexcept { return items_.back(); }

  void reserve(std::size_t n) {
    if (n <= items_.capacity())
      return;
    compact();
    items_.reserve(n);
  }
  void resize(std::size_t n) {
    compact();
    items_.resize(n);
  }
  void shrink_to_fit() {
    compact();
    items_.shrink_to_fit();
  }
  void clear() noexcept {
    items_.clear();
    head_ = 0;
  }

  void push_back(const T& item) {
    make_space();
    items_.push_back(item);
  }
  void push_back(T&& item) {
    make_space();
    items_.push_back(std::move(item));
  }
  iterator insert(const_iterator pos, const T& item) {
    const auto at = pos - cbegin();
    make_space();
    return items_.insert(cbegin() + at, item);
  }

  template <class It>
  iterator insert(const_iterator pos, It first, It last) {
    const auto at = pos - cbegin();
    compact();
    return items_.insert(items_.cbegin() + at, first, last);
  }

  iterator erase(const_iterator pos) { return erase(pos, pos + 1); }
  /// Removes [first, last): from the front without moving the rest (see the top).
  iterator erase(const_iterator first, const_iterator last) {
    if (first != cbegin() || first == last)
      return items_.erase(first, last);
    drop_front(static_cast<std::size_t>(last - first));
    return begin();
  }

  /// Drops the `n` oldest records (at most size()).
  void drop_front(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      items_[head_ + i] = T{};  // frees what the record holds now
    head_ += n;
    if (head_ == items_.size())
      clear();
  }

  friend bool operator==(const record_log& a, const record_log& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
  }

private:
  /// Moves the kept records to the front of the storage.
  void compact() {
    if (head_ == 0)
      return;
    items_.erase(items_.begin(), items_.begin() + static_cast<difference_type>(head_));
    head_ = 0;
  }
  /// The dead front slots an append into full storage reclaims: an eighth of the
  /// log, at least 1 and at most compact_at.
  std::size_t slack() const noexcept { return std::clamp<std::size_t>(size() / 8, 1, compact_at); }
  /// Room for one more record in full storage: the dead front if it holds slack()
  /// slots, else room for that many (see the top).
  void make_space() {
    if (head_ == 0 || items_.size() < items_.capacity())
      return;
    if (head_ >= slack())
      compact();
    else
      items_.reserve(items_.size() - head_ + slack());
  }

  std::vector<T> items_;
  std::size_t head_ = 0;  ///< dead slots at the front of items_
};

}  // namespace nudge::policies
