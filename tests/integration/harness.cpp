#include <utility>

#include "tests/integration/harness.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>

namespace nudge::test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

temp_dir::temp_dir() {
  std::random_device rd;
  path = std::filesystem::temp_directory_path() / ("nudge-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path);
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::optional<std::uint64_t> metric(int port, const std::string& name) {
  auto body = http_call(port, "GET", "/metrics").body;
  auto pos = body.find("\n" + name + " ");
  if (pos == std::string::npos)
    return std::nullopt;
  return std::stoull(body.substr(pos + name.size() + 2));
}

http_result admin_call(const server_process& srv, const std::string& method, const std::string& target,
                       const std::string& body) {
  return http_call(srv.port(), method, target, body,
                   {{"Authorization", "Bearer " + srv.admin_token()}, {"Content-Type", "application/json"}});
}

std::filesystem::path write_config(const std::filesystem::path& dir, const std::string& text) {
  auto p = dir / "nudge.toml";
  std::ofstream out(p, std::ios::binary);
  out << text;
  return p;
}

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string file_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  auto out = s.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
    out.pop_back();
  return out;
}

namespace {

pid_t spawn(const std::vector<std::string>& args, int& out_fd, int in_fd = -1,
            const std::vector<std::string>& env = {}) {
  // argv and envp are built before fork: the child only dup2()s and execs.
  std::string bin = NUDGE_BINARY;
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  argv.push_back(bin.data());
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_copy;
  for (char** e = environ; *e; ++e) {
    std::string_view var(*e);
    const bool replaced = std::any_of(env.begin(), env.end(), [&](const std::string& x) {
      return x.substr(0, x.find('=') + 1) == var.substr(0, var.find('=') + 1);
    });
    if (!replaced)
      env_copy.emplace_back(var);
  }
  env_copy.insert(env_copy.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_copy) envp.push_back(e.data());
  envp.push_back(nullptr);
  int fds[2];
  if (::pipe(fds) != 0)
    throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid < 0)
    throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    if (in_fd >= 0)
      ::dup2(in_fd, 0);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execve(bin.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  ::close(fds[1]);
  out_fd = fds[0];
  return pid;
}

int wait_exit(pid_t pid, std::chrono::seconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

}  // namespace

server_process::server_process(const std::filesystem::path& data_dir, std::vector<std::string> extra,
                               const std::vector<std::string>& env)
  : output_(std::make_shared<std::string>()), output_mtx_(std::make_shared<std::mutex>()) {
  std::vector<std::string> args{"serve", "--listen", "127.0.0.1:0", "--data", data_dir.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  pid_ = spawn(args, out_fd_, -1, env);
  std::string buf;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  const std::string marker = "://127.0.0.1:";  // "listening on http://" or "https://"
  while (port_ == 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
    if (left <= 0)
      break;
    pollfd pfd{out_fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) <= 0)
      break;
    char chunk[4096];
    auto n = ::read(out_fd_, chunk, sizeof chunk);
    if (n <= 0)
      break;
    buf.append(chunk, static_cast<std::size_t>(n));
    auto pos = buf.find(marker);
    if (pos != std::string::npos && buf.find('\n', pos) != std::string::npos)
      port_ = std::atoi(buf.c_str() + pos + marker.size());
  }
  *output_ = buf;
  if (port_ == 0) {
    ::kill(pid_, SIGKILL);
    wait_exit(pid_, std::chrono::seconds(5));
    throw std::runtime_error("nudge serve did not start: " + buf);
  }
  drain_ = std::thread([fd = out_fd_, out = output_, mtx = output_mtx_] {
    char chunk[4096];
    for (;;) {
      auto n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0)
        return;
      std::lock_guard<std::mutex> guard(*mtx);
      out->append(chunk, static_cast<std::size_t>(n));
    }
  });
  write_key_ = file_text(data_dir / "web.key");
  admin_token_ = file_text(data_dir / "admin.token");
}

server_process::~server_process() {
  if (pid_ > 0)
    stop(SIGKILL);
}

int server_process::stop(int sig) {
  if (pid_ <= 0)
    return -1;
  ::kill(pid_, sig);
  int rc = wait_exit(pid_, std::chrono::seconds(20));
  pid_ = -1;
  if (drain_.joinable())
    drain_.join();
  ::close(out_fd_);
  return rc;
}

std::string server_process::output() const {
  std::lock_guard<std::mutex> guard(*output_mtx_);
  return *output_;
}

int run_nudge(const std::vector<std::string>& args, std::string& out, const std::string& stdin_text) {
  int in_fds[2] = {-1, -1};
  if (!stdin_text.empty() || true) {
    if (::pipe(in_fds) != 0)
      throw std::runtime_error("pipe failed");
  }
  int out_fd = -1;
  pid_t pid = spawn(args, out_fd, in_fds[0]);
  ::close(in_fds[0]);
  std::thread feeder([fd = in_fds[1], text = stdin_text] {
    std::size_t off = 0;
    while (off < text.size()) {
      auto n = ::write(fd, text.data() + off, text.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    ::close(fd);
  });
  out.clear();
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd pfd{out_fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left)) <= 0) break;
    char chunk[4096];
    auto n = ::read(out_fd, chunk, sizeof chunk);
    if (n <= 0) break;
    out.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(out_fd);
  int rc = wait_exit(pid, std::chrono::seconds(5));
  feeder.join();
  return rc;
}

namespace {

/// Runs the io_context until `done` or the deadline; false on timeout.
bool run_until(asio::io_context& ioc, const bool& done, std::chrono::milliseconds limit) {
  ioc.restart();
  auto until = std::chrono::steady_clock::now() + limit;
  while (!done && std::chrono::steady_clock::now() < until)
    ioc.run_one_for(std::chrono::milliseconds(20));
  return done;
}

}  // namespace

http_result http_call(int port, const std::string& method, const std::string& target, const std::string& body,
                      const std::vector<std::pair<std::string, std::string>>& headers, std::chrono::seconds limit) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(limit);
  http_result out;
  bool done = false;
  beast::error_code ec;
  stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
                       [&](beast::error_code e) { ec = e; done = true; });
  if (!run_until(ioc, done, limit) || ec)
    return out;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  done = false;
  http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; done = true; });
  if (!run_until(ioc, done, limit) || ec)
    return out;
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 << 20);
  done = false;
  http::async_read(stream, buf, parser, [&](beast::error_code e, std::size_t) { ec = e; done = true; });
  if (!run_until(ioc, done, limit) || ec)
    return out;
  out.status = static_cast<int>(parser.get().result_int());
  out.body = parser.get().body();
  for (const auto& f : parser.get())
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  return out;
}

