#include "app/options.hpp"

#include <algorithm>
#include <memory>
#include <regex>

namespace nudge::app {

policies::policy_limits policy_limits_for(const config& cfg) {
  policies::policy_limits l;
  l.purposes = cfg.consent.purposes;
  for (const auto& id : cfg.identities)
    l.identity_types.push_back(id.name);
  return l;
}

net::gateway_options gateway_options_for(const config& cfg) {
  net::gateway_options g;
  g.max_message_bytes = cfg.server.max_message_bytes;
  g.max_connections = cfg.server.max_connections;
  g.max_connections_per_address = cfg.server.max_connections_per_address;
  g.ws_idle_timeout = cfg.server.ws_idle_timeout;
  g.ws_max_pending_bytes = cfg.server.ws_max_pending_bytes;
  g.http_timeout = cfg.server.http_timeout;
  g.admin_token = cfg.server.admin_token;
  g.tls_cert = cfg.server.tls_cert.string();
  g.tls_key = cfg.server.tls_key.string();
  g.purposes = cfg.consent.purposes;
  g.policy_limits = policy_limits_for(cfg);
  for (const auto& t : cfg.identities) {
    net::identity_rule r;
    r.type = t.name;
    r.priority = t.priority;
    r.normalize = t.normalize == identity_normalize::email   ? net::normalizer::email
                  : t.normalize == identity_normalize::phone ? net::normalizer::phone
                                                             : net::normalizer::none;
    r.hash = t.hash;
    r.anonymous = t.anonymous;
    for (const auto& b : t.blocked) {
      if (b.size() >= 2 && b.front() == '/' && b.back() == '/')
        r.blocked_patterns.emplace_back(b.substr(1, b.size() - 2), std::regex::ECMAScript | std::regex::optimize);
      else
        r.blocked_exact.push_back(b);
    }
    g.identities.push_back(std::move(r));
  }
  std::stable_sort(g.identities.begin(), g.identities.end(),
                   [](const auto& a, const auto& b) { return a.priority < b.priority; });
  for (const auto& s : cfg.sources) {
    std::shared_ptr<net::token_bucket> limiter;
    if (s.rate_limit)
      limiter = std::make_shared<net::token_bucket>(s.rate_limit->per_second,
                                                    s.rate_limit->burst ? s.rate_limit->burst : s.rate_limit->per_second);
    if (s.kind == source_kind::stream) {
      g.sources.push_back({s.id, s.write_key, s.channel, s.allowed_origins, std::move(limiter)});
      continue;
    }
    net::webhook_source w{s.id, s.secret, s.channel, s.map.id, s.map.name, s.map.ts, {}, {}, {}, std::move(limiter)};
    w.identities.assign(s.map.identities.begin(), s.map.identities.end());
    w.properties.assign(s.map.properties.begin(), s.map.properties.end());
    w.names.assign(s.map.names.begin(), s.map.names.end());
    g.webhooks.push_back(std::move(w));
  }
  return g;
}

}  // namespace nudge::app
