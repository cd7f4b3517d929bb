#include "app/config.hpp"

#include "app/durations.hpp"

#include <openssl/rand.h>
#include <toml++/toml.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <regex>
#include <set>
#include <span>
#include <sstream>
#include <system_error>
#include <utility>

namespace nudge::app {
namespace {

// ======================= FEATURE GATE: not_yet_supported =======================
// Keys this build parses and validates but does not implement yet; present in the file,
// they are refused with "FILE: KEY: not supported by this build yet". Dotted paths
// without array indexes ("sources.rate_limit" covers every [[sources]] entry); "=VALUE"
// refuses one value only. A key set to "" counts as absent. Checked in this order.
// To ship a feature, delete its line (tests may lift one with set_supported()).
constexpr std::array<std::string_view, 0> not_yet_supported{
};
// ===============================================================================

std::set<std::string, std::less<>>& lifted_gates() {
  static std::set<std::string, std::less<>> lifted;
  return lifted;
}

namespace fs = std::filesystem;

/// A problem found while reading the document. Thrown and caught inside this file only
/// (parse_config), so that every check can fail fast in one line.
struct failure {
  std::string key;
  std::string what;
};

[[noreturn]] void fail(std::string key, std::string what) {
  throw failure{std::move(key), std::move(what)};
}

/// The largest number in a regex's {n}, {n,} or {n,m} quantifiers and \n
/// back-references (saturating at 2^32 for longer digit runs); an escaped \{ is a
/// literal, not a count.
std::uint64_t largest_regex_number(std::string_view re) {
  std::uint64_t largest = 0;
  // Reads the digits from k on, returns where they end.
  const auto number_at = [&](std::size_t k) {
    std::uint64_t n = 0;
    for (; k < re.size() && re[k] >= '0' && re[k] <= '9'; ++k)
      n = std::min<std::uint64_t>(n * 10 + static_cast<std::uint64_t>(re[k] - '0'), 1ull << 32);
    largest = std::max(largest, n);
    return k;
  };
  for (std::size_t i = 0; i < re.size(); ++i) {
    if (re[i] == '\\') {
      const auto end = number_at(i + 1);
      i = end > i + 1 ? end - 1 : i + 1;  // past the digits, or the one escaped character
    } else if (re[i] == '{') {
      for (auto k = number_at(i + 1); k < re.size() && re[k] == ',';)
        k = number_at(k + 1);
    }
  }
  return largest;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\u00";
      out += hex[u >> 4];
      out += hex[u & 0xf];
    } else {
      out += c;
    }
  }
  return out + "\"";
}

bool is_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
  });
}

constexpr std::string_view name_rule = "must match [A-Za-z0-9_-]+";

/// `parent.key`, quoting keys that TOML could not write bare.
std::string child_path(std::string_view parent, std::string_view key) {
  std::string k = is_name(key) ? std::string(key) : quote(key);
  return parent.empty() ? k : std::string(parent) + "." + k;
}

std::string item_path(std::string_view parent, std::size_t i) {
  return std::string(parent) + "[" + std::to_string(i) + "]";
}

