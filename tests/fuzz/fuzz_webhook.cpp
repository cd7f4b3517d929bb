// Fuzzes POST /v1/webhooks/helpdesk: the input's first line is the Nudge-Signature
// header, the rest the body. The signature is checked (constant-time compare, bounded
// timestamps), the body mapped by the example config's [sources.map], and a mapped
// event decoded as the gateway decodes it.
#include "net/decoder.hpp"
#include "net/webhook.hpp"
#include "tests/fuzz/fuzz_support.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nudge;
  const auto& opts = fuzz::example_gateway_options();
  static net::decoder dec(opts);
  const auto& hook = opts.webhooks.front();
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto nl = input.find('\n');
  std::string_view header = input.substr(0, nl);
  std::string_view body = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);
  auto now = std::chrono::system_clock::time_point{std::chrono::seconds{1'790'000'000}};
  (void)net::verify_webhook_signature(header, hook.secret, body, now, opts.webhook_tolerance);
  std::string event_json;
  net::mapping_error merr;
  if (net::map_webhook_body(hook, body, event_json, merr)) {
    net::stream_source as_source{hook.id, {}, hook.channel, {}, nullptr};
    actors::inbound msg;
    net::decode_error err;
    (void)dec.decode(event_json, actors::wire_format::json, as_source, msg, err);
  } else if (merr.message.empty()) {
    __builtin_trap();  // a 422 always names what could not be mapped
  }
  return 0;
}
