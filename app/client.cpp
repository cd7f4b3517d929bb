#include "app/client.hpp"
#include "net/ws_url.hpp"
#include "policies/json.hpp"

#include <utility> // before Boost: asio's awaitable.hpp uses std::exchange (STYLE.md)

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <msgpack.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nudge::app {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// Deeper documents are sent as they are rather than converted (the server refuses
// nesting beyond depth 8 anyway).
constexpr int max_convert_depth = 64;
constexpr std::chrono::seconds connect_timeout{10};


// ---- JSON <-> MessagePack ----------------------------------------------------------

// msgpack-c packs a double with an integral value as an integer; JSON's 49.0 stays a
// float64 here, as the JSON text had it.
void pack_float64(msgpack::sbuffer& buffer, double d) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &d, sizeof bits);
  char out[9];
  out[0] = static_cast<char>(0xcb);
  for (int i = 0; i < 8; ++i)
    out[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
  buffer.write(out, sizeof out);
}

bool json_to_msgpack(const rapidjson::Value& v, msgpack::sbuffer& buffer,
                     msgpack::packer<msgpack::sbuffer>& pk, int depth) {
  if (depth > max_convert_depth)
    return false;
  switch (v.GetType()) {
  case rapidjson::kNullType: pk.pack_nil(); return true;
  case rapidjson::kFalseType: pk.pack_false(); return true;
  case rapidjson::kTrueType: pk.pack_true(); return true;
  case rapidjson::kStringType:
    pk.pack_str(v.GetStringLength());
    pk.pack_str_body(v.GetString(), v.GetStringLength());
    return true;
  case rapidjson::kNumberType:
    if (v.IsUint64())
      pk.pack_uint64(v.GetUint64());
    else if (v.IsInt64())
      pk.pack_int64(v.GetInt64());
    else
      pack_float64(buffer, v.GetDouble());
    return true;
  case rapidjson::kArrayType:
    pk.pack_array(v.Size());
    for (const auto& item : v.GetArray())
      if (!json_to_msgpack(item, buffer, pk, depth + 1))
        return false;
    return true;
  case rapidjson::kObjectType:
    pk.pack_map(v.MemberCount());
    for (const auto& member : v.GetObject()) {
      pk.pack_str(member.name.GetStringLength());
      pk.pack_str_body(member.name.GetString(), member.name.GetStringLength());
      if (!json_to_msgpack(member.value, buffer, pk, depth + 1))
        return false;
    }
    return true;
  }
  return false;
}

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_base64(json_writer& w, const char* data, std::uint32_t size) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  for (std::uint32_t i = 0; i < size; i += 3) {
    std::uint32_t n = static_cast<unsigned char>(data[i]) << 16;
    if (i + 1 < size)
      n |= static_cast<unsigned char>(data[i + 1]) << 8;
    if (i + 2 < size)
      n |= static_cast<unsigned char>(data[i + 2]);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += i + 1 < size ? alphabet[(n >> 6) & 63] : '=';
    out += i + 2 < size ? alphabet[n & 63] : '=';
  }
  w.String(out.data(), static_cast<rapidjson::SizeType>(out.size()));
}

bool msgpack_to_json(const msgpack::object& o, json_writer& w, int depth);

// A map key that is not a string becomes the JSON text of the key.
void write_key(const msgpack::object& key, json_writer& w, int depth) {
  if (key.type == msgpack::type::STR) {
    w.Key(key.via.str.ptr, key.via.str.size);
    return;
  }
  rapidjson::StringBuffer buffer;
  json_writer inner(buffer);
  if (!msgpack_to_json(key, inner, depth + 1)) {
    w.Key("?");
    return;
  }
  w.Key(buffer.GetString(), static_cast<rapidjson::SizeType>(buffer.GetSize()));
}

bool msgpack_to_json(const msgpack::object& o, json_writer& w, int depth) {
  if (depth > max_convert_depth)
    return false;
  switch (o.type) {
  case msgpack::type::NIL: w.Null(); return true;
  case msgpack::type::BOOLEAN: w.Bool(o.via.boolean); return true;
  case msgpack::type::POSITIVE_INTEGER: w.Uint64(o.via.u64); return true;
  case msgpack::type::NEGATIVE_INTEGER: w.Int64(o.via.i64); return true;
  case msgpack::type::FLOAT32:
  case msgpack::type::FLOAT64:
    // JSON has no NaN or infinity: the writer refuses them, so write null.
    if (!w.Double(o.via.f64))
      w.Null();
    return true;
  case msgpack::type::STR: w.String(o.via.str.ptr, o.via.str.size); return true;
  case msgpack::type::BIN: write_base64(w, o.via.bin.ptr, o.via.bin.size); return true;
  case msgpack::type::EXT: write_base64(w, o.via.ext.data(), o.via.ext.size); return true;
  case msgpack::type::ARRAY:
    w.StartArray();
    for (std::uint32_t i = 0; i < o.via.array.size; ++i)
      if (!msgpack_to_json(o.via.array.ptr[i], w, depth + 1))
        return false;
    w.EndArray();
    return true;
  case msgpack::type::MAP:
    w.StartObject();
    for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
      write_key(o.via.map.ptr[i].key, w, depth);
      if (!msgpack_to_json(o.via.map.ptr[i].val, w, depth + 1))
        return false;
    }
    w.EndObject();
    return true;
  }
  return false;
}