/// Secrets end up in headers and URLs: printable ASCII, no spaces.
bool is_token(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string one_of(std::initializer_list<std::string_view> choices, std::string_view got) {
  std::string out = "expected ";
  std::size_t i = 0;
  for (const auto choice : choices) {
    if (i > 0) out += (i + 1 == choices.size()) ? " or " : ", ";
    out += quote(choice);
    ++i;
  }
  return out + ", got " + quote(got);
}

// ---- Typed access to one table -------------------------------------------------------

/// One TOML table at `path`: refuses keys outside `keys` on construction (an empty
/// `keys` accepts any), then reads typed values, failing with the key's full path.
/// Each read_* leaves `out` untouched and returns false when the key is absent.
class section {
public:
  section(const toml::node* node, std::string path,
          std::initializer_list<std::string_view> keys = {})
      : path_(std::move(path)) {
    table_ = node != nullptr ? node->as_table() : nullptr;
    if (table_ == nullptr) fail(path_, "expected a table");
    if (keys.size() == 0) return;
    for (auto&& [k, v] : *table_) {
      if (std::find(keys.begin(), keys.end(), k.str()) == keys.end())
        fail(key_path(k.str()), "unknown key");
    }
  }

  const toml::table& table() const { return *table_; }
  const std::string& path() const { return path_; }
  std::string key_path(std::string_view key) const { return child_path(path_, key); }
  const toml::node* find(std::string_view key) const { return table_->get(key); }

  bool read(std::string_view key, std::string& out) const {
    const auto* node = find(key);
    if (node == nullptr) return false;
    out = string_of(*node, key_path(key));
    return true;
  }

  bool read(std::string_view key, fs::path& out) const {
    std::string s;
    if (!read(key, s)) return false;
    out = s;
    return true;
  }

  bool read(std::string_view key, bool& out) const {
    const auto* node = find(key);
    if (node == nullptr) return false;
    const auto* b = node->as_boolean();
    if (b == nullptr) fail(key_path(key), "expected a boolean");
    out = b->get();
    return true;
  }

  template <class Int>
  bool read_int(std::string_view key, Int& out, std::int64_t min,
                std::int64_t max = static_cast<std::int64_t>(std::numeric_limits<Int>::max())) const {
    const auto* node = find(key);
    if (node == nullptr) return false;
    const auto* i = node->as_integer();
    if (i == nullptr) fail(key_path(key), "expected an integer");
    const std::int64_t v = i->get();
    if (v < min || v > max) fail(key_path(key), range_message(min, max, v));
    out = static_cast<Int>(v);
    return true;
  }

  /// A size string ("64KiB") or a plain integer count of bytes.
  bool read_size(std::string_view key, std::uint64_t& out, std::uint64_t min,
                 std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) const {
    const auto* node = find(key);
    if (node == nullptr) return false;
    std::uint64_t v = 0;
    if (const auto* i = node->as_integer()) {
      if (i->get() < 0) fail(key_path(key), "must not be negative");
      v = static_cast<std::uint64_t>(i->get());
    } else if (const auto* s = node->as_string()) {
      const auto parsed = parse_size(s->get());
      if (!parsed) fail(key_path(key), "bad size " + quote(s->get()));
      v = *parsed;
    } else {
      fail(key_path(key), "expected a size such as \"64KiB\" or an integer");
    }
    if (v < min || v > max) {
      std::string text = "must be ";
      if (max == std::numeric_limits<std::uint64_t>::max())
        text += "at least " + format_size(min);
      else
        text += "between " + format_size(min) + " and " + format_size(max);
      fail(key_path(key), text + ", got " + format_size(v));
    }
    out = v;
    return true;
  }

  bool read_duration(std::string_view key, std::chrono::milliseconds& out,
                     bool allow_zero = false) const {
    const auto* node = find(key);
    if (node == nullptr) return false;
    const auto* s = node->as_string();
    if (s == nullptr) fail(key_path(key), "expected a duration such as \"30s\"");
    const auto parsed = parse_duration(s->get());
    if (!parsed) fail(key_path(key), "bad duration " + quote(s->get()));
    if (!allow_zero && parsed->count() == 0) fail(key_path(key), "must be greater than 0");
    out = *parsed;
    return true;
  }

  bool read(std::string_view key, std::vector<std::string>& out) const {
    const auto* node = find(key);
    if (node == nullptr) return false;
    const auto* array = node->as_array();
    if (array == nullptr) fail(key_path(key), "expected an array of strings");
    std::vector<std::string> values;
    for (std::size_t i = 0; i < array->size(); ++i)
      values.push_back(string_of(*array->get(i), item_path(key_path(key), i)));
    out = std::move(values);
    return true;
  }

  static std::string string_of(const toml::node& node, const std::string& path) {
    const auto* s = node.as_string();
    if (s == nullptr) fail(path, "expected a string");
    return s->get();
  }

private:
  static std::string range_message(std::int64_t min, std::int64_t max, std::int64_t v) {
    if (v < min) return "must be at least " + std::to_string(min) + ", got " + std::to_string(v);
    return "must be at most " + std::to_string(max) + ", got " + std::to_string(v);
  }

  const toml::table* table_ = nullptr;
  std::string path_;
};

// ---- Shared value checks -------------------------------------------------------------

struct host_port {
  std::string host;
  std::uint16_t port = 0;
};

/// "HOST:PORT" or "[IPV6]:PORT"; the host comes back without brackets.
std::optional<host_port> parse_listen(std::string_view text) {
  host_port out;
  std::string_view host;
  std::string_view port;
  const auto is_alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    const bool ok = std::all_of(host.begin(), host.end(), [&](char c) {
      return is_alnum(c) || c == ':' || c == '.' || c == '%';
    });
    if (!ok || host.find(':') == std::string_view::npos) return std::nullopt;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    const bool ok = std::all_of(host.begin(), host.end(), [&](char c) {
      return is_alnum(c) || c == '.' || c == '-' || c == '_';
    });
    if (!ok) return std::nullopt;
  }
  if (host.empty() || port.empty() || port.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (const char c : port) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(value);
  return out;
}

/// A JSON Pointer (RFC 6901) to a value inside a document, so never "" (the whole body).
void check_pointer(const std::string& path, const std::string& pointer) {
  if (pointer.empty() || pointer.front() != '/')
    fail(path, "expected a JSON Pointer starting with \"/\", got " + quote(pointer));
  for (std::size_t i = 0; i < pointer.size(); ++i) {
    if (pointer[i] == '~' && (i + 1 == pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1')))
      fail(path, "bad JSON Pointer " + quote(pointer) + ": '~' must be followed by 0 or 1");
  }
}

// ---- Feature gate --------------------------------------------------------------------

bool gate_active(std::string_view key) { return lifted_gates().count(key) == 0; }

/// Appends to `hits` the path of every node at `segments` below `node` (arrays are
/// walked entry by entry) that is present, not "", and equal to `value` when one is given.
void find_gated(const toml::node& node, std::span<const std::string> segments,
                const std::string& path, std::string_view value, std::vector<std::string>& hits) {
  if (segments.empty()) {
    const auto* s = node.as_string();
    if (s != nullptr && s->get().empty()) return;
    if (!value.empty() && (s == nullptr || s->get() != value)) return;
    hits.push_back(path);
    return;
  }
  if (const auto* table = node.as_table()) {
    if (const auto* child = table->get(segments.front()))
      find_gated(*child, segments.subspan(1), child_path(path, segments.front()), value, hits);
  } else if (const auto* array = node.as_array()) {
    for (std::size_t i = 0; i < array->size(); ++i)
      find_gated(*array->get(i), segments, item_path(path, i), value, hits);
  }
}

std::vector<std::string> gated_keys_present(const toml::table& doc) {
  std::vector<std::string> hits;
  for (const auto entry : not_yet_supported) {
    if (!gate_active(entry)) continue;
    std::string_view key = entry;
    std::string_view value;
    if (const auto eq = entry.find('='); eq != std::string_view::npos) {
      key = entry.substr(0, eq);
      value = entry.substr(eq + 1);
    }
    std::vector<std::string> segments;
    for (std::size_t start = 0;;) {
      const auto dot = key.find('.', start);
      segments.emplace_back(key.substr(start, dot - start));
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
    find_gated(doc, segments, "", value, hits);
  }
  return hits;
}

// ---- Sections ------------------------------------------------------------------------

void parse_server(const toml::node* node, server_config& s) {
  const section t(node, "server",
                  {"listen", "data_dir", "admin_token", "max_message_bytes", "max_connections", "max_connections_per_address",
                   "ws_idle_timeout", "ws_max_pending_bytes", "http_timeout", "tls_cert", "tls_key", "io_actor_percent", "io_threads", "io_spin_us"});
  if (std::string listen; t.read("listen", listen)) {
    const auto parsed = parse_listen(listen);
    if (!parsed) fail(t.key_path("listen"), "expected HOST:PORT, got " + quote(listen));
    s.listen_host = parsed->host;
    s.listen_port = parsed->port;
  }
  if (t.read("data_dir", s.data_dir) && s.data_dir.empty())
    fail(t.key_path("data_dir"), "must not be empty");
  if (t.read("admin_token", s.admin_token) && !is_token(s.admin_token))
    fail(t.key_path("admin_token"), "must be printable ASCII without spaces");
  t.read_size("max_message_bytes", s.max_message_bytes, 1024, 16 * 1024 * 1024);
  t.read_int("max_connections", s.max_connections, 1);
  t.read_int("max_connections_per_address", s.max_connections_per_address, 0);
  t.read_duration("ws_idle_timeout", s.ws_idle_timeout);
  t.read_size("ws_max_pending_bytes", s.ws_max_pending_bytes, 1);
  t.read_duration("http_timeout", s.http_timeout);
  t.read_int("io_actor_percent", s.io_actor_percent, 0, 100);
  t.read_int("io_threads", s.io_threads, 1, 64);
  t.read_int("io_spin_us", s.io_spin_us, 0, 10000);
  t.read("tls_cert", s.tls_cert);
  t.read("tls_key", s.tls_key);
  if (s.tls_cert.empty() != s.tls_key.empty()) {
    if (s.tls_cert.empty()) fail(t.key_path("tls_cert"), "required when server.tls_key is set");
    fail(t.key_path("tls_key"), "required when server.tls_cert is set");
  }
}

void parse_durability(const toml::node* node, durability_config& d) {
  const section t(node, "durability", {"mode", "dedupe_window", "checkpoint_entries", "dedupe_seen_max", "power_sync",
                                        "log_checkpoint_interval"});
  if (std::string mode; t.read("mode", mode)) {
    if (mode == "process")
      d.mode = durability_mode::process;
    else if (mode == "power")
      d.mode = durability_mode::power;
    else
      fail(t.key_path("mode"), one_of({"process", "power"}, mode));
  }
  if (std::string how; t.read("power_sync", how)) {
    if (how == "log")
      d.power_sync = power_sync_mode::log;
    else if (how == "lmdb")
      d.power_sync = power_sync_mode::lmdb;
    else
      fail(t.key_path("power_sync"), one_of({"lmdb", "log"}, how));
  }
  t.read_duration("log_checkpoint_interval", d.log_checkpoint_interval);
  t.read_duration("dedupe_window", d.dedupe_window, /*allow_zero=*/true);
  t.read_int("checkpoint_entries", d.checkpoint_entries, 1000, 100000000);
  t.read_int("dedupe_seen_max", d.dedupe_seen_max, 0, 100000);
}

void parse_storage(const toml::node* node, storage_config& s) {
  const section t(node, "storage",
                  {"map_size_initial", "map_size_max", "preallocate_ahead", "prefault", "writable_map",
                   "reader_check_interval"});
  t.read_size("map_size_initial", s.map_size_initial, 1);
  t.read_size("map_size_max", s.map_size_max, 1);
  t.read_size("preallocate_ahead", s.preallocate_ahead, 0);
  t.read("prefault", s.prefault);
  t.read("writable_map", s.writable_map);
  t.read_duration("reader_check_interval", s.reader_check_interval);
  if (s.map_size_initial > s.map_size_max)
    fail(t.key_path("map_size_initial"), format_size(s.map_size_initial) +
                                             " is larger than storage.map_size_max (" +
                                             format_size(s.map_size_max) + ")");
}

void parse_profiles(const toml::node* node, profiles_config& p) {
  const section t(node, "profiles",
                  {"history_max_events", "history_max_age", "anonymous_ttl", "idle_passivate",
                   "max_active"});
  t.read_int("history_max_events", p.history_max_events, 1);
  t.read_duration("history_max_age", p.history_max_age);
  t.read_duration("anonymous_ttl", p.anonymous_ttl);
  t.read_duration("idle_passivate", p.idle_passivate);
  t.read_int("max_active", p.max_active, 1, std::numeric_limits<std::int64_t>::max());
}

bool parse_grant(const section& t, std::string_view key) {
  std::string value;
  t.read(key, value);
  if (value == "granted") return true;
  if (value == "denied") return false;
  fail(t.key_path(key), one_of({"granted", "denied"}, value));
}

void parse_consent(const toml::node* node, consent_config& c) {
  const section t(node, "consent", {"purposes", "default", "defaults"});
  if (t.read("purposes", c.purposes)) {
    for (std::size_t i = 0; i < c.purposes.size(); ++i) {
      const auto path = item_path(t.key_path("purposes"), i);
      if (!is_name(c.purposes[i])) fail(path, std::string(name_rule) + ", got " + quote(c.purposes[i]));
      for (std::size_t j = 0; j < i; ++j) {
        if (c.purposes[j] == c.purposes[i]) fail(path, "duplicate purpose " + quote(c.purposes[i]));
      }
    }
  }
  if (t.find("default") != nullptr) c.default_granted = parse_grant(t, "default");
  if (const auto* defaults = t.find("defaults")) {
    const section d(defaults, t.key_path("defaults"));
    for (auto&& [k, v] : d.table()) {
      const auto purpose = std::string(k.str());
      if (std::find(c.purposes.begin(), c.purposes.end(), purpose) == c.purposes.end())
        fail(d.key_path(purpose), "not a configured purpose (consent.purposes)");
      c.overrides[purpose] = parse_grant(d, purpose);
    }
  }
}

std::vector<identity_type_config> parse_identities(const toml::node* node) {
  const section t(node, "identity");
  std::vector<identity_type_config> types;
  for (auto&& [k, v] : t.table()) {
    identity_type_config type;
    type.name = std::string(k.str());
    const section s(&v, t.key_path(type.name),
                    {"priority", "limit", "normalize", "hash", "blocked", "anonymous"});
    if (!is_name(type.name)) fail(s.path(), "identity type names " + std::string(name_rule));
    if (!s.read_int("priority", type.priority, 0)) fail(s.key_path("priority"), "required");
    s.read_int("limit", type.limit, 1);
    if (std::string normalize; s.read("normalize", normalize)) {
      if (normalize == "none")
        type.normalize = identity_normalize::none;
      else if (normalize == "email")
        type.normalize = identity_normalize::email;
      else if (normalize == "phone")
        type.normalize = identity_normalize::phone;
      else
        fail(s.key_path("normalize"), one_of({"none", "email", "phone"}, normalize));
    }
    s.read("hash", type.hash);
    s.read("anonymous", type.anonymous);
    s.read("blocked", type.blocked);
    for (std::size_t i = 0; i < type.blocked.size(); ++i) {
      const auto& entry = type.blocked[i];
      if (entry.size() < 2 || entry.front() != '/' || entry.back() != '/') continue;
      // libstdc++'s regex compiler overflows on a huge count ({6666666666666666666}, or
      // a back-reference \6666666666666666666: undefined behaviour, both found by
      // fuzz_config_parse) and unrolls large counts into huge automata: numbers over
      // 1000 are refused before it sees them.
      if (const auto count = largest_regex_number(entry); count > 1000) {
        fail(item_path(s.key_path("blocked"), i),
             "bad regex " + quote(entry) + ": a repetition count or back-reference over 1000 (" + std::to_string(count) + ")");
        continue;
      }
      try {
        std::regex compiled(entry.substr(1, entry.size() - 2), std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        fail(item_path(s.key_path("blocked"), i), "bad regex " + quote(entry) + ": " + e.what());
      }
    }
    types.push_back(std::move(type));
  }
  if (types.empty()) fail("identity", "at least one identity type is required");
  std::stable_sort(types.begin(), types.end(),
                   [](const auto& a, const auto& b) { return a.priority < b.priority; });
  for (std::size_t i = 1; i < types.size(); ++i) {
    if (types[i].priority == types[i - 1].priority)
      fail(child_path(child_path("identity", types[i].name), "priority"),
           "same as identity." + types[i - 1].name + ".priority");
  }
  return types;
}

/// A table whose keys are free (names, types) and whose values are strings.
std::map<std::string, std::string> parse_string_map(const section& parent, std::string_view key) {
  std::map<std::string, std::string> out;
  const auto* node = parent.find(key);
  if (node == nullptr) return out;
  const section t(node, parent.key_path(key));
  for (auto&& [k, v] : t.table())
    out[std::string(k.str())] = section::string_of(v, t.key_path(k.str()));
  return out;
}

void parse_webhook_map(const section& source, const std::vector<identity_type_config>& identities,
                       webhook_map_config& m) {
  const section t(source.find("map"), source.key_path("map"),
                  {"id", "name", "ts", "identities", "properties", "names"});
  if (!t.read("id", m.id)) fail(t.key_path("id"), "required");
  check_pointer(t.key_path("id"), m.id);
  if (!t.read("name", m.name)) fail(t.key_path("name"), "required");
  check_pointer(t.key_path("name"), m.name);
  if (t.read("ts", m.ts)) check_pointer(t.key_path("ts"), m.ts);

  m.identities = parse_string_map(t, "identities");
  if (m.identities.empty())
    fail(t.key_path("identities"), "at least one identity pointer is required");
  for (const auto& [type, pointer] : m.identities) {
    const auto path = child_path(t.key_path("identities"), type);
    const bool known = std::any_of(identities.begin(), identities.end(),
                                   [&type = type](const auto& i) { return i.name == type; });
    if (!known) fail(path, "not a configured identity type");
    check_pointer(path, pointer);
  }
  m.properties = parse_string_map(t, "properties");
  for (const auto& [name, pointer] : m.properties)
    check_pointer(child_path(t.key_path("properties"), name), pointer);
  m.names = parse_string_map(t, "names");
  for (const auto& [from, to] : m.names) {
    if (to.empty()) fail(child_path(t.key_path("names"), from), "must not be empty");
  }
}

std::vector<source_config> parse_sources(const toml::node* node,
                                         const std::vector<identity_type_config>& identities,
                                         const server_config& server) {
  const auto* array = node->as_array();
  if (array == nullptr) fail("sources", "expected an array of tables ([[sources]])");
  std::vector<source_config> sources;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const section t(array->get(i), item_path("sources", i),
                    {"id", "kind", "write_key", "secret", "channel", "allowed_origins",
                     "rate_limit", "map"});
    source_config s;
    if (!t.read("id", s.id)) fail(t.key_path("id"), "required");
    if (!is_name(s.id)) fail(t.key_path("id"), std::string(name_rule) + ", got " + quote(s.id));
    for (std::size_t j = 0; j < sources.size(); ++j) {
      if (sources[j].id == s.id) fail(t.key_path("id"), "same as " + item_path("sources", j) + ".id");
    }

    std::string kind;
    if (!t.read("kind", kind)) fail(t.key_path("kind"), "required");
    if (kind == "stream")
      s.kind = source_kind::stream;
    else if (kind == "webhook")
      s.kind = source_kind::webhook;
    else
      fail(t.key_path("kind"), one_of({"stream", "webhook"}, kind));
    const bool stream = s.kind == source_kind::stream;
    const auto only_for = [&](std::string_view key, std::string_view other) {
      fail(t.key_path(key), "only for kind = " + quote(other));
    };

    if (t.read("write_key", s.write_key)) {
      if (!stream && !s.write_key.empty()) only_for("write_key", "stream");
      if (!is_token(s.write_key))
        fail(t.key_path("write_key"), "must be printable ASCII without spaces");
      if (!s.write_key.empty() && s.write_key == server.admin_token)
        fail(t.key_path("write_key"), "same as server.admin_token");
      for (std::size_t j = 0; j < sources.size(); ++j) {
        if (!s.write_key.empty() && sources[j].write_key == s.write_key)
          fail(t.key_path("write_key"), "same as " + item_path("sources", j) + ".write_key");
      }
    }
    t.read("secret", s.secret);
    if (stream && !s.secret.empty()) only_for("secret", "webhook");
    if (!stream && s.secret.empty()) fail(t.key_path("secret"), "required for kind = \"webhook\"");
    t.read("channel", s.channel);
    if (stream && s.channel.empty()) fail(t.key_path("channel"), "required for kind = \"stream\"");
    if (t.read("allowed_origins", s.allowed_origins)) {
      if (!stream && !s.allowed_origins.empty()) only_for("allowed_origins", "stream");
      for (std::size_t j = 0; j < s.allowed_origins.size(); ++j) {
        if (s.allowed_origins[j].empty())
          fail(item_path(t.key_path("allowed_origins"), j), "must not be empty");
      }
    }
    if (const auto* limit = t.find("rate_limit")) {
      const section r(limit, t.key_path("rate_limit"), {"per_second", "burst"});
      rate_limit_config rl;
      if (!r.read_int("per_second", rl.per_second, 1)) fail(r.key_path("per_second"), "required");
      rl.burst = rl.per_second;
      r.read_int("burst", rl.burst, 1);
      s.rate_limit = rl;
    }
    if (t.find("map") != nullptr) {
      if (stream) only_for("map", "webhook");
      parse_webhook_map(t, identities, s.map);
    } else if (!stream) {
      fail(t.key_path("map"), "required for kind = \"webhook\"");
    }
    sources.push_back(std::move(s));
  }
  return sources;
}

std::vector<destination_config> parse_destinations(const toml::node* node) {
  const auto* array = node->as_array();
  if (array == nullptr) fail("destinations", "expected an array of tables ([[destinations]])");
  std::vector<destination_config> destinations;
  for (std::size_t i = 0; i < array->size(); ++i) {
    const section t(array->get(i), item_path("destinations", i),
                    {"id", "url", "secret", "channels", "timeout", "max_attempts"});
    destination_config d;
    if (!t.read("id", d.id)) fail(t.key_path("id"), "required");
    if (!is_name(d.id)) fail(t.key_path("id"), std::string(name_rule) + ", got " + quote(d.id));
    for (std::size_t j = 0; j < destinations.size(); ++j) {
      if (destinations[j].id == d.id)
        fail(t.key_path("id"), "same as " + item_path("destinations", j) + ".id");
    }
    if (!t.read("url", d.url)) fail(t.key_path("url"), "required");
    const auto has_prefix = [&](std::string_view p) {
      return d.url.size() > p.size() && d.url.compare(0, p.size(), p) == 0;
    };
    if (!has_prefix("http://") && !has_prefix("https://"))
      fail(t.key_path("url"), "expected an http:// or https:// URL, got " + quote(d.url));
    if (has_prefix("https://"))
      fail(t.key_path("url"), "https:// needs TLS, which this build does not have yet; got " + quote(d.url));
    if (!t.read("secret", d.secret) || d.secret.empty()) fail(t.key_path("secret"), "required");
    if (!t.read("channels", d.channels) || d.channels.empty())
      fail(t.key_path("channels"), "at least one channel is required");
    for (std::size_t j = 0; j < d.channels.size(); ++j) {
      if (d.channels[j].empty()) fail(item_path(t.key_path("channels"), j), "must not be empty");
    }
    t.read_duration("timeout", d.timeout);
    t.read_int("max_attempts", d.max_attempts, 1);
    destinations.push_back(std::move(d));
  }
  return destinations;
}

config parse_document(const toml::table& doc) {
  const section root(&doc, "",
                     {"server", "durability", "storage", "profiles", "consent", "identity",
                      "sources", "destinations"});
  config cfg;
  if (const auto* n = root.find("server")) parse_server(n, cfg.server);
  if (const auto* n = root.find("durability")) parse_durability(n, cfg.durability);
  if (const auto* n = root.find("storage")) parse_storage(n, cfg.storage);
  if (const auto* n = root.find("profiles")) parse_profiles(n, cfg.profiles);
  if (const auto* n = root.find("consent")) parse_consent(n, cfg.consent);
  if (const auto* n = root.find("identity")) cfg.identities = parse_identities(n);
  if (const auto* n = root.find("sources")) cfg.sources = parse_sources(n, cfg.identities, cfg.server);
  if (const auto* n = root.find("destinations")) cfg.destinations = parse_destinations(n);
  return cfg;
}

// ---- Secrets -------------------------------------------------------------------------

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

/// 32 random bytes as unpadded base64url (43 characters) after `prefix`.
std::optional<std::string> generate_key(std::string_view prefix) {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) return std::nullopt;
  constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out(prefix);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alphabet[(acc >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += alphabet[(acc << (6 - bits)) & 0x3f];
  return out;
}

/// Creates `dir` (0700) when it does not exist.
std::optional<config_error> ensure_private_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return std::nullopt;
  if (fs::create_directories(dir, ec); ec)
    return config_error{dir.string() + ": cannot create directory: " + ec.message()};
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) return config_error{dir.string() + ": cannot set mode 0700: " + ec.message()};
  return std::nullopt;
}

/// Reads the secret in `file`, or creates the file (0600, exclusively) with a new one.
/// `label` starts the notice ("admin token", "write key for source web").
std::optional<config_error> read_or_create_secret(const fs::path& dir, const fs::path& file,
                                                  std::string_view prefix, std::string_view label,
                                                  std::string& value,
                                                  std::vector<std::string>& notices) {
  const std::string name = file.string();
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::ifstream in(file, std::ios::binary);
    if (in) {
      std::ostringstream text;
      text << in.rdbuf();
      std::string secret = text.str();
      while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r' ||
                                 secret.back() == ' ' || secret.back() == '\t'))
        secret.pop_back();
      if (secret.empty() || !is_token(secret))
        return config_error{name + ": expected one line of printable ASCII without spaces; "
                                   "delete the file to generate a new key"};
      struct stat st{};
      if (::stat(file.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
        notices.push_back("warning: " + name + " is readable by other users; chmod 600 it");
      value = std::move(secret);
      notices.push_back(std::string(label) + " in " + name);
      return std::nullopt;
    }
    if (auto err = ensure_private_dir(dir)) return err;
    const auto secret = generate_key(prefix);
    if (!secret) return config_error{name + ": no random bytes from OpenSSL (RAND_bytes)"};
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST) continue;  // created meanwhile by another process: read it
      return config_error{name + ": cannot create: " + errno_text(errno)};
    }
    const std::string line = *secret + "\n";
    bool ok = ::fchmod(fd, 0600) == 0;  // whatever the umask
    std::size_t written = 0;
    while (ok && written < line.size()) {
      const auto n = ::write(fd, line.data() + written, line.size() - written);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) written += static_cast<std::size_t>(n);
    }
    ok = ok && ::fsync(fd) == 0;
    const int saved = errno;
    ok = (::close(fd) == 0) && ok;
    if (!ok) {
      ::unlink(file.c_str());
      return config_error{name + ": cannot write: " + errno_text(saved != 0 ? saved : errno)};
    }
    value = *secret;
    notices.push_back(std::string(label) + " (saved in " + name + "): " + value);
    return std::nullopt;
  }
  return config_error{name + ": cannot read"};
}

}  // namespace

