#include "net/http_session.hpp"

#include "actors/wire.hpp"
#include "net/decoder.hpp"
#include "net/detail/json_depth.hpp"
#include "net/gateway.hpp"
#include "actors/directory.hpp"
#include "actors/ids.hpp"
#include "actors/journal.hpp"
#include "policies/policy.hpp"
#include "policies/json.hpp"
#include "net/webhook.hpp"
#include "net/ws_session.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <mutex>

namespace nudge::net {

namespace {

using response = http::response<http::string_body>;

/// Start line plus headers of one request; past it: 431 and close.
constexpr std::uint32_t header_limit_bytes = 16 * 1024;

std::string_view target_path(std::string_view target) {
  auto q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

/// How a query decodes `+`: as a space (HTML forms), or as itself where values hold a
/// `+` that clients paste unencoded (phone numbers, plus-addresses); `%20` is a space.
enum class plus_sign { space, literal };

/// The value of query parameter `name`, percent-decoded, or nullopt.
std::optional<std::string> query_param(std::string_view target, std::string_view name,
                                       plus_sign plus = plus_sign::space) {
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return std::nullopt;
  auto query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      std::string out;
      auto raw = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '%' && i + 2 < raw.size()) {
          auto hex = std::string(raw.substr(i + 1, 2));
          char* end = nullptr;
          long v = std::strtol(hex.c_str(), &end, 16);
          if (end == hex.c_str() + 2) {
            out.push_back(static_cast<char>(v));
            i += 2;
            continue;
          }
        }
        out.push_back(raw[i] == '+' && plus == plus_sign::space ? ' ' : raw[i]);
      }
      return out;
    }
    if (amp == std::string_view::npos)
      break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::string_view bearer(const http::request<http::string_body>& req) {
  auto it = req.find(http::field::authorization);
  if (it == req.end())
    return {};
  std::string_view v = it->value();
  if (v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer "))
    return v.substr(7);
  return {};
}

response make_response(unsigned version, http::status status, std::string body,
                       std::string_view type = "application/json") {
  response res{status, version};
  res.set(http::field::server, "nudge");
  res.set(http::field::content_type, type);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response error_response(unsigned version, http::status status, std::string_view code, std::string_view message) {
  return make_response(version, status, actors::http_error(code, message));
}

/// 405 with `Allow`, which RFC 9110 requires of it: the methods `allow` ("GET, PUT").
response method_not_allowed(unsigned version, std::string_view allow) {
  auto res = error_response(version, http::status::method_not_allowed, "invalid_message", "use " + std::string(allow));
  res.set(http::field::allow, allow);
  return res;
}

/// The HTTP error answering one message of POST /v1/events or /v1/decide (API.md
/// section 4), made from a refusal that has a JSON pointer or none.
std::string message_error(std::string_view id, std::string_view code, std::string_view message,
                          std::string_view path = {}) {
  if (path.empty())
    return actors::http_error(code, message, id);
  // `message` is "POINTER: what"; the detail holds the two apart, as a policy's problems do.
  const policies::problem detail{std::string(path),
                                 std::string(message.substr(std::min(message.size(), path.size() + 2)))};
  return actors::http_error(code, message, id, {&detail, 1});
}

/// A message-level error reply (`{"type":"error",...}`, made by a profile or the journal)
/// as message_error(); any other reply unchanged.
std::string as_message_error(std::string reply) {
  rapidjson::Document d;
  if (!policies::parse_json(d, reply).ok() || !d.IsObject())
    return reply;
  auto text = [&](const char* key) -> std::string_view {
    auto m = d.FindMember(key);
    if (m == d.MemberEnd() || !m->value.IsString())
      return {};
    return {m->value.GetString(), m->value.GetStringLength()};
  };
  if (text("type") != "error")
    return reply;
  return message_error(text("id"), text("code"), text("message"));
}

/// How the replies of one request become its response body.
enum class framing {
  single,   ///< one reply as it is, an error reply as an HTTP error (API.md section 4)
  batch,    ///< `{"results":[...]}`, one reply per message, errors included (status 200)
};

/// Collects the replies of one HTTP request (one message or a batch) and writes the
/// response once all are in. deliver() may run on any thread.
class http_reply_sink : public actors::reply_sink {
public:
  http_reply_sink(std::shared_ptr<http_session> session, tcp::socket::executor_type ex, unsigned version,
                  std::size_t count, framing how)
    : session_(std::move(session)), ex_(std::move(ex)), version_(version), results_(count), remaining_(count),
      framing_(how) {}

  void deliver(std::size_t slot, std::string bytes, int status) override {
    {
      std::lock_guard<std::mutex> guard(mtx_);
      results_[slot] = std::move(bytes);
      if (framing_ != framing::batch)
        status_ = status;
    }
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      finish();
  }

  /// For replies made on the session's strand before anything was dispatched.
  void set(std::size_t slot, std::string bytes, int status) { deliver(slot, std::move(bytes), status); }

private:
  void finish() {
    std::string body;
    if (framing_ == framing::batch) {
      body = "{\"results\":[";
      for (std::size_t i = 0; i < results_.size(); ++i) {
        if (i) body.push_back(',');
        body += results_[i];
      }
      body += "]}";
    } else if (status_ < 200 || status_ > 299) {
      // Every HTTP error is API.md section 4's shape, also one that a profile or the
      // journal answered an operator's request or a webhook with (storage failed).
      body = as_message_error(std::move(results_[0]));
    } else {
      body = std::move(results_[0]);
    }
    asio::post(ex_, [s = session_, v = version_, status = status_, body = std::move(body)]() mutable {
      s->write(make_response(v, static_cast<http::status>(status), std::move(body)));
    });
  }

  std::shared_ptr<http_session> session_;
  tcp::socket::executor_type ex_;
  unsigned version_;
  std::mutex mtx_;
  std::vector<std::string> results_;
  std::atomic<std::size_t> remaining_;
  framing framing_;
  int status_ = 200;
};

int status_for_code(std::string_view code) {
  if (code == "unauthorized") return 401;
  if (code == "too_large") return 413;
  if (code == "rate_limited") return 429;
  if (code == "overloaded") return 503;
  if (code == "internal") return 500;
  return 400;
}

}  // namespace

http_session::http_session(flex_stream&& stream, gateway& gw, std::shared_ptr<void> slot)
  : stream_(std::move(stream)), gw_(gw), slot_(std::move(slot)) {
  gw_.connections.fetch_add(1, std::memory_order_relaxed);
}

http_session::~http_session() {
  gw_.connections.fetch_sub(1, std::memory_order_relaxed);
}

void http_session::run() {
  if (!stream_.is_tls()) {
    asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&http_session::do_read, shared_from_this()));
    return;
  }
  asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->stream_.expires_after(self->gw_.options().http_timeout);
    self->stream_.async_handshake(beast::bind_front_handler(&http_session::on_handshake, self));
  });
}