std::string http_result::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, name))
      return v;
  return "";
}

// Handlers hold a plain pointer: the io thread is joined before the impl goes.
struct http_receiver::impl {
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  std::thread thread;
  mutable std::mutex mtx;
  std::vector<received_request> got;
  status_fn status_for;

  void accept() {
    acceptor.async_accept([self = this](beast::error_code ec, tcp::socket sock) {
      if (ec)
        return;
      serve(self, std::make_shared<beast::tcp_stream>(std::move(sock)));
      self->accept();
    });
  }

  static void serve(impl* self, std::shared_ptr<beast::tcp_stream> stream) {
    auto buf = std::make_shared<beast::flat_buffer>();
    auto req = std::make_shared<http::request<http::string_body>>();
    stream->expires_after(std::chrono::seconds(30));
    http::async_read(*stream, *buf, *req, [self, stream, buf, req](beast::error_code ec, std::size_t) {
      if (ec)
        return;
      received_request r;
      r.method = std::string(req->method_string());
      r.target = std::string(req->target());
      r.body = req->body();
      r.signature = std::string((*req)["Nudge-Signature"]);
      status_fn pick;
      {
        std::lock_guard<std::mutex> guard(self->mtx);
        pick = self->status_for;
      }
      r.answered = pick ? pick(r) : 200;
      auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.answered), 11);
      res->set(http::field::content_type, "application/json");
      res->body() = "{}";
      res->keep_alive(false);
      res->prepare_payload();
      {
        std::lock_guard<std::mutex> guard(self->mtx);
        self->got.push_back(std::move(r));
      }
      http::async_write(*stream, *res, [stream, res](beast::error_code, std::size_t) {
        beast::error_code ignored;
        stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
      });
    });
  }
};

