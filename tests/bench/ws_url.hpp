// ws://HOST[:PORT][/PATH][?QUERY] split into what a Beast handshake needs. Pure; no
// allocation beyond the result. wss:// is refused: the bench speaks plain TCP only.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace nudge::bench {

struct ws_url {
  std::string host;   // IPv6 without its brackets
  std::string port;   // "80" when absent
  std::string target; // "/v1/stream" when the URL has no path; the query kept
};

/// The parsed URL, or nullopt with `error` set.
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
  const std::size_t authority_end = text.find_first_of("/?");
  std::string_view authority = text.substr(0, authority_end);
  std::string_view rest =
      authority_end == std::string_view::npos ? std::string_view{} : text.substr(authority_end);
  ws_url url;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "unclosed [ in the host";
      return std::nullopt;
    }
    url.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') {
      error = "junk after ]";
      return std::nullopt;
    }
    url.port = authority.empty() ? "80" : std::string(authority.substr(1));
  } else {
    const std::size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    url.port = colon == std::string_view::npos ? "80" : std::string(authority.substr(colon + 1));
  }
  if (url.host.empty()) {
    error = "the URL has no host";
    return std::nullopt;
  }
  if (url.port.empty() || url.port.find_first_not_of("0123456789") != std::string::npos ||
      url.port.size() > 5 || std::stoul(url.port) > 65535) {
    error = "bad port '" + url.port + "'";
    return std::nullopt;
  }
  const std::size_t query = rest.find('?');
  std::string_view path = rest.substr(0, query);
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

} // namespace nudge::bench
