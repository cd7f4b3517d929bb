#include "policies/profile.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace nudge::policies {

decision_record::decision_record(std::string_view decision_id, std::string_view request_id, timestamp ts,
                                 std::string_view channel, std::string_view placement,
                                 std::string_view policy_version, std::span<const shown_action> actions,
                                 bool holdout, std::span<const std::string_view> relied_on)
    : ts_(ts), actions_(static_cast<std::uint32_t>(actions.size())), holdout_(holdout) {
  thread_local std::vector<std::string_view> parts;  // reused: a record allocates only its block
  thread_local std::vector<std::uint8_t> shared;
  parts.clear();
  parts.reserve(fixed + 3 * actions.size() + relied_on.size());
  parts.insert(parts.end(), {decision_id, request_id, channel, placement, policy_version});
  for (const auto& a : actions) {
    parts.insert(parts.end(), {a.action, a.channel, a.placement});
    action_bits_ = static_cast<std::uint16_t>(action_bits_ | action_bit(a.action));
  }
  parts.insert(parts.end(), relied_on.begin(), relied_on.end());
  // Every text but the two ids comes from the policy or the channel: the vocabulary's.
  shared.assign(parts.size(), 1);
  shared[0] = shared[1] = 0;
  text_ = packed_strings(parts, shared);
}

namespace {

std::size_t encoded_size(const scalar_view& v) noexcept {
  if (const auto* s = std::get_if<std::string_view>(&v))
    return 1 + s->size();
  return std::holds_alternative<double>(v) ? 1 + sizeof(double) : 1;
}

/// Appends v's encoding to `out` (reserved ahead, so views into it stay valid).
std::string_view encode(const scalar_view& v, std::string& out) {
  const std::size_t start = out.size();
  switch (v.index()) {
    case 1:
      out.push_back(std::get<bool>(v) ? 't' : 'f');
      break;
    case 2: {
      const double d = std::get<double>(v);
      char bytes[sizeof d];
      std::memcpy(bytes, &d, sizeof d);
      out.push_back('d');
      out.append(bytes, sizeof d);
      break;
    }
    case 3:
      out.push_back('s');
      out.append(std::get<std::string_view>(v));
      break;
    default:
      out.push_back('n');
  }
  return std::string_view(out).substr(start);
}

scalar_view value_of(const property& p) noexcept { return view_of(p.value); }
scalar_view value_of(const property_view& p) noexcept { return p.value; }

template <class Property>
packed_strings pack_event(std::string_view id, std::string_view name, std::string_view channel,
                          std::span<const Property> properties) {
  std::size_t values = 0;
  for (const auto& p : properties)
    values += encoded_size(value_of(p));
  // Reused per thread: building a record allocates only its block.
  thread_local std::string scratch;
  thread_local std::vector<std::string_view> parts;
  scratch.clear();
  scratch.reserve(values);  // views into it stay valid: no reallocation below
  parts.clear();
  parts.reserve(3 + 2 * properties.size());
  thread_local std::vector<std::uint8_t> shared;
  parts.insert(parts.end(), {id, name, channel});
  for (const auto& p : properties) {
    parts.push_back(p.path);
    parts.push_back(encode(value_of(p), scratch));
  }
  // The name, the channel and the paths recur across events: the vocabulary's. The id
  // and the values do not.
  shared.assign(parts.size(), 1);
  shared[0] = 0;
  for (std::size_t i = 4; i < shared.size(); i += 2)
    shared[i] = 0;
  packed_strings block(parts, shared);
  if (scratch.capacity() > 64 * 1024)  // one huge message does not pin its size per thread
    scratch = std::string();
  return block;
}

}  // namespace

name_key name_key::of(std::string_view name) {
  // The vocabulary's slot of a name is its 15-bit digest; a name that owns it is exact.
  if (auto slot = vocabulary::claim(name))
    return {static_cast<std::uint16_t>(*slot | exact_bit), true};
  return {vocabulary::digest(name), false};
}

std::int64_t event_record::stamp(timestamp ts, std::string_view name) {
  constexpr std::int64_t limit = std::int64_t{1} << 47;
  const std::int64_t ms = std::clamp<std::int64_t>(ts.time_since_epoch().count(), -limit, limit - 1);
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(ms) << 16) | name_tag_of(name);
}

event_record::event_record(std::string_view id, std::string_view name, timestamp ts, std::string_view channel,
                           std::span<const property> properties)
    : stamp_(stamp(ts, name)), text_(pack_event(id, name, channel, properties)) {}

event_record::event_record(std::string_view id, std::string_view name, timestamp ts, std::string_view channel,
                           std::span<const property_view> properties)
    : stamp_(stamp(ts, name)), text_(pack_event(id, name, channel, properties)) {}

scalar_view event_record::decode(std::string_view v) noexcept {
  if (v.empty())
    return std::monostate{};
  switch (v[0]) {
    case 't':
      return true;
    case 'f':
      return false;
    case 'd':
      if (v.size() == 1 + sizeof(double)) {
        double d;
        std::memcpy(&d, v.data() + 1, sizeof d);
        return d;
      }
      return std::monostate{};
    case 's':
      return v.substr(1);
    default:
      return std::monostate{};
  }
}

}  // namespace nudge::policies
