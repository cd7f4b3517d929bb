#include <catch2/catch.hpp>

#include <msgpack.hpp>

#include "storage/codec.hpp"
#include "test_support.hpp"

namespace nudge::storage {
namespace {

using test::at_ms;

std::span<const std::byte> bytes_of(const msgpack::sbuffer& b) {
  return std::as_bytes(std::span<const char>(b.data(), b.size()));
}
std::span<const std::byte> bytes_of(const std::string& s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

TEST_CASE("a full profile snapshot survives an encode/decode round trip", "[storage][codec]") {
  profile_snapshot in{test::full_profile("p-1"), 42};
  msgpack::sbuffer buf;
  encode(in, buf);

  profile_snapshot out;
  out.state.traits.push_back({"stale", 1.0, {}});  // decode overwrites what was there
  REQUIRE(!decode(bytes_of(buf), out));
  CHECK(out.seq == 42);
  CHECK(test::same(in.state, out.state));
  // spot checks, so that a field missed by both sides of same() would still show
  REQUIRE(out.state.consent.size() == 2);
  CHECK(out.state.consent[0].expires == at_ms(1'800'000'000'000));
  CHECK_FALSE(out.state.consent[1].expires.has_value());
  CHECK(std::holds_alternative<std::monostate>(out.state.traits[3].value));
  CHECK(out.state.traits[3].ts == at_ms(-5));
  CHECK(std::get<bool>(out.state.traits[1].value));
  CHECK(out.state.decisions[1].holdout());
  REQUIRE(out.state.decisions[0].relied_on_count() == 2);
  CHECK(out.state.decisions[0].relied_on(0) == "personalization");
  CHECK(out.state.decisions[0].relied_on(1) == "marketing_email");
  REQUIRE(out.state.decisions[0].action_count() == 2);
  CHECK(out.state.decisions[0].action(1).channel == "email");
  CHECK(out.state.decisions[0].action(1).placement.empty());
  CHECK(out.state.stats.by_name[0].sums[1] == std::pair<std::string, double>{"qty", 3.0});
}

TEST_CASE("an empty profile snapshot round-trips", "[storage][codec]") {
  profile_snapshot in;
  msgpack::sbuffer buf;
  encode(in, buf);
  profile_snapshot out{test::full_profile("x"), 9};
  REQUIRE(!decode(bytes_of(buf), out));
  CHECK(out.seq == 0);
  CHECK(test::same(in.state, out.state));
}

TEST_CASE("decode_seq reads a snapshot's seq alone and refuses what decode refuses for framing",
          "[storage][codec]") {
  auto state = test::full_profile("p-1");
  msgpack::sbuffer whole, core;
  encode(profile_snapshot{state, 42}, whole);
  encode_snapshot_core(state, 1'234'567'890'123, core, 1);
  std::uint64_t seq = 0;
  REQUIRE(!decode_seq(bytes_of(whole), seq));
  CHECK(seq == 42);
  REQUIRE(!decode_seq(bytes_of(core), seq));
  CHECK(seq == 1'234'567'890'123);
  // What decode() says of the same bytes' seq.
  profile_snapshot out;
  chunked_logs in_chunks;
  REQUIRE(!decode(bytes_of(core), out, in_chunks));
  CHECK(out.seq == seq);

  const std::string bytes(whole.data(), whole.size());
  seq = 7;
  CHECK(decode_seq(bytes_of(bytes.substr(0, bytes.size() - 1)), seq) == errc::corrupt);  // truncated
  CHECK(decode_seq(bytes_of(bytes + '\x01'), seq) == errc::corrupt);                     // trailing bytes
  CHECK(decode_seq(bytes_of(std::string("\x93\x02\x02\x90")), seq) == errc::corrupt);    // another schema version
  CHECK(decode_seq(bytes_of(std::string("\x92\x01\x02")), seq) == errc::corrupt);        // too few fields
  CHECK(decode_seq(bytes_of(std::string("\x93\x01\xa1x\x90")), seq) == errc::corrupt);  // a seq that is no number
  CHECK(decode_seq(bytes_of(std::string("\x81\x01\x02")), seq) == errc::corrupt);        // a map, not an array
  CHECK(decode_seq(bytes_of(std::string()), seq) == errc::corrupt);
  CHECK(seq == 7);  // untouched by a refusal
}

TEST_CASE("scalars are stored as their natural msgpack types", "[storage][codec]") {
  profile_snapshot in;
  in.state.traits = {{"n", std::monostate{}, {}},
                     {"b", true, {}},
                     {"d", 2.5, {}},
                     {"s", std::string("x"), {}}};
  msgpack::sbuffer buf;
  encode(in, buf);
  auto handle = msgpack::unpack(buf.data(), buf.size());
  const auto& root = handle.get();
  REQUIRE(root.type == msgpack::type::ARRAY);
  CHECK(root.via.array.ptr[0].as<std::uint64_t>() == codec_version);
  const auto& traits = root.via.array.ptr[2].via.array.ptr[5];
  REQUIRE(traits.via.array.size == 4);
  CHECK(traits.via.array.ptr[0].via.array.ptr[1].type == msgpack::type::NIL);
  CHECK(traits.via.array.ptr[1].via.array.ptr[1].type == msgpack::type::BOOLEAN);
  CHECK(traits.via.array.ptr[2].via.array.ptr[1].type == msgpack::type::FLOAT64);
  CHECK(traits.via.array.ptr[3].via.array.ptr[1].type == msgpack::type::STR);
  CHECK(traits.via.array.ptr[0].via.array.ptr[2].type == msgpack::type::POSITIVE_INTEGER);
}

// A snapshot (codec version, seq) whose profile state has the first ten fields, empty
// but for id and times, in an array of `fields`; the caller packs the rest.
void pack_old_state(msgpack::packer<msgpack::sbuffer>& p, std::uint64_t version, std::uint32_t fields,
                    const std::string& id) {
  p.pack_array(3);
  p.pack_uint64(version);
  p.pack_uint64(12);
  p.pack_array(fields);
  p.pack(id);
  p.pack_int64(1);
  p.pack_int64(2);
  for (int i = 0; i < 3; ++i)
    p.pack_array(0);
  p.pack_array(4);
  p.pack_uint64(0);
  p.pack_int64(0);
  p.pack_int64(0);
  p.pack_array(0);
  for (int i = 0; i < 3; ++i)
    p.pack_array(0);
}

TEST_CASE("a snapshot core keeps its decision log, history and seen messages out of line, in chunks",
          "[storage][codec]") {
  auto state = test::full_profile("p-1");  // two decisions from ordinal 3, two events, two seen
  state.history_base = 70;
  state.seen_base = 130;
  msgpack::sbuffer buf;
  encode_snapshot_core(state, 8, buf, 1);  // the first seen message in a chunk
  {
    auto handle = msgpack::unpack(buf.data(), buf.size());
    const auto& s = handle.get().via.array.ptr[2];
    REQUIRE(s.via.array.size == 19);
    CHECK(s.via.array.ptr[7].via.array.size == 0);  // no events inline
    CHECK(s.via.array.ptr[8].via.array.size == 0);  // no decisions inline
    CHECK(s.via.array.ptr[11].via.bin.size == 16);  // the newer seen message inline
    CHECK(s.via.array.ptr[13].as<std::uint64_t>() == 3);
    CHECK(s.via.array.ptr[14].as<std::uint64_t>() == 2);
    CHECK(s.via.array.ptr[15].as<std::uint64_t>() == 70);
    CHECK(s.via.array.ptr[16].as<std::uint64_t>() == 2);
    CHECK(s.via.array.ptr[17].as<std::uint64_t>() == 130);
    CHECK(s.via.array.ptr[18].as<std::uint64_t>() == 1);
  }
  profile_snapshot out;
  chunked_logs in_chunks;
  REQUIRE(!decode(bytes_of(buf), out, in_chunks));
  REQUIRE(in_chunks.decisions);
  CHECK(*in_chunks.decisions == 2);
  REQUIRE(in_chunks.history);
  CHECK(*in_chunks.history == 2);
  REQUIRE(in_chunks.seen);
  CHECK(*in_chunks.seen == 1);
  CHECK(out.seq == 8);
  CHECK(out.state.decisions.empty());
  CHECK(out.state.history.empty());
  REQUIRE(out.state.seen.size() == 1);  // the core's; the first is in its chunk
  CHECK(out.state.seen[0].key_hash == state.seen[1].key_hash);
  CHECK(out.state.decisions_base == 3);
  CHECK(out.state.history_base == 70);
  CHECK(out.state.seen_base == 130);
  CHECK(out.state.seen_spill_until == state.seen_spill_until);
  // The reader without a chunk count refuses a core whose records are elsewhere,
  // rather than hand back a profile that silently lost them.
  CHECK(decode(bytes_of(buf), out) == errc::corrupt);
  {
    auto no_decisions = state;
    no_decisions.decisions.clear();
    buf.clear();
    encode_snapshot_core(no_decisions, 8, buf);
    CHECK(decode(bytes_of(buf), out) == errc::corrupt);  // the history is still elsewhere
    no_decisions.history.clear();
    buf.clear();
    encode_snapshot_core(no_decisions, 8, buf, 1);
    CHECK(decode(bytes_of(buf), out) == errc::corrupt);  // a seen message is still elsewhere
    buf.clear();
    encode_snapshot_core(no_decisions, 8, buf);
    CHECK(!decode(bytes_of(buf), out));  // empty logs, and every seen message inline, lose nothing
    CHECK(out.state.seen.size() == 2);
  }

  // An inline snapshot decodes with its records and no chunk counts.
  state.history_base = 0;  // the inline form does not keep them
  state.seen_base = 0;
  buf.clear();
  encode(profile_snapshot{state, 8}, buf);
  REQUIRE(!decode(bytes_of(buf), out, in_chunks));
  CHECK_FALSE(in_chunks.decisions);
  CHECK_FALSE(in_chunks.history);
  CHECK_FALSE(in_chunks.seen);
  CHECK(test::same(out.state, state));

  buf.clear();
  encode_decision_chunk(std::span(state.decisions).subspan(1), 4, buf);
  std::uint64_t first = 0;
  std::vector<policies::decision_record> run;
  REQUIRE(!decode_decision_chunk(bytes_of(buf), first, run));
  CHECK(first == 4);
  REQUIRE(run.size() == 1);
  CHECK(test::same(run[0], state.decisions[1]));
  CHECK(decode_decision_chunk(bytes_of(buf).subspan(0, buf.size() - 1), first, run) == errc::corrupt);

  buf.clear();
  encode_event_chunk(std::span(state.history), 70, buf);
  std::vector<policies::event_record> events;
  REQUIRE(!decode_event_chunk(bytes_of(buf), first, events));
  CHECK(first == 70);
  REQUIRE(events.size() == 2);
  CHECK(test::same(events[0], state.history[0]));
  CHECK(test::same(events[1], state.history[1]));
  CHECK(decode_event_chunk(bytes_of(buf).subspan(0, buf.size() - 1), first, events) == errc::corrupt);

  buf.clear();
  encode_seen_chunk(std::span(state.seen).subspan(1), 131, buf);
  std::vector<policies::seen_message> seen;
  REQUIRE(!decode_seen_chunk(bytes_of(buf), first, seen));
  CHECK(first == 131);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].key_hash == state.seen[1].key_hash);
  CHECK(seen[0].ts == state.seen[1].ts);
  CHECK(decode_seen_chunk(bytes_of(buf).subspan(0, buf.size() - 1), first, seen) == errc::corrupt);
}

TEST_CASE("a core of schema 3 (seen messages inline) still decodes", "[storage][codec]") {
  // Written as schema 3 wrote it: 17 fields, the seen messages inline in field 11.
  auto state = test::full_profile("p-1");
  state.history_base = 70;
  msgpack::sbuffer core;
  encode_snapshot_core(state, 8, core);
  auto handle = msgpack::unpack(core.data(), core.size());
  const auto& s = handle.get().via.array.ptr[2].via.array;
  msgpack::sbuffer inline_buf;
  encode(profile_snapshot{state, 8}, inline_buf);
  auto inline_handle = msgpack::unpack(inline_buf.data(), inline_buf.size());
  const auto& inline_seen = inline_handle.get().via.array.ptr[2].via.array.ptr[11];
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> p(buf);
  p.pack_array(3);
  p.pack_uint64(codec_version);
  p.pack_uint64(8);
  p.pack_array(17);
  for (std::uint32_t i = 0; i < 17; ++i)
    p.pack(i == 11 ? inline_seen : s.ptr[i]);
  profile_snapshot out;
  chunked_logs in_chunks;
  REQUIRE(!decode(bytes_of(buf), out, in_chunks));
  CHECK(in_chunks.decisions);
  CHECK(in_chunks.history);
  CHECK_FALSE(in_chunks.seen);
  CHECK(out.state.seen_base == 0);
  REQUIRE(out.state.seen.size() == 2);
  CHECK(out.state.seen[1].key_hash == state.seen[1].key_hash);
}

TEST_CASE("a core of schema 2 (decisions in chunks, history inline) still decodes", "[storage][codec]") {
  // Written as schema 2 wrote it: 15 fields, the history inline, field 14 the number
  // of decisions in their chunks.
  const auto state = test::full_profile("p-1");
  msgpack::sbuffer inline_buf;
  encode(profile_snapshot{state, 8}, inline_buf);
  auto handle = msgpack::unpack(inline_buf.data(), inline_buf.size());
  const auto& s = handle.get().via.array.ptr[2].via.array;
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> p(buf);
  p.pack_array(3);
  p.pack_uint64(codec_version);
  p.pack_uint64(8);
  p.pack_array(15);
  for (std::uint32_t i = 0; i < 14; ++i) {
    if (i == 8)
      p.pack_array(0);
    else
      p.pack(s.ptr[i]);
  }
  p.pack_uint64(state.decisions.size());
  profile_snapshot out;
  chunked_logs in_chunks;
  REQUIRE(!decode(bytes_of(buf), out, in_chunks));
  REQUIRE(in_chunks.decisions);
  CHECK(*in_chunks.decisions == 2);
  CHECK_FALSE(in_chunks.history);
  CHECK(out.state.history_base == 0);
  REQUIRE(out.state.history.size() == 2);
  CHECK(test::same(out.state.history[1], state.history[1]));
}

TEST_CASE("a profile's seen messages are stored as one binary run of 16-byte records", "[storage][codec]") {
  profile_snapshot in{test::full_profile("p-1"), 4};
  msgpack::sbuffer buf;
  encode(in, buf);
  {
    auto handle = msgpack::unpack(buf.data(), buf.size());
    const auto& state = handle.get().via.array.ptr[2];
    REQUIRE(state.via.array.size == 14);  // the last: the decision log's first ordinal
    const auto& seen = state.via.array.ptr[11];
    REQUIRE(seen.type == msgpack::type::BIN);
    REQUIRE(seen.via.bin.size == 32);
    // Big-endian hash first.
    CHECK(static_cast<unsigned char>(seen.via.bin.ptr[0]) == 0x6a);
    CHECK(static_cast<unsigned char>(seen.via.bin.ptr[7]) == 0x3e);
  }
  profile_snapshot out;
  REQUIRE(!decode(bytes_of(buf), out));
  REQUIRE(out.state.seen.size() == 2);
  CHECK(out.state.seen[1].key_hash == ~std::uint64_t{0});
  CHECK(out.state.seen_spill_until == in.state.seen_spill_until);

  // A run that is not whole records is corrupt.
  msgpack::sbuffer bad;
  msgpack::packer<msgpack::sbuffer> p(bad);
  pack_old_state(p, codec_version, 13, "p-bad");
  p.pack_array(0);  // timers
  p.pack_bin(17);
  p.pack_bin_body(std::string(17, 'x').data(), 17);
  p.pack_int64(0);
  CHECK(decode(bytes_of(bad), out) == errc::corrupt);
}

TEST_CASE("a snapshot and a journal entry written before timers existed decode with none", "[storage][codec]") {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> p(buf);
  // The ten-field profile state of codec version 1 before `timers` was appended.
  pack_old_state(p, 1, 10, "p-old");
  profile_snapshot snap;
  snap.state.timers = {{"x", at_ms(1), "m"}};
  REQUIRE(!decode(bytes_of(buf), snap));
  CHECK(snap.seq == 12);
  CHECK(snap.state.id == "p-old");
  CHECK(snap.state.timers.empty());
  // Nor had it seen messages: its ids are in the table by id for a whole window.
  CHECK(snap.state.seen.empty());
  CHECK(snap.state.seen_spill_until == policies::timestamp::max());

  // A journal entry of nine fields after the version.
  msgpack::sbuffer jbuf;
  msgpack::packer<msgpack::sbuffer> j(jbuf);
  j.pack_array(10);
  j.pack_uint64(1);
  j.pack_uint64(3);
  j.pack(std::string("m-3"));
  j.pack(std::string("web"));
  j.pack_int64(5);
  j.pack_nil();
  for (int i = 0; i < 3; ++i)
    j.pack_array(0);
  j.pack_nil();
  journal_entry entry = test::sample_entry(1);
  REQUIRE(!decode(bytes_of(jbuf), entry));
  CHECK(entry.seq == 3);
  CHECK(entry.timers.empty());
}

TEST_CASE("a journal entry round-trips with and without its optional parts",
          "[storage][codec]") {
  msgpack::sbuffer buf;
  SECTION("every part set") {
    journal_entry in = test::sample_entry(7);
    encode(in, buf);
    journal_entry out;
    REQUIRE(!decode(bytes_of(buf), out));
    CHECK(test::same(in, out));
  }
  SECTION("no event, no decision") {
    journal_entry in;
    in.seq = 1;
    in.message_id = "c-1";
    in.source = "cmp";
    in.consent = {{"marketing_sms", false, at_ms(5), "cmp", at_ms(6)}};
    encode(in, buf);
    journal_entry out = test::sample_entry(99);
    REQUIRE(!decode(bytes_of(buf), out));
    CHECK_FALSE(out.event.has_value());
    CHECK_FALSE(out.decision.has_value());
    CHECK(test::same(in, out));
  }
}

TEST_CASE("a dedupe entry round-trips its opaque reply bytes", "[storage][codec]") {
  dedupe_entry in{at_ms(1'790'000'000'000), "p-7", std::string("\x00\xff{\"a\":1}", 9)};
  msgpack::sbuffer buf;
  encode(in, "m-1", buf);
  dedupe_entry out;
  REQUIRE(!decode(bytes_of(buf), "m-1", out));
  CHECK(out.ts == in.ts);
  CHECK(out.profile_id == in.profile_id);
  CHECK(out.reply == in.reply);
}

TEST_CASE("a dedupe entry stores a JSON reply packed, in under half its bytes, and gives it back whole",
          "[storage][codec]") {
  const std::string reply =
    R"({"type":"decision","id":"31dc4e8c-2-0-000000000000","decision_id":"d-01M9659PXE5SGT95NK7VCF3XHN",)"
    R"("profile_id":"p-01M9659PXDF8NTP3EZ3T5E90Y4","policy_version":"retail-example-1","actions":[{"action":)"
    R"("welcome","channel":"web","placement":"banner","score":0.3,"payload":{"template":"welcome"}}]})";
  dedupe_entry in{at_ms(1'790'000'000'000), "p-01M9659PXDF8NTP3EZ3T5E90Y4", reply};
  msgpack::sbuffer buf;
  encode(in, "31dc4e8c-2-0-000000000000", buf);
  CHECK(buf.size() < (reply.size() + in.profile_id.size()) / 2);
  dedupe_entry out;
  REQUIRE(!decode(bytes_of(buf), "31dc4e8c-2-0-000000000000", out));
  CHECK(out.ts == in.ts);
  CHECK(out.profile_id == in.profile_id);
  CHECK(out.reply == reply);

  SECTION("an entry written before packing (four elements, the reply as is) still reads") {
    msgpack::sbuffer old;
    msgpack::packer<msgpack::sbuffer> p(old);
    p.pack_array(4);
    p.pack_uint64(codec_version);
    p.pack_uint64(1'790'000'000'000);
    p.pack(in.profile_id);
    p.pack_bin(static_cast<std::uint32_t>(reply.size()));
    p.pack_bin_body(reply.data(), static_cast<std::uint32_t>(reply.size()));
    dedupe_entry earlier;
    REQUIRE(!decode(bytes_of(old), "31dc4e8c-2-0-000000000000", earlier));
    CHECK(earlier.ts == in.ts);
    CHECK(earlier.profile_id == in.profile_id);
    CHECK(earlier.reply == reply);
  }
  SECTION("the format is its own: an unknown packing is corrupt, not a reply") {
    msgpack::sbuffer other;
    msgpack::packer<msgpack::sbuffer> p(other);
    p.pack_array(5);
    p.pack_uint64(codec_version);
    p.pack_uint64(1'790'000'000'000);
    p.pack(std::string("p-1"));
    p.pack_bin(1);
    p.pack_bin_body("\x01", 1);
    p.pack_uint64(2);  // a packing this build does not know
    CHECK(decode(bytes_of(other), "m-1", out) == errc::corrupt);
  }
}

TEST_CASE("an outbox entry round-trips its attempts and next attempt; older ones decode with none",
          "[storage][codec]") {
  outbox_entry in{"p-1", "d-1", "esp", at_ms(1'790'000'000'000), R"({"type":"decision"})", 4,
                  at_ms(1'790'000'004'000)};
  msgpack::sbuffer buf;
  encode(in, buf);
  outbox_entry out;
  REQUIRE(!decode(bytes_of(buf), out));
  CHECK(out.created == in.created);
  CHECK(out.body == in.body);
  CHECK(out.attempts == 4);
  CHECK(out.next_attempt == in.next_attempt);

  msgpack::sbuffer old;
  msgpack::packer<msgpack::sbuffer> p(old);
  p.pack_array(3);  // version, created, body
  p.pack_uint64(1);
  p.pack_int64(1'790'000'000'000);
  p.pack_bin(2);
  p.pack_bin_body("{}", 2);
  outbox_entry before;
  before.attempts = 9;
  REQUIRE(!decode(bytes_of(old), before));
  CHECK(before.created == at_ms(1'790'000'000'000));
  CHECK(before.body == "{}");
  CHECK(before.attempts == 0);
  CHECK(before.next_attempt == policies::timestamp{});

  msgpack::sbuffer four;  // version, created, body, attempts: before the backoff was stored
  msgpack::packer<msgpack::sbuffer> p4(four);
  p4.pack_array(4);
  p4.pack_uint64(1);
  p4.pack_int64(1'790'000'000'000);
  p4.pack_bin(2);
  p4.pack_bin_body("{}", 2);
  p4.pack_uint32(2);
  outbox_entry stored;
  stored.next_attempt = at_ms(5);
  REQUIRE(!decode(bytes_of(four), stored));
  CHECK(stored.attempts == 2);
  CHECK(stored.next_attempt == policies::timestamp{});
}

TEST_CASE("values decoded one after another on a thread each decode whole: past the kept zone's chunk, after a failure",
          "[storage][codec]") {
  // The decoder keeps one msgpack zone per thread and clears it after each value; a
  // value larger than its 64 KiB chunk adds chunks that the clear frees again.
  profile_snapshot big{test::full_profile("p-big"), 7};
  const auto model = big.state.history.front();
  for (int i = 0; i < 3000; ++i)
    big.state.history.push_back(model);
  msgpack::sbuffer big_bytes, small_bytes, entry_bytes;
  encode(big, big_bytes);
  REQUIRE(big_bytes.size() > 64 * 1024);
  const profile_snapshot small{test::full_profile("p-small"), 8};
  encode(small, small_bytes);
  const auto entry = test::sample_entry(5);
  encode(entry, entry_bytes);
  const std::string truncated(big_bytes.data(), big_bytes.size() / 2);

  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    profile_snapshot out;
    REQUIRE(!decode(bytes_of(big_bytes), out));
    CHECK(out.seq == 7);
    CHECK(test::same(big.state, out.state));
    CHECK(decode(bytes_of(truncated), out) == errc::corrupt);  // throws inside the unpack
    profile_snapshot again;
    REQUIRE(!decode(bytes_of(small_bytes), again));
    CHECK(again.seq == 8);
    CHECK(test::same(small.state, again.state));
    journal_entry e;
    REQUIRE(!decode(bytes_of(entry_bytes), e));
    CHECK(e.message_id == entry.message_id);
    CHECK(e.seq == entry.seq);
  }
}