void http_session::on_handshake(beast::error_code ec) {
  if (ec)
    return;  // not TLS, or a failed handshake: nothing to answer
  do_read();
}

void http_session::do_read() {
  parser_.emplace();
  parser_->body_limit(gw_.options().max_message_bytes);
  parser_->header_limit(header_limit_bytes);
  stream_.expires_after(gw_.options().http_timeout);
  stream_.async_read(buffer_, *parser_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t) {
  if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted) {
    stream_.shutdown();
    return;
  }
  if (ec == http::error::body_limit) {
    keep_alive_ = false;
    return write(error_response(11, http::status::payload_too_large, "too_large", "body over max_message_bytes"));
  }
  if (ec == http::error::header_limit) {
    keep_alive_ = false;
    return write(error_response(11, http::status::request_header_fields_too_large, "too_large",
                                "the request line and headers are over 16 KiB"));
  }
  if (ec) {
    keep_alive_ = false;
    return write(error_response(11, http::status::bad_request, "invalid_message", "malformed HTTP request"));
  }
  auto req = parser_->release();
  version_ = req.version();
  keep_alive_ = req.keep_alive();
  route(req);
}

void http_session::write(http::response<http::string_body> res) {
  res.version(version_);
  res.keep_alive(keep_alive_);
  bool close = res.need_eof();
  auto sp = std::make_shared<response>(std::move(res));
  response_ = sp;
  stream_.async_write(*sp, beast::bind_front_handler(&http_session::on_write, shared_from_this(), close));
}