std::vector<identity_type_config> default_identity_types() {
  using n = identity_normalize;
  return {
      {"user_id", 1, 1, n::none, false, {"null", "undefined", "0", "/^-?1$/"}, false},
      {"email", 2, 5, n::email, false, {}, false},
      {"phone", 3, 3, n::phone, true, {}, false},
      {"device_id", 4, 50, n::none, false, {"/^0+(-0+)*$/"}, true},
      {"anonymous_id", 5, 100, n::none, false, {}, true},
  };
}

std::vector<source_config> default_sources() {
  source_config web;
  web.id = "web";
  web.kind = source_kind::stream;
  web.channel = "web";
  return {web};
}

std::optional<config_error> parse_config(std::string_view toml_text, std::string_view file_name,
                                         config& out) {
  const std::string file(file_name);
  try {
    toml::table doc;
    try {
      doc = toml::parse(toml_text, file_name);
    } catch (const toml::parse_error& e) {
      const auto& where = e.source().begin;
      return config_error{file + ":" + std::to_string(where.line) + ":" +
                          std::to_string(where.column) + ": " + std::string(e.description())};
    }
    if (const auto gated = gated_keys_present(doc); !gated.empty()) {
      std::string message;
      for (const auto& key : gated) {
        if (!message.empty()) message += '\n';
        message += file + ": " + key + ": not supported by this build yet";
      }
      return config_error{message};
    }
    out = parse_document(doc);
    return std::nullopt;
  } catch (const failure& f) {
    return config_error{file + ": " + f.key + ": " + f.what};
  } catch (const std::exception& e) {
    return config_error{file + ": " + e.what()};
  }
}

