// An LD_PRELOAD shim for durability tests: wraps msync/fsync/fdatasync and
// write/pwrite/pwrite64/writev/pwritev and fallocate/posix_fallocate, counts them, logs them and
// fails them on request.
//
//   NUDGE_SHIM_LOG=FILE      every sync call appends "S N CALL RESULT" (N counts sync
//                            calls from 1, process-wide), written before the call
//                            returns, so a line precedes whatever the caller does next;
//                            every write to a file under NUDGE_SHIM_PATH appends
//                            "W N CALL RESULT", and every fallocate of one
//                            "A N CALL RESULT"
//   NUDGE_SHIM_PATH=PATH     writes counted (and failed) are those to files whose path starts with PATH
//   NUDGE_SHIM_CONTROL=FILE  re-read at every call: lines "sync FROM TO ERRNO" and
//                            "write FROM TO ERRNO" (and "alloc FROM TO ERRNO" for
//                            fallocate) make calls numbered FROM <= N < TO
//                            fail with ERRNO (e.g. 5 EIO, 28 ENOSPC) without running;
//                            "slow FROM TO MS" makes those sync calls take MS longer
//                            (a slow disk), logging "D N" as the wait begins
//
// Only the test's server loads it; nothing in the service knows about it.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace {

std::atomic<long> sync_calls{0};
std::atomic<long> write_calls{0};
std::atomic<long> alloc_calls{0};

template <class F>
F next(const char* name) {
  void* sym = ::dlsym(RTLD_NEXT, name);
  F f;
  std::memcpy(&f, &sym, sizeof f);
  return f;
}

// Raw syscalls for the shim's own I/O: they must not recurse into the wrappers.
void log_line(const char* kind, long n, const char* call, int result) {
  const char* path = std::getenv("NUDGE_SHIM_LOG");
  if (!path)
    return;
  int fd = static_cast<int>(::syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (fd < 0)
    return;
  char line[128];
  int len = std::snprintf(line, sizeof line, "%s %ld %s %d\n", kind, n, call, result);
  ::syscall(SYS_write, fd, line, static_cast<std::size_t>(len));
  ::syscall(SYS_close, fd);
}

/// The errno to fail call number `n` of `kind` ("sync" or "write") with, or 0.
int injected(const char* kind, long n) {
  const char* path = std::getenv("NUDGE_SHIM_CONTROL");
  if (!path)
    return 0;
  int fd = static_cast<int>(::syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC));
  if (fd < 0)
    return 0;
  char buf[512];
  long len = ::syscall(SYS_read, fd, buf, sizeof buf - 1);
  ::syscall(SYS_close, fd);
  if (len <= 0)
    return 0;
  buf[len] = '\0';
  for (char* line = buf; line && *line;) {
    char* eol = std::strchr(line, '\n');
    if (eol)
      *eol = '\0';
    char what[16];
    long from = 0, to = 0;
    int err = 0;
    if (std::sscanf(line, "%15s %ld %ld %d", what, &from, &to, &err) == 4 && std::strcmp(what, kind) == 0 &&
        n >= from && n < to)
      return err;
    line = eol ? eol + 1 : nullptr;
  }
  return 0;
}

template <class Call>
int on_sync(const char* name, Call call) {
  long n = ++sync_calls;
  if (int ms = injected("slow", n); ms > 0) {
    log_line("D", n, name, 0);
    struct timespec pause{ms / 1000, (ms % 1000) * 1000000L};
    ::nanosleep(&pause, nullptr);
  }
  int err = injected("sync", n);
  int rc = err ? -1 : call();
  int saved = err ? err : errno;
  log_line("S", n, name, rc == 0 ? 0 : saved);
  errno = saved;
  return rc;
}

