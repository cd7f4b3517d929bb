// Fuzzes what the gateway does with one MessagePack binary frame: transcode to JSON,
// decode and validate it as a message of the `web` source, and encode the error reply
// back to MessagePack. Also round-trips any transcoded value through json_to_msgpack.
#include "actors/wire.hpp"
#include "net/decoder.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static nudge::net::decoder dec(nudge::fuzz::example_gateway_options());
  const auto& source = nudge::fuzz::example_gateway_options().sources.front();
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string json;
  if (nudge::actors::msgpack_to_json(bytes, json)) {
    std::string packed;
    if (!nudge::actors::json_to_msgpack(json, packed))
      __builtin_trap();  // what msgpack_to_json writes must be valid JSON
  }
  nudge::actors::inbound msg;
  nudge::net::decode_error err;
  if (!dec.decode(bytes, nudge::actors::wire_format::msgpack, source, msg, err))
    (void)nudge::actors::encode_for(nudge::actors::wire_format::msgpack,
                                    nudge::actors::error_reply(err.id, err.code, err.message));
  return 0;
}