std::variant<config, config_error> load_config(const std::filesystem::path* file) {
  if (file == nullptr) return config{};
  const std::string name = file->string();
  std::error_code ec;
  if (fs::is_directory(*file, ec)) return config_error{name + ": is a directory"};
  std::ifstream in(*file, std::ios::binary);
  if (!in) return config_error{name + ": cannot read: " + errno_text(errno)};
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return config_error{name + ": cannot read: " + errno_text(errno)};
  config cfg;
  if (auto err = parse_config(text.str(), name, cfg)) return *err;
  return cfg;
}

std::optional<config_error> apply_overrides(config& cfg, const std::optional<std::string>& listen,
                                            const std::optional<std::string>& data_dir,
                                            const std::optional<std::string>& policy_file) {
  if (listen) {
    const auto parsed = parse_listen(*listen);
    if (!parsed) return config_error{"--listen: expected HOST:PORT, got " + quote(*listen)};
    cfg.server.listen_host = parsed->host;
    cfg.server.listen_port = parsed->port;
  }
  if (data_dir) {
    if (data_dir->empty()) return config_error{"--data: must not be empty"};
    cfg.server.data_dir = *data_dir;
  }
  if (policy_file) {
    if (policy_file->empty()) return config_error{"--policy: must not be empty"};
    cfg.policy_file = *policy_file;
  }
  return std::nullopt;
}