http_receiver::http_receiver(status_fn status_for) : impl_(std::make_unique<impl>()) {
  impl_->status_for = std::move(status_for);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(asio::socket_base::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen(asio::socket_base::max_listen_connections);
  impl_->accept();
  impl_->thread = std::thread([i = impl_.get()] { i->ioc.run(); });
}

http_receiver::~http_receiver() {
  asio::post(impl_->ioc, [i = impl_.get()] {
    beast::error_code ignored;
    i->acceptor.close(ignored);
  });
  impl_->ioc.stop();
  impl_->thread.join();
}

int http_receiver::port() const {
  return impl_->acceptor.local_endpoint().port();
}

std::string http_receiver::url() const {
  return "http://127.0.0.1:" + std::to_string(port()) + "/hook";
}

void http_receiver::set_status(status_fn status_for) {
  std::lock_guard<std::mutex> guard(impl_->mtx);
  impl_->status_for = std::move(status_for);
}

std::vector<received_request> http_receiver::requests() const {
  std::lock_guard<std::mutex> guard(impl_->mtx);
  return impl_->got;
}

std::size_t http_receiver::count() const {
  std::lock_guard<std::mutex> guard(impl_->mtx);
  return impl_->got.size();
}

bool http_receiver::wait_until(const std::function<bool(const std::vector<received_request>&)>& pred,
                               std::chrono::milliseconds limit) const {
  auto until = std::chrono::steady_clock::now() + limit;
  for (;;) {
    {
      std::lock_guard<std::mutex> guard(impl_->mtx);
      if (pred(impl_->got))
        return true;
    }
    if (std::chrono::steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

struct ws_client::impl {
  asio::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buf;
  bool open = false;
};

ws_client::ws_client() : impl_(std::make_unique<impl>()) {
}

ws_client::~ws_client() {
  close();
}

int ws_client::connect(int port, const std::string& query, const std::vector<std::pair<std::string, std::string>>& headers) {
  bool done = false;
  beast::error_code ec;
  auto& lowest = beast::get_lowest_layer(impl_->ws);
  lowest.expires_after(std::chrono::seconds(10));
  lowest.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
                       [&](beast::error_code e) { ec = e; done = true; });
  if (!run_until(impl_->ioc, done, std::chrono::seconds(10)) || ec)
    return 0;
  impl_->ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
    for (const auto& [k, v] : headers) req.set(k, v);
  }));
  websocket::response_type res;
  done = false;
  impl_->ws.async_handshake(res, "127.0.0.1", "/v1/stream" + query, [&](beast::error_code e) { ec = e; done = true; });
  if (!run_until(impl_->ioc, done, std::chrono::seconds(10)))
    return 0;
  lowest.expires_never();
  impl_->ws.read_message_max(64 << 20);
  if (ec)
    return res.result_int() ? static_cast<int>(res.result_int()) : 0;
  impl_->open = true;
  return 101;
}

bool ws_client::send(const std::string& bytes, bool text) {
  impl_->ws.text(text);
  bool done = false;
  beast::error_code ec;
  impl_->ws.async_write(asio::buffer(bytes), [&](beast::error_code e, std::size_t) { ec = e; done = true; });
  return run_until(impl_->ioc, done, std::chrono::seconds(10)) && !ec;
}

std::optional<std::string> ws_client::read(std::chrono::milliseconds timeout, bool* text) {
  bool done = false;
  beast::error_code ec;
  impl_->buf.clear();
  impl_->ws.async_read(impl_->buf, [&](beast::error_code e, std::size_t) { ec = e; done = true; });
  if (!run_until(impl_->ioc, done, timeout)) {
    beast::get_lowest_layer(impl_->ws).cancel();
    run_until(impl_->ioc, done, std::chrono::seconds(2));
    impl_->open = false;
    return std::nullopt;
  }
  if (ec) {
    impl_->open = false;
    return std::nullopt;
  }
  if (text)
    *text = impl_->ws.got_text();
  return beast::buffers_to_string(impl_->buf.data());
}

bool ws_client::send_fragments(const std::vector<std::string>& parts, bool text, bool ping_between) {
  auto& ws = impl_->ws;
  ws.text(text);
  ws.auto_fragment(false);
  bool ok = true;
  for (std::size_t i = 0; ok && i < parts.size(); ++i) {
    if (ping_between && i > 0) {
      bool done = false;
      beast::error_code ec;
      ws.async_ping({}, [&](beast::error_code e) { ec = e; done = true; });
      ok = run_until(impl_->ioc, done, std::chrono::seconds(10)) && !ec;
      if (!ok) break;
    }
    bool done = false;
    beast::error_code ec;
    ws.async_write_some(i + 1 == parts.size(), asio::buffer(parts[i]),
                        [&](beast::error_code e, std::size_t) { ec = e; done = true; });
    ok = run_until(impl_->ioc, done, std::chrono::seconds(10)) && !ec;
  }
  ws.auto_fragment(true);
  return ok;
}

int ws_client::close_code() const {
  return static_cast<int>(impl_->ws.reason().code);
}