void http_session::on_write(bool close, beast::error_code ec, std::size_t) {
  response_.reset();
  if (ec)
    return;
  if (close) {
    stream_.shutdown();
    return;
  }
  do_read();
}

void http_session::policy_update(http::request<http::string_body>& req, bool activate) {
  auto v = req.version();
  auto res = policies::compile(req.body(), gw_.options().policy_limits);
  if (!res.compiled) {
    auto msg = "the policy has " + std::to_string(res.problems.size()) + " problem(s); nothing was activated";
    return write(make_response(v, http::status::bad_request,
                               actors::http_error("invalid_message", msg, std::nullopt, res.problems)));
  }
  std::string version(res.compiled->version());
  std::string body = "{\"valid\":true,\"version\":";
  {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.String(version.c_str(), static_cast<rapidjson::SizeType>(version.size()));
    body.append(buf.GetString(), buf.GetSize());
  }
  if (!activate)
    return write(make_response(v, http::status::ok, body + "}"));
  // Persist first, then swap: decisions already running keep the policy they hold.
  actors::write_record rec;
  rec.meta.emplace_back("active_policy", std::string(res.compiled->source()));
  rec.sink = std::make_shared<http_reply_sink>(shared_from_this(), stream_.get_executor(), v, 1, framing::single);
  rec.reply = body + ",\"active\":true}";
  rec.on_done = [&ctx = gw_.ctx(), compiled = res.compiled](bool ok) {
    if (ok)
      ctx.policy.set(compiled);
  };
  gw_.ctx().writer->submit(std::move(rec));
}

void http_session::consent_update(http::request<http::string_body>& req, const std::string& requested_id) {
  auto v = req.version();
  if (requested_id.empty() || requested_id.find('/') != std::string::npos)
    return write(error_response(v, http::status::not_found, "not_found", "no such profile"));
  const auto profile_id = gw_.resolver().canonical(requested_id);
  if (!gw_.profile_exists(profile_id) && !gw_.ctx().dir->is_active(profile_id))
    return write(error_response(v, http::status::not_found, "not_found", "no such profile"));
  rapidjson::Document doc;
  if (const auto parsed = policies::parse_json(doc, req.body()); !parsed.ok())
    return write(error_response(v, http::status::bad_request, "invalid_message", parsed.describe()));
  if (!doc.IsObject())
    return write(error_response(v, http::status::bad_request, "invalid_message", "the body is not a JSON object"));
  for (const auto& m : doc.GetObject()) {
    std::string_view k{m.name.GetString(), m.name.GetStringLength()};
    if (k != "purposes" && k != "source")
      return write(error_response(v, http::status::bad_request, "invalid_message", "/" + std::string(k) + ": unknown key"));
  }
  // The body is a consent message without identities: the profile is in the path.
  auto& alloc = doc.GetAllocator();
  auto id = actors::new_id('c');
  doc.AddMember("type", "consent", alloc);
  doc.AddMember("id", rapidjson::Value(id.c_str(), static_cast<rapidjson::SizeType>(id.size()), alloc), alloc);
  static const stream_source admin_source{"admin", "", "admin", {}, nullptr};
  auto env = actors::make_envelope();
  decoder dec(gw_.options());
  decode_error err;
  if (!dec.decode_value(&doc, admin_source, env->msg, err, false))
    return write(error_response(v, http::status::bad_request, err.code, err.message));
  env->msg.admin = true;
  if (env->msg.consent_source.empty())
    env->msg.consent_source = "admin";
  env->sink = std::make_shared<http_reply_sink>(shared_from_this(), stream_.get_executor(), v, 1, framing::single);
  gw_.dispatch_to(profile_id, std::move(env));
}

