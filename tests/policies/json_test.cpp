// policies::parse_json and write_double: numbers read exactly (std::from_chars, checked against glibc's
// strtod), integers kept as integers, a number past double's range refused, one too
// small read as zero, and RapidJSON's own errors and offsets for everything else.
#include "policies/json.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <string>

using nudge::policies::parse_json;

namespace {

double exact(const std::string& text) {
  return std::strtod(text.c_str(), nullptr);  // glibc rounds correctly
}

}  // namespace

TEST_CASE("numbers are read as correctly rounded doubles", "[policies][json]") {
  const std::string long_digits = "0." + std::string(60, '3') + "7";
  for (std::string text : {"0.1", "0.3", "1.15", "2.2250738585072011e-308", "2.2250738585072014e-308",
                           "1.7976931348623157e308", "4.9e-324", "9007199254740993.0", "123456789012345678901234567890",
                           "-0.000123456789e-12", "7.038531e-26", long_digits.c_str()}) {
    INFO(text);
    rapidjson::Document doc;
    REQUIRE(parse_json(doc, "[" + text + "]").ok());
    REQUIRE(doc[0].IsDouble());
    CHECK(doc[0].GetDouble() == exact(text));
  }
}

TEST_CASE("an integer that fits 64 bits stays an integer, a larger one is a double", "[policies][json]") {
  rapidjson::Document doc;
  REQUIRE(parse_json(doc, R"([42, -5, -0, 9223372036854775807, -9223372036854775808, 18446744073709551615,
                             18446744073709551616, -9223372036854775809, 2.0])").ok());
  CHECK(doc[0].IsInt());
  CHECK(doc[0].GetInt() == 42);
  CHECK(doc[1].IsInt());
  CHECK(doc[1].GetInt() == -5);
  CHECK(doc[2].IsInt());
  CHECK(doc[2].GetInt() == 0);
  CHECK(doc[3].IsInt64());
  CHECK(doc[3].GetInt64() == INT64_MAX);
  CHECK(doc[4].IsInt64());
  CHECK(doc[4].GetInt64() == INT64_MIN);
  CHECK(doc[5].IsUint64());
  CHECK_FALSE(doc[5].IsInt64());
  CHECK(doc[5].GetUint64() == UINT64_MAX);
  CHECK(doc[6].IsDouble());
  CHECK(doc[6].GetDouble() == 18446744073709551616.0);
  CHECK(doc[7].IsDouble());
  CHECK(doc[8].IsDouble());
}

// Found by tests/fuzz/fuzz_policy_compile (UBSan, diyfp.h:223): RapidJSON 1.1.0's
// full-precision reader indexed past its powers of ten and read these as garbage
// (-4.1e-297 and the like); its default reader made them infinity.
TEST_CASE("a number past double's range is an error at its offset", "[policies][json]") {
  const std::string long_big = "1" + std::string(40, '3') + "e300";
  for (std::string text : {long_big, "-" + long_big, std::string("1.7976931348623159e308"), std::string("1e400"),
                           "0." + std::string(30, '0') + "1e345"}) {
    INFO(text);
    rapidjson::Document doc;
    const auto result = parse_json(doc, R"({"a": [true, )" + text + "]}");
    CHECK_FALSE(result.ok());
    CHECK(result.offset == 13);
    CHECK(doc.IsNull());
    CHECK(result.describe().rfind("invalid JSON at offset 13: ", 0) == 0);
    // RapidJSON's scanner refuses an exponent past 308 itself; the rest is ours.
    CHECK((result.message == "number out of range" || result.message == "Number too big to be stored in double."));
  }
}

TEST_CASE("a number too small for a double reads as zero with its sign", "[policies][json]") {
  rapidjson::Document doc;
  REQUIRE(parse_json(doc, "[1e-400, -2.5e-330, 0.0000001e-320, 0e-999, -0.0]").ok());
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    INFO(i);
    REQUIRE(doc[i].IsDouble());
    CHECK(doc[i].GetDouble() == 0.0);
  }
  CHECK_FALSE(std::signbit(doc[0].GetDouble()));
  CHECK(std::signbit(doc[1].GetDouble()));
  CHECK(std::signbit(doc[4].GetDouble()));
}

