#include "storage/detail/file_io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace nudge::storage::detail {

bool read_full(int fd, char* out, std::size_t n, std::uint64_t at) {
  while (n > 0) {
    ssize_t r = ::pread(fd, out, n, static_cast<off_t>(at));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    out += r;
    n -= static_cast<std::size_t>(r);
    at += static_cast<std::uint64_t>(r);
  }
  return true;
}

bool write_full(int fd, const char* in, std::size_t n, std::uint64_t at) {
  while (n > 0) {
    ssize_t r = ::pwrite(fd, in, n, static_cast<off_t>(at));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    in += r;
    n -= static_cast<std::size_t>(r);
    at += static_cast<std::uint64_t>(r);
  }
  return true;
}

bool data_sync(int fd) {
  int rc;
  do
    rc = ::fdatasync(fd);
  while (rc != 0 && errno == EINTR);
  return rc == 0;
}

bool sync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace nudge::storage::detail