// The frame as one line of JSON, or nullopt when it cannot be read as such.
std::optional<std::string> binary_reply_as_json(const char* data, std::size_t size) {
  try {
    msgpack::object_handle handle = msgpack::unpack(data, size);
    rapidjson::StringBuffer buffer;
    json_writer w(buffer);
    if (!msgpack_to_json(handle.get(), w, 0))
      return std::nullopt;
    return std::string(buffer.GetString(), buffer.GetSize());
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// ---- the input ---------------------------------------------------------------------

struct outgoing {
  std::string payload;
  bool binary = false;
  std::optional<std::string> id; // nullopt: the line's id could not be read
};

// Reads and encodes every line; false (with a message on stderr) when the input cannot
// be read.
bool read_input(const client_options& options, std::vector<outgoing>& out) {
  std::ifstream file;
  const bool use_stdin = options.input_file.empty() || options.input_file == "-";
  if (!use_stdin) {
    file.open(options.input_file);
    if (!file) {
      std::cerr << "nudge client: cannot read " << options.input_file << "\n";
      return false;
    }
  }
  std::istream& in = use_stdin ? std::cin : file;
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    const std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#')
      continue;

    outgoing msg;
    rapidjson::Document doc;
    const auto parsed = policies::parse_json(doc, line);
    const bool valid = parsed.ok();
    if (valid && doc.IsObject()) {
      auto it = doc.FindMember("id");
      if (it != doc.MemberEnd() && it->value.IsString())
        msg.id = std::string(it->value.GetString(), it->value.GetStringLength());
    }
    if (!valid)
      std::cerr << "nudge client: line " << number << " is not valid JSON ("
                << parsed.message << "); sent as it is\n";
    msg.binary = options.msgpack;
    if (options.msgpack && valid) {
      msgpack::sbuffer buffer;
      msgpack::packer<msgpack::sbuffer> pk(buffer);
      if (json_to_msgpack(doc, buffer, pk, 0)) {
        msg.payload.assign(buffer.data(), buffer.size());
      } else {
        std::cerr << "nudge client: line " << number
                  << " is nested too deeply to convert; sent as it is\n";
        msg.payload = line;
      }
    } else {
      msg.payload = line;
    }
    out.push_back(std::move(msg));
  }
  if (in.bad()) {
    std::cerr << "nudge client: error reading " << (use_stdin ? "stdin" : options.input_file)
              << "\n";
    return false;
  }
  return true;
}

// ---- the connection ----------------------------------------------------------------

// Runs on one io_context on the caller's thread: writes the messages one after another
// while reading replies, and ends with exit_code_ set.
class client_connection {
public:
  client_connection(net::io_context& ioc, const client_options& options, nudge::net::ws_url url,
                    std::vector<outgoing> messages)
      : options_(options), url_(std::move(url)), resolver_(ioc), ws_(ioc), timer_(ioc),
        messages_(std::move(messages)) {
    for (const auto& m : messages_) {
      if (m.id)
        ++expected_ids_[*m.id];
      else
        ++expected_anonymous_;
    }
    remaining_ = messages_.size();
  }

  int exit_code() const { return exit_code_; }

  void start() {
    resolver_.async_resolve(url_.host, url_.port,
                            [this](beast::error_code ec, tcp::resolver::results_type results) {
                              on_resolve(ec, std::move(results));
                            });
  }

private:
  void on_resolve(beast::error_code ec, const tcp::resolver::results_type& results) {
    if (ec)
      return connect_failed("cannot resolve " + url_.host + ": " + ec.message());
    beast::get_lowest_layer(ws_).expires_after(connect_timeout);
    beast::get_lowest_layer(ws_).async_connect(
        results, [this](beast::error_code ec2, const tcp::endpoint&) { on_connect(ec2); });
  }

  void on_connect(beast::error_code ec) {
    if (ec)
      return connect_failed(ec.message());
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& req) { req.set(http::field::user_agent, "nudge-client"); }));
    const std::string host = url_.host.find(':') != std::string::npos
                                 ? "[" + url_.host + "]:" + url_.port
                                 : url_.host + ":" + url_.port;
    ws_.async_handshake(response_, host, url_.target,
                        [this](beast::error_code ec2) { on_handshake(ec2); });
  }

  void on_handshake(beast::error_code ec) {
    if (ec) {
      if (response_.result_int() != 0) {
        std::string body = response_.body();
        if (body.size() > 500)
          body.resize(500);
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r'))
          body.pop_back();
        return connect_failed("HTTP " + std::to_string(response_.result_int()) + " " +
                              std::string(response_.reason()) + (body.empty() ? "" : ": " + body));
      }
      return connect_failed(ec.message());
    }
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    ws_.auto_fragment(false);
    do_read();
    arm_timer();
    if (messages_.empty())
      return maybe_done();
    do_write();
  }

  void connect_failed(const std::string& what) {
    std::cerr << "nudge client: cannot connect to " << options_.url << ": " << what << "\n";
    exit_code_ = 1;
  }

  void do_write() {
    const outgoing& m = messages_[next_];
    ws_.binary(m.binary);
    ws_.async_write(net::buffer(m.payload),
                    [this](beast::error_code ec, std::size_t) { on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    if (done_)
      return;
    if (ec)
      return finish(1, "sending to " + options_.url + " failed: " + ec.message());
    arm_timer();
    if (++next_ < messages_.size())
      return do_write();
    maybe_done();
  }

  void do_read() {
    ws_.async_read(buffer_, [this](beast::error_code ec, std::size_t) { on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (done_)
      return;
    if (ec) {
      return finish(1, "connection to " + options_.url + " ended (" + ec.message() + ") with " +
                           std::to_string(remaining_) + " of " + std::to_string(messages_.size()) +
                           " replies missing");
    }
    const auto data = buffer_.data();
    handle_reply(static_cast<const char*>(data.data()), data.size(), ws_.got_binary());
    buffer_.consume(buffer_.size());
    arm_timer();
    maybe_done();
    if (!done_)
      do_read();
  }

  void handle_reply(const char* data, std::size_t size, bool binary) {
    std::string line;
    if (binary) {
      auto json = binary_reply_as_json(data, size);
      if (!json) {
        std::cerr << "nudge client: a binary reply of " << size << " bytes is not MessagePack\n";
        return;
      }
      line = std::move(*json);
    } else {
      line.assign(data, size);
    }
    rapidjson::Document doc;
    const bool object = policies::parse_json(doc, line).ok() && doc.IsObject();
    if (object && line.find_first_of("\r\n") != std::string::npos) {
      // One reply, one line: re-serialise pretty-printed JSON compactly.
      rapidjson::StringBuffer buffer;
      json_writer w(buffer);
      doc.Accept(w);
      line.assign(buffer.GetString(), buffer.GetSize());
    }
    for (char& c : line)
      if (c == '\n' || c == '\r')
        c = ' ';
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
    if (!object)
      return;

    auto id = doc.FindMember("id");
    if (id != doc.MemberEnd() && id->value.IsString()) {
      auto it = expected_ids_.find(std::string(id->value.GetString(), id->value.GetStringLength()));
      if (it != expected_ids_.end() && it->second > 0) {
        --it->second;
        --remaining_;
      }
      return;
    }
    // An error without a readable id answers a line whose id we could not read either.
    auto type = doc.FindMember("type");
    const bool is_error =
        type != doc.MemberEnd() && type->value.IsString() &&
        std::string_view(type->value.GetString(), type->value.GetStringLength()) == "error";
    if (is_error && expected_anonymous_ > 0) {
      --expected_anonymous_;
      --remaining_;
    }
  }

  void arm_timer() {
    timer_.expires_after(options_.reply_timeout);
    timer_.async_wait([this](beast::error_code ec) {
      if (ec || done_)
        return;
      finish(1, "no reply from " + options_.url + " for " +
                    std::to_string(options_.reply_timeout.count()) + " ms; " +
                    std::to_string(remaining_) + " of " + std::to_string(messages_.size()) +
                    " replies missing");
    });
  }

  void maybe_done() {
    if (done_ || next_ < messages_.size() || remaining_ > 0)
      return;
    done_ = true;
    exit_code_ = 0;
    timer_.cancel();
    ws_.async_close(websocket::close_code::normal, [this](beast::error_code) {
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
    });
  }

  void finish(int code, const std::string& message) {
    if (done_)
      return;
    done_ = true;
    exit_code_ = code;
    std::cerr << "nudge client: " << message << "\n";
    timer_.cancel();
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  const client_options& options_;
  nudge::net::ws_url url_;
  tcp::resolver resolver_;
  websocket::stream<beast::tcp_stream> ws_;
  net::steady_timer timer_;
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  std::vector<outgoing> messages_;
  std::map<std::string, std::size_t> expected_ids_;
  std::size_t expected_anonymous_ = 0;
  std::size_t remaining_ = 0; // replies still due
  std::size_t next_ = 0;      // the message being written
  bool done_ = false;
  int exit_code_ = 1;
};

} // namespace

int run_client(const client_options& options) {
  try {
    std::string error;
    auto url = nudge::net::parse_ws_url(options.url, error);
    if (!url) {
      std::cerr << "nudge client: " << options.url << ": " << error << "\n";
      return 2;
    }
    if (!options.key.empty())
      nudge::net::append_key(url->target, options.key);
    if (options.reply_timeout.count() <= 0) {
      std::cerr << "nudge client: the reply timeout must be positive\n";
      return 2;
    }
    std::vector<outgoing> messages;
    if (!read_input(options, messages))
      return 2;

    net::io_context ioc(1);
    client_connection connection(ioc, options, std::move(*url), std::move(messages));
    connection.start();
    ioc.run();
    return connection.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "nudge client: " << e.what() << "\n";
    return 1;
  }
}

} // namespace nudge::app
