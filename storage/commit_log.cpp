#include "storage/commit_log.hpp"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "storage/detail/crc32c.hpp"
#include "storage/detail/file_io.hpp"
#include "storage/errc.hpp"

namespace nudge::storage {
namespace {

namespace fs = std::filesystem;
using detail::data_sync;
using detail::read_full;
using detail::sync_dir;
using detail::write_full;

constexpr std::size_t header_page = 4096;
constexpr char segment_magic[8] = {'N', 'U', 'D', 'G', 'E', 'L', 'O', 'G'};
constexpr char checkpoint_magic[8] = {'N', 'U', 'D', 'G', 'E', 'C', 'K', 'P'};
constexpr std::uint32_t format_version = 1;
constexpr std::uint32_t record_magic = 0x4e4c5231;  // "NLR1"
constexpr std::size_t record_header = 24;
constexpr std::size_t op_header = 8;
constexpr std::size_t spares_max = 2;  // beside the current segment and one a checkpoint still needs

template <class T>
void put_raw(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof v);
  out.append(b, sizeof b);
}
template <class T>
T get_raw(const char* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::uint32_t record_crc(std::uint64_t seq, std::uint32_t len, std::string_view payload) noexcept {
  char head[12];
  std::memcpy(head, &seq, 8);
  std::memcpy(head + 8, &len, 4);
  return detail::crc32c(payload.data(), payload.size(), detail::crc32c(head, sizeof head));
}

// The header page of a segment: nullopt when it is none (a spare never used).
struct segment_header {
  std::uint64_t seq = 0;
  commit_log::table_map tables;
};
std::optional<segment_header> parse_header(const std::string& page) {
  if (page.size() != header_page || std::memcmp(page.data(), segment_magic, 8) != 0 ||
      get_raw<std::uint32_t>(page.data() + 8) != format_version)
    return std::nullopt;
  if (detail::crc32c(page.data(), header_page - 4) != get_raw<std::uint32_t>(page.data() + header_page - 4))
    return std::nullopt;
  segment_header h;
  const auto count = get_raw<std::uint32_t>(page.data() + 12);
  h.seq = get_raw<std::uint64_t>(page.data() + 16);
  std::size_t at = 24;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (at + 6 > header_page - 4)
      return std::nullopt;
    const auto dbi = get_raw<std::uint32_t>(page.data() + at);
    const auto len = get_raw<std::uint16_t>(page.data() + at + 4);
    at += 6;
    if (at + len > header_page - 4)
      return std::nullopt;
    h.tables.emplace_back(dbi, std::string(page.data() + at, len));
    at += len;
  }
  return h;
}

}  // namespace

commit_log::~commit_log() {
  auto close_all = [](std::vector<std::unique_ptr<segment>>& v) {
    for (auto& s : v)
      if (s->fd >= 0)
        ::close(s->fd);
  };
  close_all(sealed_);
  close_all(spares_);
  if (current_ && current_->fd >= 0)
    ::close(current_->fd);
}

std::unique_ptr<commit_log> commit_log::open(const fs::path& dir, std::uint64_t segment_bytes, std::error_code& ec) {
  ec.clear();
  std::error_code fec;
  fs::create_directories(dir, fec);
  if (!fs::is_directory(dir, fec)) {
    ec = errc::io_error;
    return nullptr;
  }
  std::unique_ptr<commit_log> log(new commit_log(dir, std::max<std::uint64_t>(segment_bytes, 1u << 20)));
  for (const auto& entry : fs::directory_iterator(dir, fec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind("seg-", 0) != 0 || name.size() <= 8 || name.substr(name.size() - 4) != ".log")
      continue;
    std::uint64_t number = 0;
    try {
      number = std::stoull(name.substr(4, name.size() - 8));
    } catch (...) {
      continue;
    }
    log->next_file_ = std::max(log->next_file_, number + 1);
    auto seg = std::make_unique<segment>();
    seg->path = entry.path();
    seg->fd = ::open(seg->path.c_str(), O_RDWR | O_CLOEXEC);
    if (seg->fd < 0) {
      ec = errc::io_error;
      return nullptr;
    }
    std::string page(header_page, '\0');
    auto h = read_full(seg->fd, page.data(), page.size(), 0) ? parse_header(page) : std::nullopt;
    if (h) {
      seg->seq = h->seq;
      seg->tables = std::move(h->tables);
      log->max_seq_ = std::max(log->max_seq_, seg->seq);
      log->sealed_.push_back(std::move(seg));
    } else {
      log->spares_.push_back(std::move(seg));
    }
  }
  if (fec) {
    ec = errc::io_error;
    return nullptr;
  }
  std::sort(log->sealed_.begin(), log->sealed_.end(), [](const auto& a, const auto& b) { return a->seq < b->seq; });
  return log;
}