bool http_session::privacy_request(http::request<http::string_body>& req, std::string_view rest) {
  auto v = req.version();
  auto method = req.method();
  actors::message_kind kind;
  std::string_view id = rest;
  if (rest.size() > 7 && rest.substr(rest.size() - 7) == "/export") {
    kind = actors::message_kind::export_profile;
    id = rest.substr(0, rest.size() - 7);
  } else if (rest.size() > 6 && rest.substr(rest.size() - 6) == "/audit") {
    kind = actors::message_kind::audit_profile;
    id = rest.substr(0, rest.size() - 6);
  } else if (method == http::verb::delete_ && rest.find('/') == std::string_view::npos) {
    kind = actors::message_kind::erase_profile;
  } else {
    return false;
  }
  bool erase = kind == actors::message_kind::erase_profile;
  if (!erase && method != http::verb::get) {
    write(method_not_allowed(v, "GET"));
    return true;
  }
  bool suppress = false;
  if (erase) {
    auto flag = query_param(req.target(), "suppress");
    if (flag && *flag != "true" && *flag != "false") {
      write(error_response(v, http::status::bad_request, "invalid_message", "suppress is true or false"));
      return true;
    }
    suppress = flag && *flag == "true";
  }
  auto profile_id = gw_.find_profile(std::string(id));
  if (!profile_id) {
    write(error_response(v, http::status::not_found, "not_found", "no such profile"));
    return true;
  }
  auto env = actors::make_envelope();
  env->msg.kind = kind;
  env->msg.suppress = suppress;
  env->msg.erase_reason = erase ? "request" : "";
  env->sink = std::make_shared<http_reply_sink>(shared_from_this(), stream_.get_executor(), v, 1, framing::single);
  gw_.dispatch_to(*profile_id, std::move(env));
  return true;
}

