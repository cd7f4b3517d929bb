#include "net/decoder.hpp"

#include "actors/wire.hpp"
#include "net/detail/json_depth.hpp"
#include "policies/detail/text.hpp"
#include "policies/json.hpp"

#include <openssl/evp.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>

namespace nudge::net {

using actors::inbound;
using actors::message_kind;
using policies::timestamp;
using policies::detail::pointer_append;

namespace {

constexpr int max_property_depth = 8;

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 128)
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 64)
    return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

int digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size())
    return -1;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i])))
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

std::string json_text(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

bool to_scalar(const rapidjson::Value& v, policies::scalar& out) {
  if (v.IsNull()) out = std::monostate{};
  else if (v.IsBool()) out = v.GetBool();
  else if (v.IsNumber()) out = v.GetDouble();
  else if (v.IsString()) out = std::string(v.GetString(), v.GetStringLength());
  else return false;
  return true;
}

void flatten(const rapidjson::Value& obj, std::string& prefix, std::vector<policies::property>& out) {
  for (const auto& m : obj.GetObject()) {
    auto len = prefix.size();
    if (!prefix.empty()) prefix.push_back('.');
    prefix.append(m.name.GetString(), m.name.GetStringLength());
    if (m.value.IsObject()) {
      flatten(m.value, prefix, out);
    } else {
      policies::scalar s;
      if (!to_scalar(m.value, s))
        s = json_text(m.value);  // arrays are kept as their JSON text
      out.push_back({prefix, std::move(s)});
    }
    prefix.resize(len);
  }
}

std::string sha256_hex(std::string_view s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

}  // namespace

/// RFC 3339 (`2026-11-24T10:00:00Z`, fractions and offsets allowed) → UTC ms.
std::optional<timestamp> parse_rfc3339(std::string_view s) {
  int y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
  int h = digits(s, 11, 2), mi = digits(s, 14, 2), se = digits(s, 17, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60 ||
      s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
    return std::nullopt;
  std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(mo)},
                                  std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok())
    return std::nullopt;
  std::size_t pos = 19;
  long long ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (n < 3) ms = ms * 10 + (s[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0)
      return std::nullopt;
    for (; n < 3; ++n) ms *= 10;
  }
  long long offset_min = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = digits(s, pos + 1, 2), om = digits(s, pos + 4, 2);
    if (oh < 0 || om < 0 || pos + 3 >= s.size() || s[pos + 3] != ':')
      return std::nullopt;
    offset_min = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size())
    return std::nullopt;
  auto days = std::chrono::sys_days{ymd};
  return std::chrono::time_point_cast<std::chrono::milliseconds>(days) + std::chrono::hours(h) +
         std::chrono::minutes(mi) + std::chrono::seconds(se) + std::chrono::milliseconds(ms) -
         std::chrono::minutes(offset_min);
}

// One message's parse lives in a small arena that is reset before the next parse: no
// allocation for a typical message, and nothing accumulates over a connection's life
// (a reused rapidjson::Document keeps every earlier parse's values in its pool until
// it is destroyed). A larger message spills into chunks that the next reset frees.
struct decoder::impl {
  // Measured: a retail event of ~250 bytes takes ~450 bytes of values and ~830 of
  // parse stacks (the document's and the reader's).
  using pool = rapidjson::MemoryPoolAllocator<>;
  static constexpr std::size_t spill_chunk = 4096;
  alignas(8) char value_arena[1024];
  alignas(8) char stack_arena[2048];
  pool values{value_arena, sizeof value_arena, spill_chunk};
  pool stack{stack_arena, sizeof stack_arena, spill_chunk};
  rapidjson::GenericDocument<rapidjson::UTF8<>, pool, pool> doc{&values, 256, &stack};
  std::string text;

  void reset() {
    values.Clear();
    stack.Clear();  // the document's parse stack was released when its last parse ended
  }
};

decoder::decoder(const gateway_options& opts) : opts_(opts), impl_(std::make_unique<impl>()) {
}

decoder::~decoder() = default;

const identity_rule* decoder::rule(std::string_view type) const {
  for (const auto& r : opts_.identities)
    if (r.type == type)
      return &r;
  return nullptr;
}