void commit_log::add_put(std::string& out, MDB_dbi dbi, std::string_view key, std::string_view value) {
  char h[op_header];
  h[0] = static_cast<char>(op_kind::put);
  h[1] = static_cast<char>(dbi);
  const auto klen = static_cast<std::uint16_t>(key.size());
  const auto vlen = static_cast<std::uint32_t>(value.size());
  std::memcpy(h + 2, &klen, 2);
  std::memcpy(h + 4, &vlen, 4);
  out.append(h, sizeof h);
  out.append(key);
  out.append(value);
}

void commit_log::add_del(std::string& out, MDB_dbi dbi, std::string_view key) {
  char h[op_header] = {};
  h[0] = static_cast<char>(op_kind::del);
  h[1] = static_cast<char>(dbi);
  const auto klen = static_cast<std::uint16_t>(key.size());
  std::memcpy(h + 2, &klen, 2);
  out.append(h, sizeof h);
  out.append(key);
}

std::error_code commit_log::for_each_op(
    std::string_view payload,
    const std::function<bool(op_kind, MDB_dbi, std::string_view, std::string_view)>& op) {
  std::size_t at = 0;
  while (at < payload.size()) {
    if (payload.size() - at < op_header)
      return errc::corrupt;
    const char* h = payload.data() + at;
    const auto kind = static_cast<op_kind>(h[0]);
    const auto dbi = static_cast<MDB_dbi>(static_cast<unsigned char>(h[1]));
    const auto klen = get_raw<std::uint16_t>(h + 2);
    const auto vlen = get_raw<std::uint32_t>(h + 4);
    at += op_header;
    if ((kind != op_kind::put && kind != op_kind::del) || (kind == op_kind::del && vlen != 0) ||
        payload.size() - at < static_cast<std::size_t>(klen) + vlen)
      return errc::corrupt;
    if (!op(kind, dbi, payload.substr(at, klen), payload.substr(at + klen, vlen)))
      return errc::corrupt;
    at += static_cast<std::size_t>(klen) + vlen;
  }
  return {};
}

std::error_code commit_log::create_segment(std::unique_ptr<segment>& out) {
  std::uint64_t number;
  {
    std::lock_guard lock(mtx_);
    number = next_file_++;
  }
  auto seg = std::make_unique<segment>();
  seg->path = dir_ / ("seg-" + std::to_string(number) + ".log");
  seg->fd = ::open(seg->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (seg->fd < 0)
    return errc::io_error;
  // Written with zeros, not only allocated: an append into allocated but unwritten
  // blocks changes the file's extent map, and its fdatasync then waits for a journal
  // commit of the file system (with the data file's pages in ordered mode).
  bool ok = true;
  const std::string zeros(1u << 20, '\0');
  for (std::uint64_t at = 0; ok && at < segment_bytes_; at += zeros.size())
    ok = write_full(seg->fd, zeros.data(), static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), segment_bytes_ - at)), at);
  if (!ok || !data_sync(seg->fd) || !sync_dir(dir_)) {
    ::close(seg->fd);
    std::error_code ignored;
    fs::remove(seg->path, ignored);
    return errc::io_error;
  }
  out = std::move(seg);
  return {};
}

std::error_code commit_log::prepare_spare() {
  {
    std::lock_guard lock(mtx_);
    if (!spares_.empty())
      return {};
  }
  std::unique_ptr<segment> seg;
  if (auto ec = create_segment(seg))
    return ec;
  std::lock_guard lock(mtx_);
  spares_.push_back(std::move(seg));
  return {};
}

