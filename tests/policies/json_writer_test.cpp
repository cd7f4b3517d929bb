// json_writer: the replies' writer copies a text that needs no escape in one piece. Its
// output must be byte for byte what rapidjson::Writer writes, for every text: plain,
// with bytes JSON escapes (quote, backslash, controls, NUL) anywhere, UTF-8, empty,
// and as keys, values, array elements and through every overload.
#include "policies/json_writer.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <string_view>
#include <vector>

using nudge::policies::json_writer;

namespace {

using base_writer = rapidjson::Writer<rapidjson::StringBuffer>;

/// The same document through both writers: an object of key/value pairs, then an array
/// of the same texts.
template <class Writer>
std::string write_doc(const std::vector<std::string>& texts) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  for (std::size_t i = 0; i + 1 < texts.size(); i += 2) {
    w.Key(texts[i].data(), static_cast<rapidjson::SizeType>(texts[i].size()));
    w.String(texts[i + 1].data(), static_cast<rapidjson::SizeType>(texts[i + 1].size()));
  }
  w.Key("list");
  w.StartArray();
  for (const auto& t : texts)
    w.String(t.data(), static_cast<rapidjson::SizeType>(t.size()));
  w.EndArray();
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace

TEST_CASE("json_writer writes what rapidjson's writer writes, escapes and all") {
  const std::vector<std::string> fixed = {
    "",
    "type",
    "decision",
    "d-01M972ABAPBSZTKPS6PJEQTFDE",
    "a \"quoted\" text",
    "back\\slash",
    std::string("nul\0inside", 10),
    "tab\tand\nnewline\x01\x1f",
    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
    "\"",
    "\\",
    "x\x7f" "del is not escaped",
    "slash / is not escaped",
  };
  CHECK(write_doc<json_writer>(fixed) == write_doc<base_writer>(fixed));

  // Random texts over an alphabet weighted towards the bytes that matter.
  std::mt19937 rng(20261207);
  const std::string alphabet = std::string("abcXYZ09 -_:,{}\"\\/\t\n\r\x01\x1f\x7f\xc3\xa9", 27) + std::string(1, '\0');
  for (int round = 0; round < 300; ++round) {
    std::vector<std::string> texts(1 + rng() % 9);
    for (auto& t : texts) {
      const std::size_t n = rng() % 40;
      for (std::size_t i = 0; i < n; ++i)
        t.push_back(rng() % 3 == 0 ? alphabet[rng() % alphabet.size()] : static_cast<char>('a' + rng() % 26));
    }
    INFO("round " << round);
    REQUIRE(write_doc<json_writer>(texts) == write_doc<base_writer>(texts));
  }
}

TEST_CASE("json_writer: every overload of String and Key, and a text that grows the buffer") {
  const std::string plain(5000, 'p');  // past the buffer's first allocation
  const std::string escaped = "e\"" + plain;
  auto write = [&](json_writer& w) {
    w.StartObject();
    w.Key("literal");
    w.String("value");
    w.Key(std::string("std::string"));
    w.String(std::string("text with \"quote\""));
    w.Key(std::string_view("view"));
    w.String(std::string_view("a view"));
    w.Key(plain.data(), static_cast<rapidjson::SizeType>(plain.size()));
    w.String(escaped.data(), static_cast<rapidjson::SizeType>(escaped.size()));
    w.Key("n");
    w.Int(7);
    w.EndObject();
  };
  rapidjson::StringBuffer a, b;
  json_writer fast(a);
  base_writer slow(b);
  write(fast);
  slow.StartObject();
  slow.Key("literal");
  slow.String("value");
  slow.Key("std::string");
  slow.String(std::string("text with \"quote\""));
  slow.Key("view");
  slow.String("a view");
  slow.Key(plain.data(), static_cast<rapidjson::SizeType>(plain.size()));
  slow.String(escaped.data(), static_cast<rapidjson::SizeType>(escaped.size()));
  slow.Key("n");
  slow.Int(7);
  slow.EndObject();
  CHECK(std::string(a.GetString(), a.GetSize()) == std::string(b.GetString(), b.GetSize()));
  CHECK(fast.IsComplete());
  CHECK(json_writer::plain("abc", 3));
  CHECK_FALSE(json_writer::plain("a\"c", 3));
  CHECK_FALSE(json_writer::plain("a\\c", 3));
  CHECK_FALSE(json_writer::plain("a\x1f" "c", 3));
  CHECK(json_writer::plain("a\x7f" "c", 3));
}