void http_session::route(http::request<http::string_body>& req) {
  auto v = req.version();
  auto path = target_path(req.target());
  auto method = req.method();

  if (path == "/healthz") {
    if (method != http::verb::get) return write(method_not_allowed(v, "GET"));
    return write(make_response(v, http::status::ok, "{\"status\":\"ok\"}"));
  }
  if (path == "/readyz") {
    if (method != http::verb::get) return write(method_not_allowed(v, "GET"));
    if (gw_.ready.load())
      return write(make_response(v, http::status::ok, "{\"status\":\"ready\"}"));
    return write(error_response(v, http::status::service_unavailable, "overloaded", "not ready"));
  }
  if (path == "/metrics") {
    if (method != http::verb::get) return write(method_not_allowed(v, "GET"));
    return write(make_response(v, http::status::ok, gw_.metrics_text(), "text/plain; version=0.0.4"));
  }

  if (path == "/v1/stream") {
    if (method != http::verb::get) return write(method_not_allowed(v, "GET"));
    auto key = query_param(req.target(), "key");
    const stream_source* src = gw_.source_for_key(key ? std::string_view(*key) : bearer(req));
    if (!src)
      return write(error_response(v, http::status::unauthorized, "unauthorized", "a valid write key is required"));
    if (!src->allowed_origins.empty()) {
      auto it = req.find(http::field::origin);
      bool ok = false;
      if (it != req.end())
        for (const auto& o : src->allowed_origins)
          if (o == it->value()) ok = true;
      if (!ok)
        return write(error_response(v, http::status::forbidden, "unauthorized", "Origin not allowed"));
    }
    if (!websocket::is_upgrade(req))
      return write(error_response(v, http::status::bad_request, "invalid_message", "a WebSocket upgrade is required"));
    stream_.expires_never();
    std::make_shared<ws_session>(std::move(stream_), gw_, *src, std::move(slot_))->run(std::move(req));
    return;
  }

  if (path == "/v1/events" || path == "/v1/decide") {
    if (method != http::verb::post) return write(method_not_allowed(v, "POST"));
    auto key = query_param(req.target(), "key");
    const stream_source* src = gw_.source_for_key(key ? std::string_view(*key) : bearer(req));
    if (!src)
      return write(error_response(v, http::status::unauthorized, "unauthorized", "a valid write key is required"));
    auto ct = req.find(http::field::content_type);
    if (ct != req.end() && ct->value().find("json") == std::string_view::npos)
      return write(error_response(v, http::status::unsupported_media_type, "invalid_message", "send application/json"));
    rapidjson::Document doc;
    if (const auto parsed = policies::parse_json(doc, req.body()); !parsed.ok())
      return write(error_response(v, http::status::bad_request, "invalid_message", parsed.describe()));
    if (!doc.IsObject())
      return write(error_response(v, http::status::bad_request, "invalid_message", "the body is not a JSON object"));
    std::vector<const rapidjson::Value*> items;
    bool batch = false;
    if (auto b = doc.FindMember("batch"); b != doc.MemberEnd() && path == "/v1/events") {
      if (!b->value.IsArray() || b->value.Size() == 0 || b->value.Size() > 1000 || doc.MemberCount() != 1)
        return write(error_response(v, http::status::bad_request, "invalid_message", "/batch: an array of 1 to 1000 messages"));
      batch = true;
      for (const auto& e : b->value.GetArray()) items.push_back(&e);
    } else {
      items.push_back(&doc);
    }
    // A batch takes one token per message, all or nothing: nothing of it is applied.
    if (src->limiter && !src->limiter->try_take(static_cast<double>(items.size()))) {
      constexpr std::string_view exhausted = "the source's rate limit is exhausted";
      return write(batch ? error_response(v, http::status::too_many_requests, "rate_limited", exhausted)
                         : make_response(v, http::status::too_many_requests,
                                         message_error(message_id(&doc), "rate_limited", exhausted)));
    }
    decoder dec(gw_.options());
    std::vector<actors::envelope_ptr> envs;
    auto sink = std::make_shared<http_reply_sink>(shared_from_this(), stream_.get_executor(), v, items.size(),
                                                  batch ? framing::batch : framing::single);
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto env = actors::make_envelope();
      decode_error err;
      bool ok = dec.decode_value(items[i], *src, env->msg, err);
      if (ok && path == "/v1/decide" && env->msg.kind != actors::message_kind::decide) {
        ok = false;
        err.id = env->msg.id;
        err.code = "invalid_message";
        err.path = "/type";
        err.message = "/type: POST /v1/decide takes a decide message";
      }
      if (!ok && !batch)
        return write(make_response(v, static_cast<http::status>(status_for_code(err.code)),
                                   message_error(err.id, err.code, err.message, err.path)));
      if (!ok) {
        sink->set(i, actors::error_reply(err.id, err.code, err.message), status_for_code(err.code));
        continue;
      }
      env->sink = sink;
      env->slot = i;
      envs.push_back(std::move(env));
    }
    for (auto& env : envs)
      gw_.dispatch(std::move(env));
    return;
  }

  if (path.substr(0, 13) == "/v1/webhooks/") {
    auto name = path.substr(13);
    const webhook_source* src = nullptr;
    for (const auto& w : gw_.options().webhooks)
      if (w.id == name) src = &w;
    if (!src)
      return write(error_response(v, http::status::not_found, "not_found", "no webhook source of that name"));
    if (method != http::verb::post)
      return write(method_not_allowed(v, "POST"));
    auto sig = req.find("Nudge-Signature");
    if (sig == req.end() ||
        !verify_webhook_signature(sig->value(), src->secret, req.body(), std::chrono::system_clock::now(),
                                  gw_.options().webhook_tolerance))
      return write(error_response(v, http::status::unauthorized, "unauthorized",
                                  "missing, malformed, stale or wrong Nudge-Signature"));
    std::string event_json;
    mapping_error merr;
    if (!map_webhook_body(*src, req.body(), event_json, merr))
      return write(error_response(v, merr.invalid_json ? http::status::bad_request : http::status::unprocessable_entity,
                                  "invalid_message", merr.message));
    if (src->limiter && !src->limiter->try_take(1))
      return write(error_response(v, http::status::too_many_requests, "rate_limited", "the source's rate limit is exhausted"));
    stream_source as_stream{src->id, "", src->channel, {}, nullptr};
    decoder dec(gw_.options());
    auto env = actors::make_envelope();
    decode_error err;
    if (!dec.decode(event_json, actors::wire_format::json, as_stream, env->msg, err))
      return write(error_response(v, http::status::unprocessable_entity, err.code, "mapped event: " + err.message));
    env->sink = std::make_shared<http_reply_sink>(shared_from_this(), stream_.get_executor(), v, 1, framing::single);
    gw_.dispatch(std::move(env));
    return;
  }

  if (path.substr(0, 13) == "/v1/profiles/" || path == "/v1/profiles" || path == "/v1/stats" ||
      path.substr(0, 10) == "/v1/policy") {
    if (!gw_.is_admin(bearer(req)))
      return write(error_response(v, http::status::unauthorized, "unauthorized", "the admin token is required"));
    if (path == "/v1/policy/validate" || (path == "/v1/policy" && method == http::verb::put)) {
      if (method != (path == "/v1/policy" ? http::verb::put : http::verb::post))
        return write(method_not_allowed(v, "POST"));
      return policy_update(req, path == "/v1/policy");
    }
    if (path.substr(0, 13) == "/v1/profiles/" && privacy_request(req, path.substr(13)))
      return;
    if (path.size() > 21 && path.substr(0, 13) == "/v1/profiles/" && path.substr(path.size() - 8) == "/consent") {
      if (method != http::verb::put)
        return write(method_not_allowed(v, "PUT"));
      return consent_update(req, std::string(path.substr(13, path.size() - 21)));
    }
    if (method != http::verb::get) {
      // What else the path takes: PUT /v1/policy, DELETE /v1/profiles/{id} (both routed above).
      auto allow = path == "/v1/policy" ? "GET, PUT" : path.substr(0, 13) == "/v1/profiles/" ? "GET, DELETE" : "GET";
      return write(method_not_allowed(v, allow));
    }
    if (path == "/v1/stats")
      return write(make_response(v, http::status::ok, gw_.stats_json()));
    if (path == "/v1/policy") {
      auto pol = gw_.ctx().policy.get();
      return write(make_response(v, http::status::ok, std::string(pol->source())));
    }
    std::string profile_id;
    if (path == "/v1/profiles") {
      auto ident = query_param(req.target(), "identity", plus_sign::literal);
      auto colon = ident ? ident->find(':') : std::string::npos;
      if (!ident || colon == std::string::npos)
        return write(error_response(v, http::status::bad_request, "invalid_message", "identity=TYPE:VALUE is required"));
      decoder dec(gw_.options());
      const auto* rule = dec.rule(std::string_view(*ident).substr(0, colon));
      if (!rule)
        return write(error_response(v, http::status::bad_request, "unknown_identity_type", "not a configured identity type"));
      std::string norm;
      if (!dec.normalize(*rule, std::string_view(*ident).substr(colon + 1), norm))
        return write(error_response(v, http::status::not_found, "not_found", "no profile holds this identity"));
      auto pid = gw_.resolver().find({rule->type, norm});
      if (!pid)
        return write(error_response(v, http::status::not_found, "not_found", "no profile holds this identity"));
      profile_id = *pid;
    } else {
      profile_id = std::string(path.substr(13));
      if (profile_id.empty() || profile_id.find('/') != std::string::npos)
        return write(error_response(v, http::status::not_found, "not_found", "no such endpoint"));
      // A merged-away id answers the survivor (whose merged_from lists it).
      profile_id = gw_.resolver().canonical(profile_id);
      if (!gw_.profile_exists(profile_id) && !gw_.ctx().dir->is_active(profile_id))
        return write(error_response(v, http::status::not_found, "not_found", "no such profile"));
    }
    auto env = actors::make_envelope();
    env->msg.kind = actors::message_kind::get_profile;
    env->sink = std::make_shared<http_reply_sink>(shared_from_this(), stream_.get_executor(), v, 1, framing::single);
    gw_.dispatch_to(profile_id, std::move(env));
    return;
  }
  return write(error_response(v, http::status::not_found, "not_found", "no such endpoint"));
}

}  // namespace nudge::net