std::uint64_t commit_log::rotate(const table_map& tables, std::error_code& ec) {
  ec.clear();
  // A void record left on the segment being sealed is made void on disk first.
  if (void_at_)
    if ((ec = sync()))
      return 0;
  std::unique_ptr<segment> next;
  {
    std::lock_guard lock(mtx_);
    if (!spares_.empty()) {
      next = std::move(spares_.back());
      spares_.pop_back();
    }
  }
  if (!next)
    if ((ec = create_segment(next)))
      return 0;
  std::string page(header_page, '\0');
  std::memcpy(page.data(), segment_magic, 8);
  std::memcpy(page.data() + 8, &format_version, 4);
  const auto count = static_cast<std::uint32_t>(tables.size());
  std::memcpy(page.data() + 12, &count, 4);
  std::size_t at = 24;
  for (const auto& [dbi, name] : tables) {
    if (at + 6 + name.size() > header_page - 4) {
      ec = errc::corrupt;  // more table names than a header holds: a build error
      std::lock_guard lock(mtx_);
      spares_.push_back(std::move(next));
      return 0;
    }
    const auto d = static_cast<std::uint32_t>(dbi);
    const auto len = static_cast<std::uint16_t>(name.size());
    std::memcpy(page.data() + at, &d, 4);
    std::memcpy(page.data() + at + 4, &len, 2);
    std::memcpy(page.data() + at + 6, name.data(), name.size());
    at += 6 + name.size();
  }
  std::uint64_t seq;
  {
    std::lock_guard lock(mtx_);
    seq = max_seq_ + 1;
  }
  std::memcpy(page.data() + 16, &seq, 8);
  const std::uint32_t crc = detail::crc32c(page.data(), header_page - 4);
  std::memcpy(page.data() + header_page - 4, &crc, 4);
  // The header reaches the disk with the segment's first record (one fdatasync).
  if (!write_full(next->fd, page.data(), page.size(), 0)) {
    ec = errc::io_error;
    std::lock_guard lock(mtx_);
    spares_.push_back(std::move(next));
    return 0;
  }
  next->seq = seq;
  next->tables = tables;
  std::lock_guard lock(mtx_);
  max_seq_ = seq;
  if (current_)
    sealed_.push_back(std::move(current_));
  current_ = std::move(next);
  offset_ = header_page;
  appended_since_rotate_ = 0;
  return seq;
}

std::error_code commit_log::append_sync(std::string_view payload) {
  if (!current_)
    return errc::io_error;
  if (offset_ > header_page && offset_ + record_header + payload.size() > segment_bytes_) {
    std::error_code ec;
    const table_map tables = current_->tables;
    if (rotate(tables, ec) == 0)
      return ec;
  }
  last_at_ = offset_;  // what rollback() voids, also when this append fails
  char head[record_header] = {};
  const auto len = static_cast<std::uint32_t>(payload.size());
  const std::uint64_t seq = current_->seq;
  const std::uint32_t crc = record_crc(seq, len, payload);
  std::memcpy(head, &record_magic, 4);
  std::memcpy(head + 4, &len, 4);
  std::memcpy(head + 8, &seq, 8);
  std::memcpy(head + 16, &crc, 4);
  iovec iov[2] = {{head, record_header}, {const_cast<char*>(payload.data()), payload.size()}};
  std::size_t left = record_header + payload.size();
  std::uint64_t at = offset_;
  int iov_at = 0;
  while (left > 0) {
    ssize_t r = ::pwritev(current_->fd, iov + iov_at, 2 - iov_at, static_cast<off_t>(at));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return errc::io_error;
    auto n = static_cast<std::size_t>(r);
    left -= n;
    at += n;
    while (iov_at < 2 && n >= iov[iov_at].iov_len) {
      n -= iov[iov_at].iov_len;
      ++iov_at;
    }
    if (iov_at < 2) {
      iov[iov_at].iov_base = static_cast<char*>(iov[iov_at].iov_base) + n;
      iov[iov_at].iov_len -= n;
    }
  }
  if (!data_sync(current_->fd))
    return errc::io_error;
  if (void_at_ == offset_)
    void_at_.reset();  // the void record's place now holds a valid one, synced
  offset_ = at;
  appended_since_rotate_ += record_header + payload.size();
  return {};
}

void commit_log::rollback() noexcept {
  void_at_ = last_at_;
  offset_ = last_at_;
}

std::error_code commit_log::sync() {
  if (!current_)
    return {};
  if (void_at_) {
    const char zero[record_header] = {};
    if (!write_full(current_->fd, zero, sizeof zero, *void_at_))
      return errc::io_error;
  }
  if (!data_sync(current_->fd))
    return errc::io_error;
  void_at_.reset();
  return {};
}