bool watched(int fd) {
  const char* dir = std::getenv("NUDGE_SHIM_PATH");
  if (!dir || fd < 0)
    return false;
  char link[64], target[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  long len = ::syscall(SYS_readlinkat, AT_FDCWD, link, target, sizeof target - 1);
  if (len <= 0)
    return false;
  target[len] = '\0';
  return std::strncmp(target, dir, std::strlen(dir)) == 0;
}

template <class Call>
ssize_t on_write(int fd, const char* name, Call call) {
  if (!watched(fd))
    return call();
  long n = ++write_calls;
  int err = injected("write", n);
  ssize_t rc = err ? -1 : call();
  int saved = err ? err : errno;
  log_line("W", n, name, rc >= 0 ? 0 : saved);
  errno = saved;
  return rc;
}

/// fallocate reports failure through its return value and errno; posix_fallocate
/// returns the error number instead (`posix` true).
template <class Call>
int on_alloc(int fd, const char* name, bool posix, Call call) {
  if (!watched(fd))
    return call();
  long n = ++alloc_calls;
  int err = injected("alloc", n);
  int rc = err ? (posix ? err : -1) : call();
  int saved = err ? err : posix ? rc : rc == 0 ? 0 : errno;
  log_line("A", n, name, saved);
  if (!posix)
    errno = saved;
  return rc;
}

}  // namespace

extern "C" {

int fallocate(int fd, int mode, off_t offset, off_t len) {
  static auto real = next<int (*)(int, int, off_t, off_t)>("fallocate");
  return on_alloc(fd, "fallocate", false, [&] { return real(fd, mode, offset, len); });
}

int fallocate64(int fd, int mode, off64_t offset, off64_t len) {
  static auto real = next<int (*)(int, int, off64_t, off64_t)>("fallocate64");
  return on_alloc(fd, "fallocate64", false, [&] { return real(fd, mode, offset, len); });
}

int posix_fallocate(int fd, off_t offset, off_t len) {
  static auto real = next<int (*)(int, off_t, off_t)>("posix_fallocate");
  return on_alloc(fd, "posix_fallocate", true, [&] { return real(fd, offset, len); });
}

int posix_fallocate64(int fd, off64_t offset, off64_t len) {
  static auto real = next<int (*)(int, off64_t, off64_t)>("posix_fallocate64");
  return on_alloc(fd, "posix_fallocate64", true, [&] { return real(fd, offset, len); });
}

int msync(void* addr, size_t length, int flags) {
  static auto real = next<int (*)(void*, size_t, int)>("msync");
  return on_sync("msync", [&] { return real(addr, length, flags); });
}

int fsync(int fd) {
  static auto real = next<int (*)(int)>("fsync");
  return on_sync("fsync", [&] { return real(fd); });
}

int fdatasync(int fd) {
  static auto real = next<int (*)(int)>("fdatasync");
  return on_sync("fdatasync", [&] { return real(fd); });
}

ssize_t write(int fd, const void* buf, size_t count) {
  static auto real = next<ssize_t (*)(int, const void*, size_t)>("write");
  return on_write(fd, "write", [&] { return real(fd, buf, count); });
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  static auto real = next<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
  return on_write(fd, "pwrite", [&] { return real(fd, buf, count, offset); });
}

ssize_t pwrite64(int fd, const void* buf, size_t count, off64_t offset) {
  static auto real = next<ssize_t (*)(int, const void*, size_t, off64_t)>("pwrite64");
  return on_write(fd, "pwrite64", [&] { return real(fd, buf, count, offset); });
}

// LMDB without its writable map writes runs of contiguous pages with writev.
ssize_t writev(int fd, const struct iovec* iov, int count) {
  static auto real = next<ssize_t (*)(int, const struct iovec*, int)>("writev");
  return on_write(fd, "writev", [&] { return real(fd, iov, count); });
}

ssize_t pwritev(int fd, const struct iovec* iov, int count, off_t offset) {
  static auto real = next<ssize_t (*)(int, const struct iovec*, int, off_t)>("pwritev");
  return on_write(fd, "pwritev", [&] { return real(fd, iov, count, offset); });
}

}  // extern "C"
