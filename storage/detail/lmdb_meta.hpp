// LMDB 0.9's two meta pages (pages 0 and 1 of data.mdb), read and rewritten by the
// commit log's recovery (env.cpp): LMDB offers no call to open an older transaction
// than the newest meta page names, and after a power loss without syncs the newest may
// name pages that never reached the disk.
//
// The layout is LMDB 0.9's (lmdb.h 0.9.x, mdb.c: MDB_page's 16-byte header, then
// MDB_meta: magic, version, address, map size, two MDB_db of 48 bytes, last page,
// transaction id), on a 64-bit build. parse_meta() refuses a page whose magic or data
// version differ, and env checks the parse against mdb_env_info() at every open before
// relying on it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace nudge::storage::detail {

struct meta_info {
  std::uint64_t txnid = 0;
  std::uint64_t last_pgno = 0;
  std::uint32_t page_size = 0;
};

/// The fields of a meta page image; nullopt unless it is one of LMDB 0.9's (magic, data
/// version 1, a page size of at least 256 bytes).
std::optional<meta_info> parse_meta(std::string_view page) noexcept;

/// Reads both meta pages of the data file `fd` (page size taken from page 0);
/// io_error when unreadable, corrupt when page 0 is no meta page.
std::error_code read_meta_pages(int fd, std::string& page0, std::string& page1);

/// The fields of the newer of the two meta pages (the one LMDB opens); nullopt when
/// neither parses.
std::optional<meta_info> newest_meta(const std::string& page0, const std::string& page1) noexcept;

/// The meta page of `txnid` among the two: page0 or page1, nullopt when neither has it.
std::optional<std::string> meta_page_of(const std::string& page0, const std::string& page1, std::uint64_t txnid);

/// Writes the meta page image `page` into both slots of the data file `fd` (each with
/// its own page number) and syncs the file: LMDB then opens the transaction it names.
std::error_code restore_meta(int fd, std::string_view page);

}  // namespace nudge::storage::detail