std::optional<config_error> resolve_secrets(config& cfg, std::vector<std::string>& notices) {
  const auto& dir = cfg.server.data_dir;
  if (cfg.server.admin_token.empty()) {
    if (auto err = read_or_create_secret(dir, dir / "admin.token", "adm_", "admin token",
                                         cfg.server.admin_token, notices))
      return err;
  }
  if (cfg.server.suppression_key.empty()) {
    std::vector<std::string> quiet;  // the key itself is never printed; warnings are
    if (auto err = read_or_create_secret(dir, dir / "suppression.key", "sk_", "suppression key",
                                         cfg.server.suppression_key, quiet))
      return err;
    for (auto& n : quiet)
      if (n.rfind("warning: ", 0) == 0) notices.push_back(std::move(n));
  }
  for (auto& source : cfg.sources) {
    if (source.kind != source_kind::stream || !source.write_key.empty()) continue;
    if (auto err = read_or_create_secret(dir, dir / (source.id + ".key"), "wk_",
                                         "write key for source " + source.id, source.write_key,
                                         notices))
      return err;
  }
  return std::nullopt;
}

std::vector<std::string> not_yet_supported_keys() {
  std::vector<std::string> keys;
  for (const auto entry : not_yet_supported) {
    if (gate_active(entry)) keys.emplace_back(entry);
  }
  return keys;
}

void set_supported(std::string_view key, bool supported) {
  if (supported)
    lifted_gates().emplace(key);
  else if (const auto it = lifted_gates().find(key); it != lifted_gates().end())
    lifted_gates().erase(it);
}

}  // namespace nudge::app
