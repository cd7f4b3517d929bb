// Test harness for integration tests: starts the real `nudge serve` binary on
// 127.0.0.1:0 with a temporary data dir, and talks to it over real WebSocket and
// HTTP connections. Every wait is bounded.
#pragma once

#include <rapidjson/document.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace nudge::test {

/// A fresh directory under the system temp dir, removed on destruction.
struct temp_dir {
  temp_dir();
  ~temp_dir();
  std::filesystem::path path;
};

class server_process {
public:
  /// Starts `nudge serve --listen 127.0.0.1:0 --data DIR` plus `extra` arguments, with
  /// `env` ("NAME=VALUE") added to the environment, and waits (at most 20 s) for its
  /// "listening on" line. Throws on failure.
  server_process(const std::filesystem::path& data_dir, std::vector<std::string> extra = {},
                 const std::vector<std::string>& env = {});
  ~server_process();

  int port() const { return port_; }
  int pid() const { return pid_; }
  const std::string& write_key() const { return write_key_; }
  const std::string& admin_token() const { return admin_token_; }
  /// Sends `sig` and waits (at most 20 s) for the exit; returns the exit status
  /// (128 + signal when killed by one).
  int stop(int sig);
  /// Everything the process printed on stdout so far.
  std::string output() const;

private:
  int pid_ = -1;
  int port_ = 0;
  int out_fd_ = -1;
  std::string write_key_;
  std::string admin_token_;
  std::shared_ptr<std::string> output_;
  std::shared_ptr<std::mutex> output_mtx_;
  std::thread drain_;
};

/// Runs `nudge ARGS...` to completion (at most 30 s) and returns its exit status;
/// stdout and stderr are captured together into `out`.
int run_nudge(const std::vector<std::string>& args, std::string& out, const std::string& stdin_text = "");

struct http_result {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  /// The value of header `name` (case-insensitive), "" when absent.
  std::string header(const std::string& name) const;
};

/// One HTTP request on a new connection, bounded by `limit` in all (connect, write, read).
http_result http_call(int port, const std::string& method, const std::string& target, const std::string& body = "",
                      const std::vector<std::pair<std::string, std::string>>& headers = {},
                      std::chrono::seconds limit = std::chrono::seconds(10));

/// A WebSocket client (async Beast operations driven with deadlines).
class ws_client {
public:
  ws_client();
  ~ws_client();
  /// Connects to /v1/stream (plus `query`). Returns 101 on success, else the HTTP
  /// status of the refused upgrade (or 0 on a transport error).
  int connect(int port, const std::string& query, const std::vector<std::pair<std::string, std::string>>& headers = {});
  bool send(const std::string& bytes, bool text = true);
  /// Sends one message as a first frame and continuation frames, one per part (`fin`
  /// on the last); with `ping_between` a ping goes out between every two fragments.
  /// False when a write failed (the server may have closed meanwhile).
  bool send_fragments(const std::vector<std::string>& parts, bool text = true, bool ping_between = false);
  /// The next frame, or nullopt on timeout or close.
  std::optional<std::string> read(std::chrono::milliseconds timeout = std::chrono::seconds(10), bool* text = nullptr);
  /// The close code the server sent (after read() returned nullopt because of a close).
  int close_code() const;
  void close();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A raw TCP connection to 127.0.0.1:PORT for clients that misbehave on purpose
/// (partial requests, trickles, stalls). Every call is bounded; nothing throws after
/// the constructor (which throws when it cannot connect).
class raw_conn {
public:
  /// Connects to 127.0.0.1:port, from the loopback address `from` when given
  /// (e.g. "127.0.0.2": a second client address).
  explicit raw_conn(int port, const std::string& from = "");
  ~raw_conn();
  raw_conn(const raw_conn&) = delete;
  raw_conn& operator=(const raw_conn&) = delete;

