#include "tests/bench/workload.hpp"

#include <msgpack.hpp>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstring>
#include <stdexcept>
#include <utility>

namespace nudge::bench {
namespace {

// Placeholder characters that no other part of a generated message contains.
constexpr char slot_mark = '#';
constexpr char seq_mark = '@';
constexpr char profile_mark = '~';
constexpr unsigned variants_per_kind = 16;

enum class kind : std::uint8_t {
  page_view,
  product_view,
  cart_add,
  cart_remove,
  purchase,
  consent,
  feedback
};
constexpr std::size_t kind_count = 7;

constexpr std::array<std::string_view, kind_count> kind_names{
    "page_view", "product_view", "cart_add", "cart_remove", "purchase", "consent", "feedback"};

// Percent of messages of each kind in the retail mix; sums to 100.
constexpr std::array<unsigned, kind_count> retail_weights{35, 30, 15, 5, 5, 5, 5};
constexpr std::array<unsigned, kind_count> page_view_weights{100, 0, 0, 0, 0, 0, 0};

constexpr std::array<std::string_view, 6> categories{"shoes", "shirts",  "bags",
                                                     "hats",  "jackets", "socks"};
constexpr std::array<std::string_view, 3> outcomes{"shown", "accepted", "dismissed"};

class json_emitter {
public:
  void begin_map(std::uint32_t) { writer_.StartObject(); }
  void end_map() { writer_.EndObject(); }
  void key(std::string_view k) {
    writer_.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
  }
  void str(std::string_view s) {
    writer_.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  }
  void number(double d) { writer_.Double(d); }
  void integer(std::int64_t i) { writer_.Int64(i); }
  std::string take() const { return std::string(buffer_.GetString(), buffer_.GetSize()); }

private:
  rapidjson::StringBuffer buffer_;
  rapidjson::Writer<rapidjson::StringBuffer> writer_{buffer_};
};

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

class msgpack_emitter {
public:
  void begin_map(std::uint32_t n) { packer_.pack_map(n); }
  void end_map() {}
  void key(std::string_view k) { str(k); }
  void str(std::string_view s) {
    packer_.pack_str(static_cast<std::uint32_t>(s.size()));
    packer_.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
  }
  void number(double d) { pack_float64(buffer_, d); }
  void integer(std::int64_t i) { packer_.pack_int64(i); }
  std::string take() const { return std::string(buffer_.data(), buffer_.size()); }

private:
  msgpack::sbuffer buffer_;
  msgpack::packer<msgpack::sbuffer> packer_{buffer_};
};

struct variant_data {
  std::string sku;
  std::string category;
  double price;
  std::string path;
  std::string outcome;
  std::int64_t quantity;
};

variant_data random_variant(std::mt19937_64& rng) {
  variant_data v;
  std::uniform_int_distribution<int> sku_dist(1, 500);
  std::uniform_int_distribution<int> price_dist(4, 299);
  std::uniform_int_distribution<std::size_t> cat_dist(0, categories.size() - 1);
  std::uniform_int_distribution<std::size_t> out_dist(0, outcomes.size() - 1);
  std::uniform_int_distribution<int> page_dist(0, 3);
  std::uniform_int_distribution<std::int64_t> qty_dist(1, 3);
  // One view in eight is the SKU the example policy promotes.
  v.sku = (sku_dist(rng) % 8 == 0) ? "SKU-42" : "SKU-" + std::to_string(sku_dist(rng));
  v.category = v.sku == "SKU-42" ? "shoes" : std::string(categories[cat_dist(rng)]);
  v.price = v.sku == "SKU-42" ? 49.0 : price_dist(rng) + 0.99;
  switch (page_dist(rng)) {
  case 0: v.path = "/"; break;
  case 1: v.path = "/c/" + v.category; break;
  case 2: v.path = "/p/" + v.sku; break;
  default: v.path = "/search?q=" + v.category; break;
  }
  v.outcome = std::string(outcomes[out_dist(rng)]);
  v.quantity = qty_dist(rng);
  return v;
}

template <class Emitter>
void emit_event_head(Emitter& e, std::uint32_t fields, std::string_view id, std::string_view name,
                     std::string_view profile) {
  e.begin_map(fields);
  e.key("type");
  e.str("event");
  e.key("id");
  e.str(id);
  e.key("name");
  e.str(name);
  e.key("identities");
  e.begin_map(1);
  e.key("anonymous_id");
  e.str(profile);
  e.end_map();
}

template <class Emitter>
void emit_message(Emitter& e, kind k, std::string_view id, std::string_view profile,
                  const variant_data& v) {
  switch (k) {
  case kind::page_view:
    emit_event_head(e, 5, id, "page_view", profile);
    e.key("properties");
    e.begin_map(1);
    e.key("path");
    e.str(v.path);
    e.end_map();
    break;
  case kind::product_view:
    emit_event_head(e, 5, id, "product_view", profile);
    e.key("properties");
    e.begin_map(3);
    e.key("sku");
    e.str(v.sku);
    e.key("category");
    e.str(v.category);
    e.key("price");
    e.number(v.price);
    e.end_map();
    break;
  case kind::cart_add:
    emit_event_head(e, 5, id, "cart_add", profile);
    e.key("properties");
    e.begin_map(4);
    e.key("sku");
    e.str(v.sku);
    e.key("category");
    e.str(v.category);
    e.key("price");
    e.number(v.price);
    e.key("quantity");
    e.integer(v.quantity);
    e.end_map();
    break;
  case kind::cart_remove:
    emit_event_head(e, 5, id, "cart_remove", profile);
    e.key("properties");
    e.begin_map(2);
    e.key("sku");
    e.str(v.sku);
    e.key("price");
    e.number(v.price);
    e.end_map();
    break;
  case kind::purchase:
    emit_event_head(e, 5, id, "purchase", profile);
    e.key("properties");
    e.begin_map(5);
    e.key("sku");
    e.str(v.sku);
    e.key("category");
    e.str(v.category);
    e.key("price");
    e.number(v.price * static_cast<double>(v.quantity));
    e.key("quantity");
    e.integer(v.quantity);
    e.key("currency");
    e.str("EUR");
    e.end_map();
    break;
  case kind::consent:
    e.begin_map(5);
    e.key("type");
    e.str("consent");
    e.key("id");
    e.str(id);
    e.key("identities");
    e.begin_map(1);
    e.key("anonymous_id");
    e.str(profile);
    e.end_map();
    e.key("purposes");
    e.begin_map(2);
    e.key("analytics");
    e.str("granted");
    e.key("personalization");
    e.str("granted");
    e.end_map();
    e.key("source");
    e.str("nudge-bench");
    break;
  case kind::feedback:
    e.begin_map(5);
    e.key("type");
    e.str("feedback");
    e.key("id");
    e.str(id);
    e.key("identities");
    e.begin_map(1);
    e.key("anonymous_id");
    e.str(profile);
    e.end_map();
    e.key("action");
    e.str("cart_recovery");
    e.key("outcome");
    e.str(v.outcome);
    break;
  }
  e.end_map();
}

unsigned digits_for(std::uint64_t max_value) {
  unsigned n = 1;
  while (max_value >= 10) {
    max_value /= 10;
    ++n;
  }
  return n;
}

std::size_t find_run(const std::string& body, char mark, unsigned width) {
  std::size_t at = body.find(std::string(width, mark));
  if (at == std::string::npos)
    throw std::logic_error("workload: placeholder not found");
  return at;
}

void write_digits(char* at, unsigned width, std::uint64_t value) {
  for (unsigned i = width; i-- > 0;) {
    at[i] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
}

} // namespace

workload::workload(message_mix mix, wire_format format, std::string id_prefix,
                   std::uint32_t slot_count, std::uint64_t profiles, std::uint64_t seed)
    : id_prefix_(std::move(id_prefix)),
      slot_digits_(digits_for(slot_count > 0 ? slot_count - 1 : 0)),
      profile_digits_(digits_for(profiles > 0 ? profiles - 1 : 0)),
      profiles_(profiles > 0 ? profiles : 1), rng_(seed) {
  build_templates(mix, format);
}

void workload::build_templates(message_mix mix, wire_format format) {
  const auto& weights = mix == message_mix::retail ? retail_weights : page_view_weights;
  std::size_t r = 0;
  for (std::size_t k = 0; k < kind_count; ++k)
    for (unsigned i = 0; i < weights[k]; ++i)
      kind_table_[r++] = static_cast<std::uint8_t>(k);

  const std::string id =
      id_prefix_ + std::string(slot_digits_, slot_mark) + "-" + std::string(seq_digits, seq_mark);
  const std::string profile = "a-" + std::string(profile_digits_, profile_mark);
  templates_.resize(kind_count);
  for (std::size_t k = 0; k < kind_count; ++k) {
    if (weights[k] == 0)
      continue;
    for (unsigned i = 0; i < variants_per_kind; ++i) {
      variant_data v = random_variant(rng_);
      message_template t;
      if (format == wire_format::json) {
        json_emitter e;
        emit_message(e, static_cast<kind>(k), id, profile, v);
        t.body = e.take();
      } else {
        msgpack_emitter e;
        emit_message(e, static_cast<kind>(k), id, profile, v);
        t.body = e.take();
      }
      t.slot_offset = find_run(t.body, slot_mark, slot_digits_);
      t.seq_offset = find_run(t.body, seq_mark, seq_digits);
      t.profile_offset = find_run(t.body, profile_mark, profile_digits_);
      templates_[k].push_back(std::move(t));
    }
  }
}

void workload::next(std::string& out, std::uint32_t slot, std::uint64_t seq) {
  std::uniform_int_distribution<std::uint64_t> profile_dist(0, profiles_ - 1);
  std::uniform_int_distribution<std::size_t> variant_dist(0, variants_per_kind - 1);
  const auto& kind_templates = templates_[kind_table_[rng_() % kind_table_.size()]];
  const message_template& t = kind_templates[variant_dist(rng_)];
  out.assign(t.body);
  write_digits(out.data() + t.slot_offset, slot_digits_, slot);
  write_digits(out.data() + t.seq_offset, seq_digits, seq);
  write_digits(out.data() + t.profile_offset, profile_digits_, profile_dist(rng_));
}

bool workload::parse_id(std::string_view id, parsed_id& result) const {
  if (id.size() != id_prefix_.size() + slot_digits_ + 1 + seq_digits)
    return false;
  if (id.substr(0, id_prefix_.size()) != id_prefix_)
    return false;
  std::size_t at = id_prefix_.size();
  std::uint64_t slot = 0;
  for (unsigned i = 0; i < slot_digits_; ++i, ++at) {
    char c = id[at];
    if (c < '0' || c > '9')
      return false;
    slot = slot * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (id[at++] != '-')
    return false;
  std::uint64_t seq = 0;
  for (unsigned i = 0; i < seq_digits; ++i, ++at) {
    char c = id[at];
    if (c < '0' || c > '9')
      return false;
    seq = seq * 10 + static_cast<std::uint64_t>(c - '0');
  }
  result.slot = static_cast<std::uint32_t>(slot);
  result.seq = seq;
  return true;
}

std::vector<std::pair<std::string, unsigned>> workload::mix_weights(message_mix mix) {
  const auto& weights = mix == message_mix::retail ? retail_weights : page_view_weights;
  std::vector<std::pair<std::string, unsigned>> result;
  for (std::size_t k = 0; k < kind_count; ++k)
    if (weights[k] > 0)
      result.emplace_back(std::string(kind_names[k]), weights[k]);
  return result;
}

} // namespace nudge::bench