void ws_client::close() {
  if (!impl_->open)
    return;
  impl_->open = false;
  bool done = false;
  impl_->ws.async_close(websocket::close_code::normal, [&](beast::error_code) { done = true; });
  run_until(impl_->ioc, done, std::chrono::seconds(2));
}

raw_conn::raw_conn(int port, const std::string& from) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0)
    throw std::runtime_error("socket failed");
  if (!from.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, from.c_str(), &local.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<const sockaddr*>(&local), sizeof local) != 0) {
      ::close(fd_);
      throw std::runtime_error("bind to " + from + " failed");
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    throw std::runtime_error("connect to 127.0.0.1 failed");
  }
}

raw_conn::~raw_conn() {
  if (fd_ >= 0)
    ::close(fd_);
}

bool raw_conn::send(const std::string& bytes) {
  std::size_t off = 0;
  while (!closed_ && off < bytes.size()) {
    pollfd pfd{fd_, POLLOUT, 0};
    if (::poll(&pfd, 1, 10000) <= 0)
      return false;
    auto n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  return !closed_;
}

bool raw_conn::read_some(int ms) {
  if (closed_)
    return false;
  pollfd pfd{fd_, POLLIN, 0};
  if (::poll(&pfd, 1, ms) <= 0)
    return true;  // nothing yet
  char chunk[4096];
  auto n = ::recv(fd_, chunk, sizeof chunk, 0);
  if (n <= 0) {
    closed_ = true;  // EOF, or a reset
    return false;
  }
  received_.append(chunk, static_cast<std::size_t>(n));
  return true;
}

bool raw_conn::read_until(const std::string& needle, std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (received_.find(needle) == std::string::npos && std::chrono::steady_clock::now() < until)
    if (!read_some(20))
      break;
  return received_.find(needle) != std::string::npos;
}

bool raw_conn::wait_closed(std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!closed_ && std::chrono::steady_clock::now() < until)
    read_some(20);
  return closed_;
}

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str(), json.size());
  return d;
}

sync_shim::sync_shim(const temp_dir& dir) : log_(dir.path / "shim.log"), control_(dir.path / "shim.control") {
  std::ofstream(control_).flush();
}

std::vector<std::string> sync_shim::env(const std::filesystem::path& data) const {
  const char* asan = std::getenv("ASAN_OPTIONS");
  return {std::string("LD_PRELOAD=") + NUDGE_SYNC_SHIM, "NUDGE_SHIM_LOG=" + log_.string(),
          "NUDGE_SHIM_CONTROL=" + control_.string(), "NUDGE_SHIM_PATH=" + data.string(),
          // Under ASan the shim is loaded ahead of the sanitizer runtime.
          std::string("ASAN_OPTIONS=verify_asan_link_order=0") + (asan ? std::string(":") + asan : "")};
}

std::vector<std::string> sync_shim::lines(char kind) const {
  std::ifstream in(log_);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line[0] == kind)
      out.push_back(line);
  return out;
}

void sync_shim::fail_syncs(std::size_t count, int err) const {
  auto from = syncs() + 1;
  std::ofstream(control_) << "sync " << from << " " << from + count << " " << err << "\n";
}

void sync_shim::slow_syncs(std::size_t count, int ms) const {
  auto from = syncs() + 1;
  std::ofstream(control_, std::ios::app) << "slow " << from << " " << from + count << " " << ms << "\n";
}

void sync_shim::fail_writes(int err) const {
  std::ofstream(control_) << "write 1 1000000000 " << err << "\n";
}

void sync_shim::fail_allocs(int err) const {
  std::ofstream(control_) << "alloc 1 1000000000 " << err << "\n";
}

void sync_shim::clear() const {
  std::ofstream(control_).flush();
}

rapidjson::Document profile_by_identity(const server_process& srv, const std::string& type_value, int* status) {
  auto res = http_call(srv.port(), "GET", "/v1/profiles?identity=" + type_value, "",
                       {{"Authorization", "Bearer " + srv.admin_token()}});
  if (status)
    *status = res.status;
  return parse(res.body);
}

rapidjson::Document read_reply(ws_client& ws, const std::string& id, std::vector<std::string>* others,
                              std::chrono::milliseconds timeout) {
  for (int i = 0; i < 10000; ++i) {
    auto frame = ws.read(timeout);
    if (!frame)
      break;
    auto d = parse(*frame);
    if (d.IsObject() && d.HasMember("id") && d["id"].IsString() && id == d["id"].GetString())
      return d;
    if (others)
      others->push_back(*frame);
  }
  return parse("{}");
}

}  // namespace nudge::test