  /// False once the peer has closed or reset the connection.
  bool send(const std::string& bytes);
  /// Reads until `needle` is in received(), the peer closes, or `limit` passes.
  bool read_until(const std::string& needle, std::chrono::milliseconds limit);
  /// Reads (keeping what arrives) until the peer closes (EOF or reset: true) or
  /// `limit` passes (false).
  bool wait_closed(std::chrono::milliseconds limit);
  bool closed() const { return closed_; }
  const std::string& received() const { return received_; }

private:
  /// One poll+read of at most `ms`; false when nothing more can come.
  bool read_some(int ms);
  int fd_ = -1;
  bool closed_ = false;
  std::string received_;
};

/// Drives the LD_PRELOAD shim of sync_shim.cpp through its files in a temp dir: the
/// log of sync calls and data-file writes, and the control file that fails them.
class sync_shim {
public:
  explicit sync_shim(const temp_dir& dir);
  /// Environment for server_process: preload the shim, watch writes under `data`.
  std::vector<std::string> env(const std::filesystem::path& data) const;
  /// Lines of the log that start with `kind` ('S' sync calls, 'W' data-file writes,
  /// 'A' data-file fallocate calls, 'D' slowed syncs beginning their wait).
  std::vector<std::string> lines(char kind) const;
  std::size_t syncs() const { return lines('S').size(); }
  /// Fails the next `count` sync calls with `err`.
  void fail_syncs(std::size_t count, int err) const;
  /// Makes the next `count` sync calls take `ms` longer (logged as 'D' lines when the
  /// wait begins). Adds to what fail_syncs set, which replaces everything before.
  void slow_syncs(std::size_t count, int ms) const;
  /// Fails every later write to a file under the data dir with `err`.
  void fail_writes(int err) const;
  /// Fails every later fallocate/posix_fallocate of a file under the data dir with `err`.
  void fail_allocs(int err) const;
  void clear() const;

private:
  std::filesystem::path log_;
  std::filesystem::path control_;
};

/// One request the receiver got.
struct received_request {
  std::string method;
  std::string target;
  std::string body;
  std::string signature;  ///< the Nudge-Signature header
  int answered = 0;       ///< the status it was answered with
};

/// A local HTTP receiver (Beast, 127.0.0.1:0, its own io thread) that records every
/// request and answers with the status `status_for` picks (200 by default).
class http_receiver {
public:
  using status_fn = std::function<int(const received_request&)>;
  explicit http_receiver(status_fn status_for = nullptr);
  ~http_receiver();
  http_receiver(const http_receiver&) = delete;
  http_receiver& operator=(const http_receiver&) = delete;

  int port() const;
  /// http://127.0.0.1:PORT/hook
  std::string url() const;
  void set_status(status_fn status_for);
  std::vector<received_request> requests() const;
  std::size_t count() const;
  /// Waits (bounded) until `pred(requests())` holds; returns whether it did.
  bool wait_until(const std::function<bool(const std::vector<received_request>&)>& pred,
                  std::chrono::milliseconds limit) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};
/// http_call with the server's admin token (and a JSON content type).
/// The value of the metric `name` (a line "name value") in GET /metrics, if present.
std::optional<std::uint64_t> metric(int port, const std::string& name);

http_result admin_call(const server_process& srv, const std::string& method, const std::string& target,
                       const std::string& body = "");

/// Writes `text` to DIR/nudge.toml and returns the path (for `--config`).
std::filesystem::path write_config(const std::filesystem::path& dir, const std::string& text);

/// The bytes of `p` ("" when unreadable), for looking for what must not be there.
std::string file_bytes(const std::filesystem::path& p);

rapidjson::Document parse(const std::string& json);

/// GET /v1/profiles?identity=TYPE:VALUE with the admin token; `status` gets the HTTP status.
rapidjson::Document profile_by_identity(const server_process& srv, const std::string& type_value,
                                        int* status = nullptr);

/// The reply whose "id" is `id` among the next frames (others are kept for later).
rapidjson::Document read_reply(ws_client& ws, const std::string& id, std::vector<std::string>* others = nullptr,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10));

std::string file_text(const std::filesystem::path& p);

}  // namespace nudge::test
