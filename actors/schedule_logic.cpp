#include "actors/schedule_logic.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

namespace nudge::actors {

namespace {

const policies::armed_timer* find_timer(const policies::profile_state& p, std::string_view schedule_id) {
  for (const auto& t : p.timers)
    if (t.schedule_id == schedule_id)
      return &t;
  return nullptr;
}

void disarm(std::vector<storage::timer_change>& out, std::string_view schedule_id) {
  out.push_back({std::string(schedule_id), std::nullopt, {}});
}

}  // namespace

std::vector<storage::timer_change> timer_changes(const policies::profile_state& p, const policies::policy& pol,
                                                 const inbound& m, bool analytics, policies::timestamp at) {
  std::vector<storage::timer_change> out;
  if (m.kind == message_kind::consent) {
    bool withdrawn = std::any_of(m.consent.begin(), m.consent.end(),
                                 [](const auto& c) { return c.purpose == "analytics" && !c.granted; });
    if (withdrawn)
      for (const auto& t : p.timers)
        disarm(out, t.schedule_id);
    return out;
  }
  if (m.kind != message_kind::event && m.kind != message_kind::fire)
    return out;
  if (m.kind == message_kind::fire)
    disarm(out, m.schedule_id);
  for (const auto& s : pol.schedules()) {
    bool cancels = std::find(s.cancel_on.begin(), s.cancel_on.end(), m.name) != s.cancel_on.end();
    if (cancels && find_timer(p, s.id) && !(m.kind == message_kind::fire && s.id == m.schedule_id))
      disarm(out, s.id);
    if (s.on == m.name && analytics)
      out.push_back({std::string(s.id), at + s.after, m.id});
  }
  return out;
}

void apply_timer_changes(policies::profile_state& p, const std::vector<storage::timer_change>& changes) {
  for (const auto& c : changes) {
    std::erase_if(p.timers, [&](const auto& t) { return t.schedule_id == c.schedule_id; });
    if (c.due)
      p.timers.push_back({c.schedule_id, *c.due, c.message_id});
  }
}

void timer_writes(const policies::profile_state& p, const std::vector<policies::armed_timer>& before,
                  std::vector<storage::timer_key>& erases, std::vector<storage::timer_key>& puts) {
  for (const auto& old : before) {
    const auto* now = find_timer(p, old.schedule_id);
    if (!now || now->due != old.due)
      erases.push_back({old.due, p.id, old.schedule_id});
  }
  for (const auto& t : p.timers) {
    auto it = std::find_if(before.begin(), before.end(), [&](const auto& b) { return b.schedule_id == t.schedule_id; });
    if (it == before.end() || it->due != t.due)
      puts.push_back({t.due, p.id, t.schedule_id});
  }
}

bool accept_fire(const policies::profile_state& p, const policies::policy& pol, inbound& m) {
  const auto* t = find_timer(p, m.schedule_id);
  if (!t || t->due != m.due)
    return false;
  for (const auto& s : pol.schedules())
    if (s.id == m.schedule_id) {
      m.name = s.emit;
      m.channel = s.channel;
      return true;
    }
  return false;
}

bool worth_sending(const policies::decision& d, const policies::policy& pol) {
  return std::any_of(d.actions.begin(), d.actions.end(),
                     [&](const auto& a) { return a.action.index != pol.action_count(); });
}

std::vector<std::string_view> identity_types_for(std::string_view channel) {
  if (channel == "email")
    return {"email"};
  if (channel == "sms")
    return {"phone"};
  if (channel == "push")
    return {"device_id"};
  return {};
}

bool outbox_body(const policies::profile_state& p, std::string_view channel, std::string_view decision_json,
                 std::string& body) {
  auto types = identity_types_for(channel);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  // The tail of an object: `"channel": ..., "identities": {...}}`, written as one
  // object whose opening brace is dropped below.
  w.StartObject();
  w.Key("channel"); w.String(channel.data(), static_cast<rapidjson::SizeType>(channel.size()));
  w.Key("identities");
  w.StartObject();
  bool any = false;
  for (const auto& id : p.identities) {
    if (!types.empty() && std::find(types.begin(), types.end(), id.type) == types.end())
      continue;
    w.Key(id.type.data(), static_cast<rapidjson::SizeType>(id.type.size()));
    w.String(id.value.data(), static_cast<rapidjson::SizeType>(id.value.size()));
    any = true;
  }
  w.EndObject();
  w.EndObject();
  if (!any && !types.empty())
    return false;
  if (decision_json.size() < 2 || decision_json.back() != '}')
    return false;
  body.assign(decision_json.substr(0, decision_json.size() - 1));
  body.push_back(',');
  body.append(buf.GetString() + 1, buf.GetSize() - 1);
  return true;
}

}  // namespace nudge::actors
