// Whole reads, writes and syncs of a file descriptor, retried on EINTR and short
// counts: the commit log's segments and checkpoint, and LMDB's meta pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace nudge::storage::detail {

/// pread / pwrite of exactly `n` bytes at `at`; false on an error or end of file.
bool read_full(int fd, char* out, std::size_t n, std::uint64_t at);
bool write_full(int fd, const char* in, std::size_t n, std::uint64_t at);

/// fdatasync; false on failure.
bool data_sync(int fd);

/// fsync of a directory (after a file in it was created or renamed); false on failure.
bool sync_dir(const std::filesystem::path& dir);

}  // namespace nudge::storage::detail
