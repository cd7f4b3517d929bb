// ws://HOST[:PORT][/PATH][?QUERY] split into what a Beast WebSocket handshake needs,
// shared by `nudge client` and the benchmark tool. Pure, header-only, any thread.
// wss:// is refused: TLS is not in this build.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace nudge::net {

/// The parts of a ws:// URL; the target defaults to /v1/stream, the port to 80.
struct ws_url {
  std::string host; // IPv6 without brackets
  std::string port;
  std::string target; // path and query
};

inline std::optional<ws_url> parse_ws_url(std::string_view text, std::string& error) {
  constexpr std::string_view scheme = "ws://";
  if (text.substr(0, 6) == "wss://") {
    error = "wss not supported yet";
    return std::nullopt;
  }
  if (text.substr(0, scheme.size()) != scheme) {
    error = "the URL must start with ws://";
    return std::nullopt;
  }
  text.remove_prefix(scheme.size());
  const std::size_t authority_end = text.find_first_of("/?#");
  std::string_view authority = text.substr(0, authority_end);
  std::string_view rest =
      authority_end == std::string_view::npos ? std::string_view{} : text.substr(authority_end);
  rest = rest.substr(0, rest.find('#'));
  ws_url url;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "unclosed '[' in the host";
      return std::nullopt;
    }
    url.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') {
      error = "unexpected characters after ']'";
      return std::nullopt;
    }
    port = authority.empty() ? std::string_view{} : authority.substr(1);
    if (authority.empty())
      port = "80";
  } else {
    const std::size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    port = colon == std::string_view::npos ? std::string_view{"80"} : authority.substr(colon + 1);
  }
  if (url.host.empty()) {
    error = "the URL has no host";
    return std::nullopt;
  }
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoul(std::string(port)) > 65535) {
    error = "bad port '" + std::string(port) + "'";
    return std::nullopt;
  }
  url.port = std::string(port);
  const std::size_t query = rest.find('?');
  const std::string_view path = rest.substr(0, query);
  url.target = path.empty() ? "/v1/stream" : std::string(path);
  if (query != std::string_view::npos)
    url.target += std::string(rest.substr(query));
  return url;
}

/// Appends key=KEY (percent-encoded) with '?' or, when the target has a query, '&'.
inline void append_key(std::string& target, std::string_view key) {
  static constexpr char hex[] = "0123456789ABCDEF";
  target += target.find('?') == std::string::npos ? "?key=" : "&key=";
  for (unsigned char c : key) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      target += static_cast<char>(c);
    } else {
      target += '%';
      target += hex[c >> 4];
      target += hex[c & 15];
    }
  }
}

}  // namespace nudge::net
