// Errors of the storage layer, as a std::error_code category ("nudge.storage").
//
// Every storage function that can fail reports one of these; "not found" is never an
// error (it is an empty std::optional). The enumerators are stable: the actor layer
// may wire them into CAF with `CAF_ERROR_CODE_ENUM(nudge::storage::errc)` in its own
// type-id header (storage itself does not depend on CAF). Thread-safe: the category
// is a stateless singleton.
#pragma once

#include <cstdint>
#include <system_error>

namespace nudge::storage {

enum class errc : std::uint8_t {
  ok = 0,
  map_full,    ///< the LMDB map reached env_options::map_size_max; writes are refused
  io_error,    ///< the file system failed (open, write, sync, copy, disk full)
  corrupt,     ///< an undecodable value, a wrong schema version, or LMDB found corruption
  txn_failed,  ///< a transaction could not begin or commit, or `apply` threw
  disk_full,   ///< the disk could not allocate the pages a commit may need; nothing written
};

const std::error_category& storage_category() noexcept;

std::error_code make_error_code(errc e) noexcept;

}  // namespace nudge::storage

template <>
struct std::is_error_code_enum<nudge::storage::errc> : std::true_type {};
