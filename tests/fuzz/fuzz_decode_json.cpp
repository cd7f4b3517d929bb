// Fuzzes what the gateway does with one JSON text frame or HTTP body: decode and
// validate it as a message of the `web` source (identity normalising, hashing and
// blocked-value regexes included), and encode the error reply it would get.
#include "actors/wire.hpp"
#include "net/decoder.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static nudge::net::decoder dec(nudge::fuzz::example_gateway_options());
  const auto& source = nudge::fuzz::example_gateway_options().sources.front();
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  nudge::actors::inbound msg;
  nudge::net::decode_error err;
  if (!dec.decode(bytes, nudge::actors::wire_format::json, source, msg, err)) {
    auto reply = nudge::actors::error_reply(err.id, err.code, err.message);
    std::string packed;
    if (!nudge::actors::json_to_msgpack(reply, packed))
      __builtin_trap();  // an error reply must always be valid JSON
  }
  return 0;
}
