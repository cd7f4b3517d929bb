// Which live journal entries belong to which profile: the index of the append-keyed
// journal (storage/journal_table.hpp), kept in memory by the writer.
//
// An entry is live from its commit until a snapshot of its profile commits (every
// snapshot covers all of its profile's entries committed before it: one owner's
// records commit in submit order), or its profile is merged away or erased. Live
// entries are what a profile's activation replays over its snapshot; the journal
// keeps everything from the oldest live entry on (low_water) and drops the rest in
// position order; a clean stop drops the dead entries above it too.
//
// The writer thread updates it after each successful commit, before that commit's
// on_done callbacks run; any thread reads it. Rebuilt at start from the journal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nudge::actors {

class journal_index {
public:
  /// `profile`'s entry at `position`, which is above all of its earlier ones.
  void appended(const std::string& profile, std::uint64_t position);
  /// `profile`'s entries at `positions` (ascending, all above its earlier ones): what
  /// appended() does for each, in one step (a start's index build).
  void appended(const std::string& profile, std::span<const std::uint64_t> positions);
  /// Every entry of `profile` indexed so far is covered (snapshot, merge, erasure).
  void covered(const std::string& profile);

  /// The positions of `profile`'s live entries, ascending.
  std::vector<std::uint64_t> positions(std::string_view profile) const;
  /// Every live position, ascending (a clean stop's drop of the dead entries).
  std::vector<std::uint64_t> all_positions() const;
  /// The lowest live position, or `next` when nothing is live.
  std::uint64_t low_water(std::uint64_t next) const;
  /// Up to `max` profiles whose oldest live entry is below `before`, oldest first,
  /// skipping those returned by an earlier call since position `asked_after` or
  /// later. Marks the returned ones as asked at `now`.
  std::vector<std::string> laggards(std::uint64_t before, std::uint64_t now, std::uint64_t asked_after,
                                    std::size_t max);

  std::size_t live_entries() const;
  std::size_t live_profiles() const;

private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  struct live {
    std::vector<std::uint64_t> positions;
    std::uint64_t asked_at = 0;  ///< when laggards() last returned it (0: never)
  };

  mutable std::mutex mutex_;
  std::unordered_map<std::string, live, string_hash, std::equal_to<>> live_;
  /// Oldest live position → its profile (the key of live_, whose nodes do not move).
  std::map<std::uint64_t, const std::string*> by_first_;
  std::size_t entries_ = 0;
};

}  // namespace nudge::actors