void commit_log::recycle_below(std::uint64_t seq) {
  std::vector<std::unique_ptr<segment>> surplus;
  {
    std::lock_guard lock(mtx_);
    auto it = sealed_.begin();
    while (it != sealed_.end()) {
      if ((*it)->seq < seq) {
        (*it)->seq = 0;
        (*it)->tables.clear();
        if (spares_.size() < spares_max)
          spares_.push_back(std::move(*it));
        else
          surplus.push_back(std::move(*it));
        it = sealed_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& s : surplus) {
    ::close(s->fd);
    std::error_code ignored;
    fs::remove(s->path, ignored);
  }
}

std::error_code commit_log::replay(
    std::uint64_t from_seq, const std::function<std::error_code(std::string_view, const table_map&)>& apply) const {
  std::vector<const segment*> order;
  {
    std::lock_guard lock(mtx_);
    for (const auto& s : sealed_)
      if (s->seq >= from_seq)
        order.push_back(s.get());
    if (current_ && current_->seq >= from_seq)
      order.push_back(current_.get());
  }
  std::sort(order.begin(), order.end(), [](const segment* a, const segment* b) { return a->seq < b->seq; });
  std::string payload;
  for (const segment* s : order) {
    const off_t size = ::lseek(s->fd, 0, SEEK_END);
    if (size < 0)
      return errc::io_error;
    const auto end = static_cast<std::uint64_t>(size);
    std::uint64_t at = header_page;
    char head[record_header];
    while (at + record_header <= end && read_full(s->fd, head, sizeof head, at)) {
      const auto len = get_raw<std::uint32_t>(head + 4);
      if (get_raw<std::uint32_t>(head) != record_magic || get_raw<std::uint64_t>(head + 8) != s->seq ||
          len > end - at - record_header)
        break;
      payload.resize(len);
      if (!read_full(s->fd, payload.data(), len, at + record_header))
        return errc::io_error;
      if (record_crc(s->seq, len, payload) != get_raw<std::uint32_t>(head + 16))
        break;  // torn: nothing after it was acknowledged
      if (auto ec = apply(payload, s->tables))
        return ec;
      at += record_header + len;
    }
  }
  return {};
}

std::optional<commit_log::checkpoint> commit_log::read_checkpoint(const fs::path& dir, std::error_code& ec) {
  ec.clear();
  const auto path = dir / "checkpoint";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT)
      ec = errc::io_error;
    return std::nullopt;
  }
  const off_t size = ::lseek(fd, 0, SEEK_END);
  std::string body(size > 0 ? static_cast<std::size_t>(size) : 0, '\0');
  const bool read = size >= 0 && read_full(fd, body.data(), body.size(), 0);
  ::close(fd);
  if (!read) {
    ec = errc::io_error;
    return std::nullopt;
  }
  constexpr std::size_t fixed = 8 + 4 + 4 + 8 + 8;
  if (body.size() < fixed + 4 || std::memcmp(body.data(), checkpoint_magic, 8) != 0 ||
      get_raw<std::uint32_t>(body.data() + 8) != format_version) {
    ec = errc::corrupt;
    return std::nullopt;
  }
  const auto page_len = get_raw<std::uint32_t>(body.data() + 12);
  if (body.size() != fixed + page_len + 4 ||
      detail::crc32c(body.data(), body.size() - 4) != get_raw<std::uint32_t>(body.data() + body.size() - 4)) {
    ec = errc::corrupt;
    return std::nullopt;
  }
  checkpoint c;
  c.txnid = get_raw<std::uint64_t>(body.data() + 16);
  c.from_seq = get_raw<std::uint64_t>(body.data() + 24);
  c.meta_page.assign(body.data() + fixed, page_len);
  return c;
}

std::error_code commit_log::write_checkpoint(const fs::path& dir, const checkpoint& c) {
  std::string body(checkpoint_magic, 8);
  put_raw(body, format_version);
  put_raw(body, static_cast<std::uint32_t>(c.meta_page.size()));
  put_raw(body, c.txnid);
  put_raw(body, c.from_seq);
  body += c.meta_page;
  put_raw(body, detail::crc32c(body.data(), body.size()));
  const auto tmp = dir / "checkpoint.tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return errc::io_error;
  const bool ok = write_full(fd, body.data(), body.size(), 0) && data_sync(fd);
  ::close(fd);
  std::error_code fec;
  if (!ok)
    return errc::io_error;
  fs::rename(tmp, dir / "checkpoint", fec);
  if (fec || !sync_dir(dir))
    return errc::io_error;
  return {};
}

}  // namespace nudge::storage
