#include "storage/detail/lmdb_meta.hpp"

#include <cstring>

#include "storage/detail/file_io.hpp"
#include "storage/errc.hpp"

namespace nudge::storage::detail {
namespace {

// Offsets in a meta page (see the header).
constexpr std::size_t pgno_at = 0;
constexpr std::size_t magic_at = 16;
constexpr std::size_t version_at = 20;
constexpr std::size_t psize_at = 40;   // mm_dbs[FREE_DBI].md_pad
constexpr std::size_t last_pg_at = 136;
constexpr std::size_t txnid_at = 144;
constexpr std::size_t meta_end = 152;
constexpr std::uint32_t mdb_magic = 0xBEEFC0DE;
constexpr std::uint32_t mdb_data_version = 1;

template <class T>
T load(std::string_view page, std::size_t at) noexcept {
  T v;
  std::memcpy(&v, page.data() + at, sizeof v);
  return v;
}

}  // namespace

std::optional<meta_info> parse_meta(std::string_view page) noexcept {
  if (page.size() < meta_end)
    return std::nullopt;
  if (load<std::uint32_t>(page, magic_at) != mdb_magic || load<std::uint32_t>(page, version_at) != mdb_data_version)
    return std::nullopt;
  meta_info m;
  m.page_size = load<std::uint32_t>(page, psize_at);
  m.last_pgno = load<std::uint64_t>(page, last_pg_at);
  m.txnid = load<std::uint64_t>(page, txnid_at);
  if (m.page_size < 256 || m.page_size > (1u << 16))
    return std::nullopt;
  return m;
}

std::error_code read_meta_pages(int fd, std::string& page0, std::string& page1) {
  std::string head(meta_end, '\0');
  if (!read_full(fd, head.data(), head.size(), 0))
    return errc::io_error;
  const auto m = parse_meta(head);
  if (!m)
    return errc::corrupt;
  page0.assign(m->page_size, '\0');
  page1.assign(m->page_size, '\0');
  if (!read_full(fd, page0.data(), page0.size(), 0) ||
      !read_full(fd, page1.data(), page1.size(), m->page_size))
    return errc::io_error;
  return {};
}

std::optional<meta_info> newest_meta(const std::string& page0, const std::string& page1) noexcept {
  const auto m0 = parse_meta(page0);
  const auto m1 = parse_meta(page1);
  return (m0 && (!m1 || m0->txnid > m1->txnid)) ? m0 : m1;
}

std::optional<std::string> meta_page_of(const std::string& page0, const std::string& page1, std::uint64_t txnid) {
  for (const auto* p : {&page0, &page1})
    if (auto m = parse_meta(*p); m && m->txnid == txnid)
      return *p;
  return std::nullopt;
}

std::error_code restore_meta(int fd, std::string_view page) {
  const auto m = parse_meta(page);
  if (!m || page.size() != m->page_size)
    return errc::corrupt;
  std::string copy(page);
  for (std::uint64_t slot = 0; slot < 2; ++slot) {
    std::memcpy(copy.data() + pgno_at, &slot, sizeof slot);
    if (!write_full(fd, copy.data(), copy.size(), slot * m->page_size))
      return errc::io_error;
  }
  return data_sync(fd) ? std::error_code{} : make_error_code(errc::io_error);
}

}  // namespace nudge::storage::detail