TEST_CASE("syntax errors keep RapidJSON's messages and offsets; deep nesting costs no stack", "[policies][json]") {
  rapidjson::Document doc;
  auto result = parse_json(doc, "[1,]");
  CHECK(result.offset == 3);
  CHECK(result.message == "Invalid value.");
  result = parse_json(doc, R"({"a":1} x)");
  CHECK(result.message == "The document root must not be followed by other values.");
  result = parse_json(doc, "");
  CHECK(result.message == "The document is empty.");
  result = parse_json(doc, std::string(1 << 20, '['));
  CHECK_FALSE(result.ok());
  // Parsing again replaces what the document held; text need not end in a NUL.
  const std::string text = R"({"k":"v","n":1.5}trailing)";
  REQUIRE(parse_json(doc, std::string_view(text).substr(0, 17)).ok());
  CHECK(doc["n"].GetDouble() == 1.5);
  CHECK(std::string(doc["k"].GetString()) == "v");
}

TEST_CASE("a document with pooled allocators parses with the caller's reader stack", "[policies][json]") {
  using pool = rapidjson::MemoryPoolAllocator<>;
  char value_arena[512];
  char stack_arena[512];
  pool values{value_arena, sizeof value_arena};
  pool stack{stack_arena, sizeof stack_arena};
  rapidjson::GenericDocument<rapidjson::UTF8<>, pool, pool> doc{&values, 256, &stack};
  for (int round = 0; round < 3; ++round) {
    REQUIRE(parse_json(doc, R"({"a":[1,2.5,"three",{"b":null}]})", &stack).ok());
    CHECK(doc["a"][1].GetDouble() == 2.5);
    CHECK(doc["a"][3]["b"].IsNull());
    CHECK_FALSE(parse_json(doc, "[1e999999]", &stack).ok());
    values.Clear();
    stack.Clear();
  }
}

TEST_CASE("too_large tells overflow from underflow by the leading digit's magnitude", "[policies][json]") {
  using nudge::policies::detail::too_large;
  CHECK(too_large("0.0005e4"));  // 5
  CHECK_FALSE(too_large("0.05e1"));  // 0.5
  CHECK(too_large("10e-1"));  // 1
  CHECK_FALSE(too_large("123.4e-3"));  // 0.1234
  CHECK(too_large("-7e9999999999999999999"));
  CHECK_FALSE(too_large("-7e-9999999999999999999"));
  CHECK(too_large("100"));
}

TEST_CASE("write_double writes infinity as the largest double of its sign and NaN as null", "[policies][json]") {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  CHECK(nudge::policies::write_double(w, 2.5));
  CHECK(nudge::policies::write_double(w, HUGE_VAL));
  CHECK(nudge::policies::write_double(w, -HUGE_VAL));
  CHECK(nudge::policies::write_double(w, std::nan("")));
  w.EndArray();
  CHECK(std::string(buf.GetString()) == "[2.5,1.7976931348623157e308,-1.7976931348623157e308,null]");
  rapidjson::Document doc;
  CHECK(parse_json(doc, buf.GetString()).ok());
}

TEST_CASE("parse_json refuses a NUL byte after the value, and one inside it") {
  rapidjson::Document doc;
  auto result = parse_json(doc, std::string("{\"a\":1}\0{\"b\":2}", 15));
  CHECK_FALSE(result.ok());
  CHECK(result.offset == 7);
  CHECK(doc.IsNull());
  result = parse_json(doc, std::string("{\"a\":1}\0", 8));
  CHECK_FALSE(result.ok());
  result = parse_json(doc, std::string("{\"a\":\"x\0y\"}", 11));
  CHECK_FALSE(result.ok());
  CHECK(result.offset == 7);
  // A big text parses too, and the next small one after it.
  std::string big = "[" + std::string(100000, ' ') + "1]";
  REQUIRE(parse_json(doc, big).ok());
  REQUIRE(parse_json(doc, "[2]").ok());
  CHECK(doc[0].GetUint64() == 2);
}
