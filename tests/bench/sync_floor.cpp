// sync_floor: what it costs to make dirty pages durable, the floor under scenario (4).
// LMDB with MDB_WRITEMAP makes a commit durable with msync over the map; the pages a
// commit dirtied are scattered (random leaves of B-trees). This tool dirties PAGES
// random 4 KiB pages of a FILE_MB file mapped like LMDB's and times msync(MS_SYNC),
// then does the same with PAGES pages written in sequence, and with one sequential
// append of the same bytes plus fdatasync (what a write-ahead log pays).
//
//   build/tests/bench/sync_floor --dir /tmp --file-mb 1024 --pages 16,64,256,1024
#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cost of syncing scattered versus sequential dirty pages"};
  std::string dir = "/tmp";
  std::size_t file_mb = 1024;
  std::vector<std::size_t> batches{16, 64, 256, 1024};
  int rounds = 20;
  app.add_option("--dir", dir, "where the scratch files go (the disk to measure)");
  app.add_option("--file-mb", file_mb, "size of the mapped file")->check(CLI::Range(16, 65536));
  app.add_option("--pages", batches, "dirty pages per sync (a list)")->delimiter(',');
  app.add_option("--rounds", rounds, "syncs per batch size")->check(CLI::Range(1, 1000));
  CLI11_PARSE(app, argc, argv);

  constexpr std::size_t page = 4096;
  const std::size_t bytes = file_mb << 20;
  const std::string map_path = dir + "/sync_floor.map";
  const std::string log_path = dir + "/sync_floor.log";
  int fd = ::open(map_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)) != 0) {
    std::perror("sync_floor: map file");
    return 1;
  }
  auto* map = static_cast<char*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  if (map == MAP_FAILED) {
    std::perror("sync_floor: mmap");
    return 1;
  }
  // Every page written and synced once, so that the runs below measure rewrites of
  // allocated blocks, as LMDB's reused pages are.
  for (std::size_t off = 0; off < bytes; off += page)
    map[off] = 1;
  ::msync(map, bytes, MS_SYNC);
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
  if (log < 0) {
    std::perror("sync_floor: log file");
    return 1;
  }
  std::mt19937_64 rng{42};
  std::uniform_int_distribution<std::size_t> pick(0, bytes / page - 1);
  std::vector<char> chunk;
  std::size_t seq_at = 0;
  for (auto n : batches) {
    double scattered = 0, sequential = 0, appended = 0;
    for (int r = 0; r < rounds; ++r) {
      for (std::size_t i = 0; i < n; ++i)
        std::memset(map + pick(rng) * page, r + 2, 64);
      auto t0 = clock_type::now();
      ::msync(map, bytes, MS_SYNC);
      scattered += ms_since(t0);

      for (std::size_t i = 0; i < n; ++i, seq_at = (seq_at + 1) % (bytes / page))
        std::memset(map + seq_at * page, r + 2, 64);
      t0 = clock_type::now();
      ::msync(map, bytes, MS_SYNC);
      sequential += ms_since(t0);

      // A log appends only the records (~300 B each here), not whole pages.
      chunk.assign(n * 300, static_cast<char>(r));
      t0 = clock_type::now();
      if (::write(log, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size()) || ::fdatasync(log) != 0) {
        std::perror("sync_floor: log append");
        return 1;
      }
      appended += ms_since(t0);
    }
    std::printf("{\"dirty_pages\":%zu,\"scattered_msync_ms\":%.3f,\"sequential_msync_ms\":%.3f,"
                "\"log_append_fdatasync_ms\":%.3f,\"scattered_us_per_page\":%.1f}\n",
                n, scattered / rounds, sequential / rounds, appended / rounds, scattered / rounds * 1000.0 / n);
  }
  ::munmap(map, bytes);
  ::close(fd);
  ::close(log);
  ::unlink(map_path.c_str());
  ::unlink(log_path.c_str());
  return 0;
}