bool decoder::normalize(const identity_rule& r, std::string_view raw, std::string& out) const {
  for (const auto& b : r.blocked_exact)
    if (raw == b)
      return false;
  for (const auto& re : r.blocked_patterns)
    if (std::regex_search(raw.begin(), raw.end(), re))
      return false;
  out.clear();
  switch (r.normalize) {
    case normalizer::none: out.assign(raw); break;
    case normalizer::email: {
      auto b = raw.find_first_not_of(" \t\r\n");
      auto e = raw.find_last_not_of(" \t\r\n");
      if (b != std::string_view::npos)
        for (char c : raw.substr(b, e - b + 1)) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      break;
    }
    case normalizer::phone:
      for (char c : raw)
        if (c == '+' || std::isdigit(static_cast<unsigned char>(c))) out.push_back(c);
      break;
  }
  if (out.empty())
    return false;
  if (r.hash)
    out = sha256_hex(out);
  return true;
}

bool decoder::decode(std::string_view bytes, actors::wire_format fmt, const stream_source& source, inbound& out,
                     decode_error& err) {
  std::string_view json = bytes;
  if (fmt == actors::wire_format::msgpack) {
    if (!actors::msgpack_to_json(bytes, impl_->text)) {
      err = {"", "invalid_message", "not a valid MessagePack map", ""};
      return false;
    }
    json = impl_->text;
  }
  impl_->reset();
  auto& doc = impl_->doc;
  if (auto parsed = policies::parse_json(doc, json, &impl_->stack); !parsed.ok()) {
    err = {"", "invalid_message", parsed.describe(), ""};
    return false;
  }
  return decode_value(static_cast<const rapidjson::Value*>(&doc), source, out, err);
}

std::string message_id(const void* value) {
  const auto& v = *static_cast<const rapidjson::Value*>(value);
  if (!v.IsObject())
    return {};
  auto idm = v.FindMember("id");
  if (idm == v.MemberEnd() || !idm->value.IsString())
    return {};
  std::string_view id{idm->value.GetString(), idm->value.GetStringLength()};
  return valid_id(id) ? std::string(id) : std::string();
}

