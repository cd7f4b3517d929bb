// CRC-32C (Castagnoli) of a byte range, for the commit log's records: the SSE 4.2
// instruction where the CPU has it (8 bytes per step), else Boost.CRC's table.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nudge::storage::detail {

std::uint32_t crc32c(const void* data, std::size_t size, std::uint32_t crc = 0) noexcept;
/// The same through Boost.CRC's table alone (the fallback; for tests).
std::uint32_t crc32c_table(const void* data, std::size_t size, std::uint32_t crc = 0) noexcept;

}  // namespace nudge::storage::detail