TEST_CASE("corrupt bytes decode to errc::corrupt", "[storage][codec]") {
  msgpack::sbuffer good;
  encode(profile_snapshot{test::full_profile("p-1"), 3}, good);
  const std::string valid(good.data(), good.size());
  profile_snapshot out;

  SECTION("empty input") { CHECK(decode(bytes_of(std::string()), out) == errc::corrupt); }
  SECTION("garbage") {
    CHECK(decode(bytes_of(std::string("\xc1\xc1\xc1 not msgpack")), out) == errc::corrupt);
  }
  SECTION("truncated") {
    for (std::size_t n : {std::size_t{1}, valid.size() / 2, valid.size() - 1})
      CHECK(decode(bytes_of(valid.substr(0, n)), out) == errc::corrupt);
  }
  SECTION("trailing bytes") { CHECK(decode(bytes_of(valid + "x"), out) == errc::corrupt); }
  SECTION("another schema version") {
    std::string other = valid;
    REQUIRE(static_cast<unsigned char>(other[1]) == codec_version);  // fixint after fixarray
    other[1] = 2;
    CHECK(decode(bytes_of(other), out) == errc::corrupt);
  }
  SECTION("a value of another type") {
    msgpack::sbuffer b;
    encode(test::sample_entry(1), b);
    CHECK(decode(bytes_of(b), out) == errc::corrupt);
    dedupe_entry d;
    CHECK(decode(bytes_of(valid), "m-1", d) == errc::corrupt);
  }
  SECTION("a wrong field type") {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> p(b);
    p.pack_array(3);
    p.pack_uint64(codec_version);
    p.pack(std::string("not a seq"));
    p.pack_nil();
    CHECK(decode(bytes_of(b), out) == errc::corrupt);
  }
}

}  // namespace
}  // namespace nudge::storage
