#include "tests/bench/reply_scanner.hpp"

#include <msgpack.hpp>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstdint>

namespace nudge::bench {
namespace {

enum class top_key { other, id, type };

top_key classify(const char* key, std::size_t size) {
  std::string_view k(key, size);
  if (k == "id")
    return top_key::id;
  if (k == "type")
    return top_key::type;
  return top_key::other;
}

// Returning false from a handler stops the parse; the scan then reads what it found.
struct json_handler : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, json_handler> {
  explicit json_handler(reply_scanner::state& s) : st(s) {}

  bool done() const { return st.has_type && (st.has_string_id || id_seen); }

  bool Default() {
    if (depth == 1 && key == top_key::id)
      id_seen = true;
    key = top_key::other;
    return !done();
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    if (depth == 1 && key == top_key::id) {
      st.id->assign(s, n);
      st.has_string_id = true;
      id_seen = true;
    } else if (depth == 1 && key == top_key::type) {
      st.has_type = true;
      st.is_error = std::string_view(s, n) == "error";
    }
    key = top_key::other;
    return !done();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    key = depth == 1 ? classify(s, n) : top_key::other;
    return true;
  }
  bool StartObject() {
    Default();
    ++depth;
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    --depth;
    return true;
  }
  bool StartArray() {
    Default();
    ++depth;
    return true;
  }
  bool EndArray(rapidjson::SizeType) {
    --depth;
    return true;
  }

  reply_scanner::state& st;
  int depth = 0;
  top_key key = top_key::other;
  bool id_seen = false;
};

struct msgpack_handler : msgpack::null_visitor {
  explicit msgpack_handler(reply_scanner::state& s) : st(s) {}

  bool done() const { return st.has_type && (st.has_string_id || id_seen); }

  bool scalar() {
    if (depth == 1 && in_value && key == top_key::id)
      id_seen = true;
    return !done();
  }
  bool visit_nil() { return scalar(); }
  bool visit_boolean(bool) { return scalar(); }
  bool visit_positive_integer(std::uint64_t) { return scalar(); }
  bool visit_negative_integer(std::int64_t) { return scalar(); }
  bool visit_float32(float) { return scalar(); }
  bool visit_float64(double) { return scalar(); }
  bool visit_bin(const char*, std::uint32_t) { return scalar(); }
  bool visit_ext(const char*, std::uint32_t) { return scalar(); }
  bool visit_str(const char* s, std::uint32_t n) {
    if (depth != 1)
      return true;
    if (!in_value) {
      key = classify(s, n);
      return true;
    }
    if (key == top_key::id) {
      st.id->assign(s, n);
      st.has_string_id = true;
      id_seen = true;
    } else if (key == top_key::type) {
      st.has_type = true;
      st.is_error = std::string_view(s, n) == "error";
    }
    return !done();
  }
  bool start_map(std::uint32_t) {
    if (depth == 0)
      top_is_map = true;
    scalar();
    ++depth;
    return true;
  }
  bool end_map() {
    --depth;
    return true;
  }
  bool start_array(std::uint32_t) {
    scalar();
    ++depth;
    return true;
  }
  bool end_array() {
    --depth;
    return true;
  }
  bool start_map_key() {
    if (depth == 1) {
      in_value = false;
      key = top_key::other;
    }
    return true;
  }
  bool start_map_value() {
    if (depth == 1)
      in_value = true;
    return true;
  }

  reply_scanner::state& st;
  int depth = 0;
  bool in_value = false;
  bool top_is_map = false;
  bool id_seen = false;
  top_key key = top_key::other;
};

} // namespace

bool reply_scanner::scan(const char* data, std::size_t size, bool binary) {
  state st{&id_};
  id_.clear();
  bool ok = false;
  if (binary) {
    msgpack_handler handler(st);
    std::size_t offset = 0;
    try {
      msgpack::parse(data, size, offset, handler);
      ok = handler.top_is_map;
    } catch (const std::exception&) {
      ok = false;
    }
  } else {
    json_handler handler(st);
    rapidjson::MemoryStream stream(data, size);
    rapidjson::Reader reader;
    rapidjson::ParseResult result = reader.Parse(stream, handler);
    ok = result || result.Code() == rapidjson::kParseErrorTermination;
    // A frame that is not an object never reaches depth 1.
    if (ok && size > 0) {
      std::size_t i = 0;
      while (i < size && (data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t'))
        ++i;
      ok = i < size && data[i] == '{';
    }
  }
  has_string_id_ = ok && st.has_string_id;
  is_error_ = ok && st.is_error;
  return ok;
}

} // namespace nudge::bench
