// The compact text block that profile records keep their strings in.
#include "policies/packed_strings.hpp"
#include "policies/profile.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace nudge::policies {
namespace {

TEST_CASE("packed strings keep each text, empty ones and long ones alike", "[policies][packed]") {
  const std::string long_text(5000, 'x');
  std::vector<std::string_view> parts{"", "a", long_text, "", std::string_view("nul\0byte", 8), "é"};
  packed_strings p(parts);
  REQUIRE(p.size() == parts.size());
  for (std::size_t i = 0; i < parts.size(); ++i)
    CHECK(p[i] == parts[i]);
  CHECK(p.block_bytes() == 4 + 2 * parts.size() + 1 + 5000 + 8 + 2);

  SECTION("a copy owns its own block; a move leaves the source empty") {
    packed_strings copy(p);
    CHECK(copy[2] == long_text);
    CHECK(copy[2].data() != p[2].data());
    packed_strings moved(std::move(p));
    CHECK(moved[4] == std::string_view("nul\0byte", 8));
    CHECK(p.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    copy = moved;
    CHECK(copy.size() == parts.size());
    copy = copy;  // self-assignment keeps the texts
    CHECK(copy[1] == "a");
  }
}

TEST_CASE("texts over 64 KiB in all switch the offsets to 32 bits", "[policies][packed]") {
  const std::string big(70'000, 'y');
  std::vector<std::string_view> parts{"head", big, "tail", big};
  packed_strings p(parts);
  REQUIRE(p.size() == 4);
  CHECK(p[0] == "head");
  CHECK(p[1] == big);
  CHECK(p[2] == "tail");
  CHECK(p[3].size() == 70'000);
  CHECK(p.block_bytes() == 4 + 4 * 4 + 8 + 140'000);
  packed_strings copy(p);
  CHECK(copy[3] == big);
}

TEST_CASE("texts over 32 KiB in all switch the offsets to 32 bits, shared ones too", "[policies][packed]") {
  const std::string mid(40'000, 'm');
  const std::vector<std::string_view> parts{"cart_add", mid, "web"};
  const std::vector<std::uint8_t> shared{1, 0, 1};
  packed_strings p(parts, shared);
  REQUIRE(p.size() == 3);
  CHECK(p[0] == "cart_add");
  CHECK(p[1] == mid);
  CHECK(p[2] == "web");
  // Both short texts are vocabulary slots (2 bytes each) behind 32-bit offsets.
  CHECK(p.block_bytes() == 4 + 4 * 3 + 2 + 40'000 + 2);
  packed_strings copy(p);
  CHECK(copy[0] == "cart_add");
  CHECK(copy[1].size() == 40'000);
}

/// Two distinct texts with the same vocabulary digest (found by counting up).
std::pair<std::string, std::string> colliding_texts(const std::string& prefix) {
  std::vector<std::string> by_digest(vocabulary::slots);
  for (int i = 0;; ++i) {
    std::string t = prefix + std::to_string(i);
    auto& seen = by_digest[vocabulary::digest(t)];
    if (!seen.empty())
      return {seen, t};
    seen = t;
  }
}

TEST_CASE("recurring texts are kept once per process and read back as they were", "[policies][packed]") {
  SECTION("a shared text is a 2-byte slot; the others stay in the block") {
    const std::vector<std::string_view> parts{"m-17", "product_view", "mobile", "category", "shoes"};
    const std::vector<std::uint8_t> shared{0, 1, 1, 1, 0};
    packed_strings p(parts, shared);
    packed_strings plain(parts);
    REQUIRE(p.size() == parts.size());
    for (std::size_t i = 0; i < parts.size(); ++i)
      CHECK(p[i] == parts[i]);
    CHECK(plain.block_bytes() == 4 + 2 * 5 + 4 + 12 + 6 + 8 + 5);
    CHECK(p.block_bytes() == 4 + 2 * 5 + 4 + 2 + 2 + 2 + 5);
    // The text is the vocabulary's, not the block's: a copy reads the same one.
    packed_strings copy(p);
    CHECK(copy[1].data() == p[1].data());
    CHECK(copy[4].data() != p[4].data());
  }
  SECTION("texts of 2 bytes or less, empty ones and ones over 64 bytes stay in the block") {
    const std::string long_path(65, 'p');
    const std::vector<std::string_view> parts{"", "ab", long_path, std::string_view(long_path).substr(0, 64)};
    packed_strings p(parts, std::vector<std::uint8_t>(parts.size(), 1));
    for (std::size_t i = 0; i < parts.size(); ++i)
      CHECK(p[i] == parts[i]);
    CHECK(p.block_bytes() == 4 + 2 * 4 + 0 + 2 + 65 + 2);
    CHECK_FALSE(vocabulary::claim(long_path));
    CHECK_FALSE(vocabulary::claim(""));
  }
  SECTION("a text whose slot another owns stays in the block, and is not that other") {
    const auto [first, second] = colliding_texts("packed-collision-");
    REQUIRE(vocabulary::digest(first) == vocabulary::digest(second));
    const std::vector<std::string_view> parts{first, second};
    packed_strings p(parts, std::vector<std::uint8_t>{1, 1});
    CHECK(p[0] == first);
    CHECK(p[1] == second);
    CHECK(p.block_bytes() == 4 + 2 * 2 + 2 + second.size());
    const auto slot = vocabulary::claim(first);
    REQUIRE(slot);
    CHECK(vocabulary::text(*slot) == first);
    CHECK_FALSE(vocabulary::claim(second));
    // Names behave alike: the owner is exact, the other is found by comparing.
    CHECK(name_key::of(first).exact);
    CHECK_FALSE(name_key::of(second).exact);
    CHECK(name_key::of(first).tag == (name_key::of(second).tag | name_key::exact_bit));
  }
}

TEST_CASE("a flood of new texts fills the vocabulary's slots and no more; every text still reads back",
          "[policies][packed]") {
  // In a child process: the vocabulary is process-wide, and the flood would take the
  // slots that other tests' names expect to own.
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::set<std::uint16_t> owned;
    bool all_read_back = true;
    for (int i = 0; i < 100'000; ++i) {
      const std::string path = "flood.path." + std::to_string(i);
      if (auto slot = vocabulary::claim(path))
        owned.insert(*slot);
      const std::string_view parts[] = {path};
      const std::uint8_t shared[] = {1};
      packed_strings p(parts, shared);
      all_read_back = all_read_back && p[0] == path;
    }
    // Every slot taken at most once; texts past them stay in their blocks.
    _exit(all_read_back && owned.size() <= vocabulary::slots && owned.size() > vocabulary::slots / 2 ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("an empty packed list holds no block", "[policies][packed]") {
  packed_strings p;
  CHECK(p.empty());
  CHECK(p.block_bytes() == 0);
  packed_strings q(std::span<const std::string_view>{});
  CHECK(q.empty());
  packed_strings r(q);
  CHECK(r.empty());
}

TEST_CASE("a decision record answers every field from its one block", "[policies][packed]") {
  const timestamp ts{std::chrono::milliseconds(1'800'000'000'000)};
  const shown_action actions[] = {{"cart_recovery", "web", "banner"}, {"upsell", "", ""}};
  const std::string_view relied[] = {"personalization", "marketing_email"};
  decision_record d("d-1", "m-1", ts, "mobile", "hero", "v7", actions, true, relied);
  CHECK(d.decision_id() == "d-1");
  CHECK(d.request_id() == "m-1");
  CHECK(d.ts() == ts);
  CHECK(d.channel() == "mobile");
  CHECK(d.placement() == "hero");
  CHECK(d.policy_version() == "v7");
  CHECK(d.holdout());
  REQUIRE(d.action_count() == 2);
  CHECK(d.action(0).placement == "banner");
  CHECK(d.action(1).action == "upsell");
  CHECK(d.shows("upsell"));
  CHECK_FALSE(d.shows("web"));  // a channel is not an action
  // The bits of its two actions; an action whose bit is not among them is not shown.
  CHECK(d.action_bits() == (decision_record::action_bit("upsell") | decision_record::action_bit(d.action(0).action)));
  for (const char* other : {"welcome", "promo_sku42", "house_banner", "retention_offer", "cart_email"})
    if ((d.action_bits() & decision_record::action_bit(other)) == 0)
      CHECK_FALSE(d.shows(other, decision_record::action_bit(other)));
  CHECK(d.shows("upsell", decision_record::action_bit("upsell")));
  REQUIRE(d.relied_on_count() == 2);
  CHECK(d.relied_on(1) == "marketing_email");
  // Everything but the two ids is the vocabulary's (texts over 2 bytes).
  CHECK(d.channel().data() == vocabulary::text(*vocabulary::claim("mobile")).data());
  CHECK(d.action(0).action.data() == vocabulary::text(*vocabulary::claim("cart_recovery")).data());
  CHECK(d.relied_on(0).data() == vocabulary::text(*vocabulary::claim("personalization")).data());
  CHECK(d.decision_id().data() != vocabulary::text(vocabulary::digest("d-1")).data());
  // One block of 5 + 6 + 2 texts: far below the ~440 B of the record it replaced.
  CHECK(sizeof(decision_record) <= 24);
  CHECK(d.heap_bytes() < 64);

  decision_record none;
  CHECK(none.decision_id().empty());
  CHECK(none.action_count() == 0);
  CHECK(none.relied_on_count() == 0);
  CHECK_FALSE(none.shows(""));
}

TEST_CASE("an event record keeps each property's type and value", "[policies][packed]") {
  const timestamp ts{std::chrono::milliseconds(1'800'000'000'000)};
  const std::string long_value(300, 'v');
  const std::vector<property> props{{"sku", std::string("SKU-1")}, {"price", 49.5},   {"gift", true},
                                    {"wrap", false},                {"note", std::monostate{}},
                                    {"empty", std::string()},       {"long", long_value}, {"neg", -0.0}};
  event_record e("m-1", "cart_add", ts, "mobile", props);
  CHECK(e.id() == "m-1");
  CHECK(e.name() == "cart_add");
  CHECK(e.channel() == "mobile");
  CHECK(e.ts() == ts);
  REQUIRE(e.property_count() == props.size());
  for (std::size_t i = 0; i < props.size(); ++i) {
    CHECK(e.property_at(i).path == props[i].path);
    CHECK(e.property_at(i).value == view_of(props[i].value));
    CHECK(e.find(props[i].path) == view_of(props[i].value));
  }
  CHECK(std::get<double>(*e.find("price")) == 49.5);
  // Name, channel and paths are the vocabulary's; the id and the values are the record's.
  CHECK(e.name().data() == vocabulary::text(*vocabulary::claim("cart_add")).data());
  CHECK(e.channel().data() == vocabulary::text(*vocabulary::claim("mobile")).data());
  CHECK(e.property_at(1).path.data() == vocabulary::text(*vocabulary::claim("price")).data());
  CHECK(std::get<std::string_view>(e.property_at(0).value).data() !=
        vocabulary::text(*vocabulary::claim("SKU-1")).data());
  CHECK(std::holds_alternative<std::string_view>(*e.find("empty")));  // an empty string is not null
  CHECK(std::holds_alternative<std::monostate>(*e.find("note")));    // null is present, not missing
  CHECK_FALSE(e.find("missing").has_value());
  CHECK_FALSE(e.find("SKU-1").has_value());  // values are not paths

  // The same record built from views (as the codec decodes it) is identical.
  std::vector<property_view> views;
  for (const auto& p : props)
    views.push_back({p.path, view_of(p.value)});
  event_record same("m-1", "cart_add", ts, "mobile", views);
  REQUIRE(same.heap_bytes() == e.heap_bytes());
  CHECK(same.find("long") == e.find("long"));

  event_record none;
  CHECK(none.id().empty());
  CHECK(none.property_count() == 0);
  CHECK_FALSE(none.find("").has_value());
  CHECK(none.ts() == timestamp{});
  CHECK(none.name_tag() == event_record::name_tag_of(""));
  CHECK(sizeof(event_record) <= 16);
}

TEST_CASE("an event record keeps its time and a tag of its name side by side", "[policies][profile]") {
  using std::chrono::milliseconds;
  for (const std::int64_t ms : {std::int64_t{1'790'000'123'456}, std::int64_t{0}, std::int64_t{-62'135'596'800'000},
                                std::int64_t{253'402'300'799'999}}) {  // years 0001 and 9999
    INFO(ms);
    const event_record e("m-1", "cart_add", timestamp(milliseconds(ms)), "web", std::span<const property>{});
    if (ms < (std::int64_t{1} << 47)) {
      CHECK(e.ts() == timestamp(milliseconds(ms)));
    } else {
      CHECK(e.ts() == timestamp(milliseconds((std::int64_t{1} << 47) - 1)));  // clamped
    }
    CHECK(e.name() == "cart_add");
    CHECK(e.name_tag() == event_record::name_tag_of("cart_add"));
  }
  // Distinct names of the retail mix have distinct tags, each its slot's owner (a name
  // that is not costs a compare per record whose tag matches).
  std::set<std::uint16_t> tags;
  for (const char* n : {"page_view", "product_view", "cart_add", "cart_remove", "purchase", "support_ticket_opened",
                        "support_ticket_resolved", "action_shown", "action_dismissed", "action_accepted"}) {
    tags.insert(event_record::name_tag_of(n));
    CHECK(name_key::of(n).exact);
  }
  CHECK(tags.size() == 10);
}

}  // namespace
}  // namespace nudge::policies
