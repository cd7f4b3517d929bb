// How the LMDB environment is opened. Filled once by app/ from the [storage] and
// [durability] config sections and validated there; env::open only clamps.
#pragma once

#include <cstdint>
#include <filesystem>

namespace nudge::storage {

struct env_options {
  /// Directory holding data.mdb and lock.mdb; created (mode 0700) if missing.
  std::filesystem::path dir;

  /// Map size at open. The map grows (doubling) on MDB_MAP_FULL; an existing file
  /// larger than this is mapped whole.
  std::uint64_t map_size_initial = 1ull << 30;

  /// Growth stops here: a commit that needs more returns errc::map_full.
  std::uint64_t map_size_max = 256ull << 30;

  /// "power" durability: fsync (mdb_env_sync force) after each commit. Otherwise a
  /// commit reaches the OS page cache only, which survives a killed process.
  bool sync_each_commit = false;
};

}  // namespace nudge::storage
