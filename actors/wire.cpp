#include "actors/wire.hpp"

#include "policies/json.hpp"
#include "policies/json_writer.hpp"

#include <msgpack.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <limits>

namespace nudge::actors {

namespace {

using json_writer = policies::json_writer;

void pack_value(msgpack::packer<msgpack::sbuffer>& pk, const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType: pk.pack_nil(); break;
    case rapidjson::kFalseType: pk.pack_false(); break;
    case rapidjson::kTrueType: pk.pack_true(); break;
    case rapidjson::kStringType: pk.pack_str(v.GetStringLength()); pk.pack_str_body(v.GetString(), v.GetStringLength()); break;
    case rapidjson::kNumberType:
      if (v.IsInt64()) pk.pack_int64(v.GetInt64());
      else if (v.IsUint64()) pk.pack_uint64(v.GetUint64());
      else pk.pack_double(v.GetDouble());
      break;
    case rapidjson::kArrayType:
      pk.pack_array(v.Size());
      for (const auto& e : v.GetArray()) pack_value(pk, e);
      break;
    case rapidjson::kObjectType:
      pk.pack_map(v.MemberCount());
      for (const auto& m : v.GetObject()) {
        pk.pack_str(m.name.GetStringLength());
        pk.pack_str_body(m.name.GetString(), m.name.GetStringLength());
        pack_value(pk, m.value);
      }
      break;
  }
}

bool write_object(json_writer& w, const msgpack::object& o, int depth) {
  if (depth <= 0)
    return false;
  switch (o.type) {
    case msgpack::type::NIL: return w.Null();
    case msgpack::type::BOOLEAN: return w.Bool(o.via.boolean);
    case msgpack::type::POSITIVE_INTEGER: return w.Uint64(o.via.u64);
    case msgpack::type::NEGATIVE_INTEGER: return w.Int64(o.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      if (!std::isfinite(o.via.f64)) return false;
      return w.Double(o.via.f64);
    case msgpack::type::STR: return w.String(o.via.str.ptr, o.via.str.size);
    case msgpack::type::ARRAY:
      w.StartArray();
      for (std::uint32_t i = 0; i < o.via.array.size; ++i)
        if (!write_object(w, o.via.array.ptr[i], depth - 1)) return false;
      return w.EndArray();
    case msgpack::type::MAP:
      w.StartObject();
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) return false;
        w.Key(kv.key.via.str.ptr, kv.key.via.str.size);
        if (!write_object(w, kv.val, depth - 1)) return false;
      }
      return w.EndObject();
    default: return false;  // BIN and EXT have no JSON form
  }
}

}  // namespace

std::string error_reply(std::string_view id, std::string_view code, std::string_view message) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  w.Key("type"); w.String("error");
  w.Key("id");
  if (id.empty()) w.Null(); else w.String(id.data(), id.size());
  w.Key("code"); w.String(code.data(), code.size());
  w.Key("message"); w.String(message.data(), message.size());
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string suppressed_reply(std::string_view id, bool decision) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  w.Key("type"); w.String(decision ? "decision" : "ack");
  w.Key("id");
  if (id.empty()) w.Null(); else w.String(id.data(), id.size());
  w.Key("suppressed"); w.Bool(true);
  if (decision) {
    w.Key("actions");
    w.StartArray();
    w.EndArray();
  }
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string http_error(std::string_view code, std::string_view message, std::optional<std::string_view> id,
                       std::span<const policies::problem> details) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code"); w.String(code.data(), code.size());
  w.Key("message"); w.String(message.data(), message.size());
  if (id) {
    w.Key("id");
    if (id->empty()) w.Null(); else w.String(id->data(), id->size());
  }
  if (!details.empty()) {
    w.Key("details");
    w.StartArray();
    for (const auto& p : details) {
      w.StartObject();
      w.Key("path"); w.String(p.path);
      w.Key("message"); w.String(p.message);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string mark_duplicate(std::string_view json_reply) {
  std::string out(json_reply);
  auto end = out.rfind('}');
  if (end == std::string::npos)
    return out;
  out.replace(end, 1, ",\"duplicate\":true}");
  return out;
}

bool json_to_msgpack(std::string_view json, std::string& out) {
  rapidjson::Document doc;
  if (!policies::parse_json(doc, json).ok())
    return false;
  msgpack::sbuffer sbuf;
  msgpack::packer<msgpack::sbuffer> pk(sbuf);
  pack_value(pk, doc);
  out.assign(sbuf.data(), sbuf.size());
  return true;
}

bool msgpack_to_json(std::string_view bytes, std::string& out, int max_depth) {
  try {
    std::size_t off = 0;
    auto limit = msgpack::unpack_limit(65536, 65536, bytes.size(), 65536, 65536, max_depth);
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), bytes.size(), off, nullptr, nullptr, limit);
    if (off != bytes.size())
      return false;
    rapidjson::StringBuffer buf;
    json_writer w(buf);
    if (!write_object(w, oh.get(), max_depth))
      return false;
    out.assign(buf.GetString(), buf.GetSize());
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace nudge::actors
