// Fuzzes the dedupe tables' packed replies (storage/reply_pack): the input's first
// line is the message id, its second the profile id, the rest a reply. Packing must
// refuse it or give it back byte for byte; the whole input, read as stored bytes of
// any shape, must unpack or be refused without reading past its end.
#include "storage/reply_pack.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto line = [&input] {
    const auto nl = input.find('\n');
    const auto text = input.substr(0, nl);
    input = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);
    return text;
  };
  const std::string_view whole = input;
  const auto message_id = line();
  const auto profile_id = line();
  std::string packed, back;
  if (nudge::storage::pack_reply(input, message_id, profile_id, packed) &&
      (!nudge::storage::unpack_reply(packed, message_id, profile_id, back) || back != input))
    std::abort();
  (void)nudge::storage::unpack_reply(whole, message_id, profile_id, back);
  return 0;
}
