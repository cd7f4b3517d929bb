// The messages a bench connection sends (API.md section 3), pre-encoded once per
// connection and patched in place before each send.
//
// Each template holds its id and its profile number as fixed-width runs of ASCII digits
// inside string values, so a patch never changes the body's length nor, in MessagePack,
// a length prefix. An id reads "<run>-<conn>-<slot>-<seq>": the run tag keeps ids unique
// across runs against one server (the server dedupes ids for 24 h), and the slot lets a
// reply find its in-flight record without a hash table. Identities read
// {"anonymous_id": "a-<n>"} with n zero-padded to the width of profiles - 1.
//
// Not thread-safe: each session owns its workload. next() does not allocate once `out`
// has grown to the largest template.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nudge::bench {

enum class wire_format { json, msgpack };

/// retail: a shop session mix of page_view, product_view, cart_add, cart_remove,
/// purchase, consent and feedback; page_view: page_view events only.
enum class message_mix { retail, page_view };

/// A parsed id: the slot and sequence number of a message this bench sent.
struct parsed_id {
  std::uint32_t slot = 0;
  std::uint64_t seq = 0;
};

class workload {
public:
  static constexpr unsigned seq_digits = 12;

  /// `id_prefix` is "<run>-<conn>-"; slots run from 0 to slot_count - 1; profiles are
  /// drawn uniformly from [0, profiles). profiles and slot_count must be >= 1.
  workload(message_mix mix, wire_format format, std::string id_prefix, std::uint32_t slot_count,
           std::uint64_t profiles, std::uint64_t seed);

  /// Writes the next message, for `slot` and `seq`, into `out`, replacing its content.
  void next(std::string& out, std::uint32_t slot, std::uint64_t seq);

  /// The slot and seq of an id that this workload made, or false for any other id.
  bool parse_id(std::string_view id, parsed_id& result) const;

  /// The share of each kind in the mix, for the summary ("page_view" -> 35 ...).
  static std::vector<std::pair<std::string, unsigned>> mix_weights(message_mix mix);

private:
  struct message_template {
    std::string body;
    std::size_t slot_offset = 0;
    std::size_t seq_offset = 0;
    std::size_t profile_offset = 0;
  };

  void build_templates(message_mix mix, wire_format format);

  std::string id_prefix_;
  unsigned slot_digits_;
  unsigned profile_digits_;
  std::uint64_t profiles_;
  std::mt19937_64 rng_;
  // kind_table_[r] for r uniform in [0, 100) is the index of a kind in templates_.
  std::array<std::uint8_t, 100> kind_table_{};
  std::vector<std::vector<message_template>> templates_;
};

} // namespace nudge::bench
