// nudge: serve, client, policy check. Exit codes: 0 ok, 1 runtime failure,
// 2 invalid usage, config or policy.
#include "app/client.hpp"
#include "app/config.hpp"
#include "app/serve.hpp"
#include "net/webhook.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>

#include <unistd.h>

namespace {

std::optional<nudge::app::config> load(const std::optional<std::string>& config_file,
                                       const std::optional<std::string>& listen,
                                       const std::optional<std::string>& data,
                                       const std::optional<std::string>& policy) {
  std::filesystem::path path;
  if (config_file)
    path = *config_file;
  auto loaded = nudge::app::load_config(config_file ? &path : nullptr);
  if (auto* err = std::get_if<nudge::app::config_error>(&loaded)) {
    std::cerr << err->message << '\n';
    return std::nullopt;
  }
  auto cfg = std::get<nudge::app::config>(std::move(loaded));
  if (auto err = nudge::app::apply_overrides(cfg, listen, data, policy)) {
    std::cerr << err->message << '\n';
    return std::nullopt;
  }
  return cfg;
}

/// glibc's malloc as the service runs it (docs/BENCHMARKS.md):
/// - `tcache_count=256`: glibc keeps 7 freed blocks per size class in each thread's
///   cache; past that a free goes back to the arena (locks, bin upkeep,
///   malloc_consolidate). The service frees in bursts (a commit's batch of records, a
///   burst of replies): with 256 a closed loop like scenario 1's ran 7% faster on 7%
///   less CPU per message, for ~3 MB more memory ("A larger per-thread cache for
///   malloc").
/// - `arena_max=1` and `hugetlb=1`: a thread's own arena grows one 4 KiB page at a time
///   (an mprotect, then a fault that zeroes the page), and glibc asks for transparent
///   huge pages only for the main arena. Every activated profile grows the heap by ~8 KB,
///   so with profiles activated cold (scenario 2) that was 1 of the 1.6 page faults per
///   message; in one arena that grows by 2 MiB huge pages the faults fall to 0.7, the
///   kernel's time per message by a third and the closed loop runs ~20% faster, with no
///   difference in a steady stream and 0.3% more memory per profile ("Huge pages for the
///   heap"). Where the kernel's transparent huge pages are off, only the one arena stays.
/// - `top_pad=32 MiB`, `trim_threshold=64 MiB`, `mmap_threshold=4 MiB`: the heap grows by
///   what it needs plus 32 MiB and shrinks back only past 64 MiB spare, so that there is
///   a tail ahead of use for the `nudge-heap` thread to fault in (app/heap_prefault.hpp):
///   zeroing a fresh huge page takes 4-6 ms here, and the I/O thread paid it about once a
///   second in a steady stream ("The open loop side by side"). Setting those two fixes
///   glibc's mmap threshold, otherwise raised as large blocks are freed: 4 MiB keeps
///   the blocks below it in the heap. The pad is resident from the start (~32 MB).
constexpr const char* malloc_tunables =
    "glibc.malloc.tcache_count=256:glibc.malloc.arena_max=1:glibc.malloc.hugetlb=1"
    ":glibc.malloc.top_pad=33554432:glibc.malloc.trim_threshold=67108864:glibc.malloc.mmap_threshold=4194304";

/// Tunables are read only as a process starts, so `serve` execs itself once with them
/// set, unless GLIBC_TUNABLES is set already: an operator's own choice (set it empty
/// for glibc's defaults), or this exec's. The PID stays the same.
void exec_with_malloc_tuning(char** argv) {
  if (std::getenv("GLIBC_TUNABLES") != nullptr)
    return;
  if (::setenv("GLIBC_TUNABLES", malloc_tunables, 1) != 0)
    return;
  ::execv("/proc/self/exe", argv);
  ::unsetenv("GLIBC_TUNABLES");  // the exec failed: serve with glibc's defaults
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nudge: real-time next-best-action service"};
  app.require_subcommand(1);

  std::optional<std::string> config_file, listen, data, policy;
  auto* serve = app.add_subcommand("serve", "Serve the API (no flags: the embedded default on 127.0.0.1:8080)");
  serve->add_option("--config", config_file, "TOML config file");
  serve->add_option("--listen", listen, "HOST:PORT (port 0: any free port)");
  serve->add_option("--data", data, "data directory (LMDB)");
  serve->add_option("--policy", policy, "policy JSON file to activate");

  nudge::app::client_options copt;
  auto* client = app.add_subcommand("client", "Send JSON messages (one per line) over the WebSocket stream, print every reply");
  client->add_option("url", copt.url, "ws://HOST:PORT[/v1/stream]")->required();
  client->add_option("file", copt.input_file, "file of messages (default: stdin)");
  client->add_option("--key", copt.key, "write key");
  client->add_flag("--msgpack", copt.msgpack, "send MessagePack binary frames");

  std::optional<std::string> check_config;
  std::string policy_file;
  auto* pol = app.add_subcommand("policy", "Policy tools");
  pol->require_subcommand(1);
  auto* check = pol->add_subcommand("check", "Validate a policy file (exit 0 or 2)");
  check->add_option("file", policy_file, "policy JSON")->required();
  check->add_option("--config", check_config, "config whose purposes and identity types apply");

  std::string backup_dir;
  std::optional<std::string> backup_config, backup_data;
  auto* bak = app.add_subcommand("backup", "Write a consistent, compacted copy of the data dir (also while serving)");
  bak->add_option("dir", backup_dir, "target directory (must not hold a data.mdb)")->required();
  auto* bak_data = bak->add_option("--data", backup_data, "data directory (LMDB)");
  bak->add_option("--config", backup_config, "TOML config file whose data_dir to copy")->excludes(bak_data);

  std::string sign_secret, sign_file;
  auto* sign = app.add_subcommand("sign", "Print the Nudge-Signature header for a webhook body (for testing with curl)");
  sign->add_option("--secret", sign_secret, "the webhook source's secret")->required();
  sign->add_option("file", sign_file, "the body (default: stdin)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (*serve) {
    exec_with_malloc_tuning(argv);
    auto cfg = load(config_file, listen, data, policy);
    if (!cfg)
      return 2;
    return nudge::app::serve(std::move(*cfg));
  }
  if (*client)
    return nudge::app::run_client(copt);
  if (*bak) {
    auto cfg = load(backup_config, std::nullopt, backup_data, std::nullopt);
    if (!cfg)
      return 2;
    return nudge::app::backup(*cfg, backup_dir);
  }
  if (*sign) {
    std::string body;
    if (sign_file.empty() || sign_file == "-") {
      body.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
      std::ifstream in(sign_file, std::ios::binary);
      if (!in) {
        std::cerr << sign_file << ": cannot read the file\n";
        return 2;
      }
      body.assign(std::istreambuf_iterator<char>(in), {});
    }
    auto t = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    std::cout << "Nudge-Signature: t=" << t << ",v1=" << nudge::net::webhook_signature(sign_secret, t, body) << '\n';
    return 0;
  }
  if (*check) {
    auto cfg = load(check_config, std::nullopt, std::nullopt, std::nullopt);
    if (!cfg)
      return 2;
    return nudge::app::policy_check(*cfg, policy_file);
  }
  return 2;
}
