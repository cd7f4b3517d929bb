#include "net/webhook.hpp"

#include "net/decoder.hpp"
#include "net/detail/json_depth.hpp"
#include "policies/json.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>

namespace nudge::net {

namespace {

/// Calls `fn` with each comma-separated part of `header`, leading spaces removed.
template <class Fn>
void for_each_part(std::string_view header, Fn fn) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto part = header.substr(0, comma);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    fn(part);
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
}

}  // namespace

std::string webhook_signature(std::string_view secret, std::string_view t, std::string_view body) {
  std::string msg;
  msg.reserve(t.size() + 1 + body.size());
  msg.append(t).push_back('.');
  msg.append(body);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), md, &len);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

bool verify_webhook_signature(std::string_view header, std::string_view secret, std::string_view body,
                              std::chrono::system_clock::time_point now, std::chrono::seconds tolerance) {
  std::string_view t;
  for_each_part(header, [&](std::string_view part) {
    if (part.substr(0, 2) == "t=") t = part.substr(2);
  });
  long long ts = 0;
  if (t.empty() || std::from_chars(t.data(), t.data() + t.size(), ts).ec != std::errc{})
    return false;
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (ts > now_s + tolerance.count() || ts < now_s - tolerance.count())
    return false;
  auto expected = webhook_signature(secret, t, body);
  // Every entry is compared, even after a match: the time taken tells nothing about which matched.
  bool match = false;
  for_each_part(header, [&](std::string_view part) {
    if (part.substr(0, 3) == "v1=" && part.size() == 3 + expected.size())
      match |= CRYPTO_memcmp(expected.data(), part.data() + 3, expected.size()) == 0;
  });
  return match;
}

namespace {

constexpr int max_body_depth = 64;

const rapidjson::Value* at(const rapidjson::Document& doc, const std::string& pointer) {
  rapidjson::Pointer p(pointer.c_str(), pointer.size());
  return p.IsValid() ? p.Get(doc) : nullptr;
}

/// A scalar identity or id value as a string (numbers are printed).
bool as_text(const rapidjson::Value& v, std::string& out) {
  if (v.IsString()) out.assign(v.GetString(), v.GetStringLength());
  else if (v.IsInt64()) out = std::to_string(v.GetInt64());
  else if (v.IsUint64()) out = std::to_string(v.GetUint64());
  else return false;
  return true;
}

}  // namespace

bool map_webhook_body(const webhook_source& src, std::string_view body, std::string& event_json, mapping_error& err) {
  rapidjson::Document doc;
  if (const auto parsed = policies::parse_json(doc, body); !parsed.ok()) {
    err.message = parsed.describe();
    err.invalid_json = true;
    return false;
  }
  if (!doc.IsObject()) {
    err.message = "the body is not a JSON object";
    return false;
  }
  // Mapped properties are copied with a recursive writer.
  if (detail::deeper_than(doc, max_body_depth)) {
    err.message = "the body nests deeper than " + std::to_string(max_body_depth) + " levels";
    return false;
  }
  std::string id, name_raw;
  const auto* idv = at(doc, src.id_pointer);
  if (!idv || !as_text(*idv, id) || id.empty()) {
    err.message = src.id_pointer + ": missing or not a string or integer (the delivery id)";
    return false;
  }
  const auto* namev = at(doc, src.name_pointer);
  if (!namev || !namev->IsString()) {
    err.message = src.name_pointer + ": missing or not a string (the event name)";
    return false;
  }
  name_raw.assign(namev->GetString(), namev->GetStringLength());
  const std::string* name = nullptr;
  for (const auto& [from, to] : src.names)
    if (from == name_raw) name = &to;
  if (!name) {
    err.message = src.name_pointer + ": \"" + name_raw + "\" is not in the source's names table";
    return false;
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("type"); w.String("event");
  w.Key("id"); w.String(id.c_str(), static_cast<rapidjson::SizeType>(id.size()));
  w.Key("name"); w.String(name->c_str(), static_cast<rapidjson::SizeType>(name->size()));
  // Absent or null (as the identity pointers read null), the event happened when it
  // arrived (API.md section 3: `ts` is optional); present, it must be a timestamp,
  // refused here with the body's pointer.
  if (const auto* tsv = src.ts_pointer.empty() ? nullptr : at(doc, src.ts_pointer); tsv && !tsv->IsNull()) {
    if (!tsv->IsString() || !parse_rfc3339({tsv->GetString(), tsv->GetStringLength()})) {
      err.message = src.ts_pointer + ": not an RFC 3339 timestamp string";
      return false;
    }
    w.Key("ts"); w.String(tsv->GetString(), tsv->GetStringLength());
  }
  w.Key("identities");
  w.StartObject();
  int found = 0;
  for (const auto& [type, pointer] : src.identities) {
    const auto* v = at(doc, pointer);
    std::string text;
    if (!v || v->IsNull() || !as_text(*v, text))
      continue;
    w.Key(type.c_str(), static_cast<rapidjson::SizeType>(type.size()));
    w.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
    ++found;
  }
  w.EndObject();
  if (found == 0) {
    err.message = "no identity pointer of the mapping found a value (" +
                  (src.identities.empty() ? std::string() : src.identities.front().second) + ", ...)";
    return false;
  }
  w.Key("properties");
  w.StartObject();
  for (const auto& [prop, pointer] : src.properties) {
    const auto* v = at(doc, pointer);
    if (!v)
      continue;
    w.Key(prop.c_str(), static_cast<rapidjson::SizeType>(prop.size()));
    v->Accept(w);
  }
  w.EndObject();
  w.EndObject();
  event_json.assign(buf.GetString(), buf.GetSize());
  return true;
}

}  // namespace nudge::net