bool decoder::decode_value(const void* value, const stream_source& source, inbound& out, decode_error& err,
                           bool need_identities) {
  const auto& v = *static_cast<const rapidjson::Value*>(value);
  bool id_in_out = false;  // the valid id moves into `out` (below); a failure then copies it back
  auto fail = [&](std::string code, std::string path, std::string_view what) {
    if (id_in_out)
      err.id = out.id;
    err.code = std::move(code);
    err.message = path.empty() ? std::string(what) : path + ": " + std::string(what);
    err.path = std::move(path);
    return false;
  };
  err.id.clear();
  if (!v.IsObject())
    return fail("invalid_message", "", "a message is a JSON object");
  auto idm = v.FindMember("id");
  if (idm != v.MemberEnd() && idm->value.IsString() && valid_id({idm->value.GetString(), idm->value.GetStringLength()}))
    err.id.assign(idm->value.GetString(), idm->value.GetStringLength());
  auto typem = v.FindMember("type");
  if (typem == v.MemberEnd() || !typem->value.IsString())
    return fail("invalid_message", "/type", "required, one of event, consent, feedback, decide");
  std::string_view type{typem->value.GetString(), typem->value.GetStringLength()};
  out = inbound{};
  if (type == "event") out.kind = message_kind::event;
  else if (type == "consent") out.kind = message_kind::consent;
  else if (type == "feedback") out.kind = message_kind::feedback;
  else if (type == "decide") out.kind = message_kind::decide;
  else return fail("invalid_message", "/type", "must be one of event, consent, feedback, decide");
  if (idm == v.MemberEnd() || !idm->value.IsString())
    return fail("invalid_message", "/id", "required string");
  if (err.id.empty())
    return fail("invalid_message", "/id", "1-128 printable ASCII characters");
  out.id = std::move(err.id);
  err.id.clear();
  id_in_out = true;
  out.source = source.id;
  out.channel = source.channel;

  for (const auto& m : v.GetObject()) {
    std::string_view key{m.name.GetString(), m.name.GetStringLength()};
    const auto& val = m.value;
    auto str = [&]() { return std::string(val.GetString(), val.GetStringLength()); };
    if (key == "type" || key == "id") {
      continue;
    } else if (key == "identities") {
      if (!val.IsObject() || val.MemberCount() == 0)
        return fail("invalid_message", "/identities", "an object with at least one identity");
      out.identities.reserve(val.MemberCount());
      const auto members = val.GetObject();
      for (auto idv = members.begin(); idv != members.end(); ++idv) {
        std::string_view t{idv->name.GetString(), idv->name.GetStringLength()};
        const auto* r = rule(t);
        if (!r)
          return fail("unknown_identity_type", pointer_append("/identities", t), "not a configured identity type");
        // A message carries at most one value per type (API.md section 5): a key given
        // twice (JSON allows it, a MessagePack map may hold it) is refused, not resolved
        // by whichever value a reader keeps.
        if (std::any_of(members.begin(), idv, [t](const auto& m) {
              return std::string_view(m.name.GetString(), m.name.GetStringLength()) == t;
            }))
          return fail("invalid_message", pointer_append("/identities", t), "given more than once");
        const auto& value = idv->value;
        if (!value.IsString() || value.GetStringLength() < 1 || value.GetStringLength() > 256)
          return fail("invalid_message", pointer_append("/identities", t), "a string of 1-256 characters");
        std::string norm;
        if (normalize(*r, {value.GetString(), value.GetStringLength()}, norm))
          out.identities.push_back({std::string(t), std::move(norm)});
        else if (opts_.blocked_seen)
          opts_.blocked_seen->fetch_add(1, std::memory_order_relaxed);
      }
    } else if (key == "ts") {
      if (!val.IsString())
        return fail("invalid_message", "/ts", "an RFC 3339 timestamp string");
      auto ts = parse_rfc3339({val.GetString(), val.GetStringLength()});
      if (!ts)
        return fail("invalid_message", "/ts", "not an RFC 3339 timestamp");
      auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
      if (*ts > now + std::chrono::minutes(5))
        return fail("invalid_message", "/ts", "more than 5 minutes in the future");
      out.ts = ts;
    } else if (key == "channel") {
      if (!val.IsString() || !valid_name({val.GetString(), val.GetStringLength()}))
        return fail("invalid_message", "/channel", "[a-z0-9_.-]{1,64}");
      out.channel = str();
    } else if (key == "explain") {
      if (!val.IsBool())
        return fail("invalid_message", "/explain", "true or false");
      out.explain = val.GetBool();
    } else if (key == "name" && out.kind == message_kind::event) {
      if (!val.IsString() || !valid_name({val.GetString(), val.GetStringLength()}))
        return fail("invalid_message", "/name", "[a-z0-9_.-]{1,64}");
      out.name = str();
    } else if (key == "properties" && out.kind == message_kind::event) {
      if (!val.IsObject())
        return fail("invalid_message", "/properties", "an object");
      if (detail::deeper_than(val, max_property_depth))
        return fail("invalid_message", "/properties", "nested deeper than 8");
      std::string prefix;
      out.properties.reserve(val.MemberCount());  // all of them when the object is flat
      flatten(val, prefix, out.properties);
    } else if (key == "traits" && out.kind == message_kind::event) {
      if (!val.IsObject())
        return fail("invalid_message", "/traits", "an object");
      for (const auto& t : val.GetObject()) {
        policies::scalar s;
        if (!to_scalar(t.value, s)) {
          if (detail::deeper_than(t.value, max_property_depth))
            return fail("invalid_message", "/traits", "nested deeper than 8");
          s = json_text(t.value);
        }
        out.traits.push_back({std::string(t.name.GetString(), t.name.GetStringLength()), std::move(s), {}});
      }
    } else if (key == "purposes" && out.kind == message_kind::consent) {
      if (!val.IsObject() || val.MemberCount() == 0)
        return fail("invalid_message", "/purposes", "an object of purpose to \"granted\" or \"denied\"");
      for (const auto& p : val.GetObject()) {
        std::string purpose(p.name.GetString(), p.name.GetStringLength());
        if (std::find(opts_.purposes.begin(), opts_.purposes.end(), purpose) == opts_.purposes.end())
          return fail("invalid_message", pointer_append("/purposes", purpose), "not a configured purpose");
        actors::consent_change c{purpose, false, std::nullopt};
        const rapidjson::Value* state = &p.value;
        if (p.value.IsObject()) {
          state = nullptr;
          for (const auto& f : p.value.GetObject()) {
            std::string_view fk{f.name.GetString(), f.name.GetStringLength()};
            if (fk == "state") state = &f.value;
            else if (fk == "expires" && f.value.IsString()) {
              c.expires = parse_rfc3339({f.value.GetString(), f.value.GetStringLength()});
              if (!c.expires)
                return fail("invalid_message", "/purposes/" + purpose + "/expires", "not an RFC 3339 timestamp");
            } else
              // A configured purpose is a name (nothing to escape); the key is the sender's.
              return fail("invalid_message", pointer_append("/purposes/" + purpose, fk), "unknown key");
          }
        }
        if (!state || !state->IsString())
          return fail("invalid_message", "/purposes/" + purpose, "\"granted\" or \"denied\"");
        std::string_view sv{state->GetString(), state->GetStringLength()};
        if (sv == "granted") c.granted = true;
        else if (sv != "denied")
          return fail("invalid_message", "/purposes/" + purpose, "\"granted\" or \"denied\"");
        out.consent.push_back(std::move(c));
      }
    } else if (key == "source" && out.kind == message_kind::consent) {
      if (!val.IsString() || val.GetStringLength() > 128)
        return fail("invalid_message", "/source", "a string");
      out.consent_source = str();
    } else if (key == "decision_id" && out.kind == message_kind::feedback) {
      if (!val.IsString() || !valid_id({val.GetString(), val.GetStringLength()}))
        return fail("invalid_message", "/decision_id", "a decision id");
      out.decision_id = str();
    } else if (key == "action" && out.kind == message_kind::feedback) {
      if (!val.IsString() || val.GetStringLength() == 0 || val.GetStringLength() > 64)
        return fail("invalid_message", "/action", "an action id");
      out.action = str();
    } else if (key == "outcome" && out.kind == message_kind::feedback) {
      if (!val.IsString())
        return fail("invalid_message", "/outcome", "shown, accepted or dismissed");
      out.outcome = str();
      if (out.outcome != "shown" && out.outcome != "accepted" && out.outcome != "dismissed")
        return fail("invalid_message", "/outcome", "shown, accepted or dismissed");
    } else if (key == "placement" && out.kind == message_kind::decide) {
      if (!val.IsString() || !valid_name({val.GetString(), val.GetStringLength()}))
        return fail("invalid_message", "/placement", "[a-z0-9_.-]{1,64}");
      out.placement = str();
    } else {
      return fail("invalid_message", pointer_append("", key), "unknown key for a " + std::string(type) + " message");
    }
  }
  if (need_identities && v.FindMember("identities") == v.MemberEnd())
    return fail("invalid_message", "/identities", "required");
  if (need_identities && out.identities.empty())
    return fail("invalid_message", "/identities", "every value is a blocked placeholder");
  if (out.kind == message_kind::event && out.name.empty())
    return fail("invalid_message", "/name", "required");
  if (out.kind == message_kind::consent) {
    if (out.consent.empty())
      return fail("invalid_message", "/purposes", "required");
  }
  if (out.kind == message_kind::feedback && (out.action.empty() || out.outcome.empty()))
    return fail("invalid_message", out.action.empty() ? "/action" : "/outcome", "required");
  // Highest-priority identity first: the resolver routes by it.
  if (out.identities.size() > 1)  // (std::stable_sort allocates a buffer even for one)
    std::stable_sort(out.identities.begin(), out.identities.end(), [this](const auto& a, const auto& b) {
      return rule(a.type)->priority < rule(b.type)->priority;
    });
  return true;
}

}  // namespace nudge::net
