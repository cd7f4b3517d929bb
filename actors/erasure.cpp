#include "actors/erasure.hpp"

#include "storage/outbox_table.hpp"
#include "storage/timer_table.hpp"

#include "storage/alias_table.hpp"
#include "storage/audit_table.hpp"
#include "storage/dedupe_table.hpp"
#include "storage/expiry_table.hpp"
#include "storage/identity_table.hpp"
#include "storage/journal_table.hpp"
#include "storage/profile_table.hpp"
#include "storage/suppression_table.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace nudge::actors {

namespace {

using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_counts(json_writer& w, const erasure_counts& c) {
  w.StartObject();
  w.Key("profiles"); w.Uint64(c.profiles);
  w.Key("identities"); w.Uint64(c.identities);
  w.Key("journal"); w.Uint64(c.journal);
  w.Key("dedupe"); w.Uint64(c.dedupe);
  w.Key("aliases"); w.Uint64(c.aliases);
  w.Key("audit"); w.Uint64(c.audit);
  w.Key("expiry"); w.Uint64(c.expiry);
  w.Key("timers"); w.Uint64(c.timers);
  w.Key("outbox"); w.Uint64(c.outbox);
  w.EndObject();
}

}  // namespace

void apply_erasure(storage::write_txn& tx, erasure_request& req) {
  auto& c = req.counts;
  c = {};
  const auto& id = req.profile_id;
  // The profile and every id merged into it: their own traces should be gone since
  // the merge, but what remains of them (dedupe entries naming them, aliases) goes.
  std::vector<std::string> ids{id};
  ids.insert(ids.end(), req.merged_from.begin(), req.merged_from.end());
  for (const auto& pid : ids) {
    c.profiles += storage::profile_table::erase(tx, pid) ? 1 : 0;
    c.audit += storage::audit_table::erase_profile(tx, pid);
    c.expiry += storage::expiry_table::clear(tx, pid) ? 1 : 0;
    // The index says which identities name it now (the members table), which also
    // covers links a merge moved to it since the actor's state was read.
    c.identities += storage::identity_table::erase_profile(tx, pid).size();
  }
  c.journal = storage::journal_table::erase_profiles(tx, ids);
  c.dedupe = storage::dedupe_table::erase_profiles(tx, ids);
  c.aliases = storage::alias_table::erase_involving(tx, ids);
  for (const auto& pid : ids) {
    c.timers += storage::timer_table::erase_profile(tx, pid);
    c.outbox += storage::outbox_table::erase_profile(tx, pid);
  }
  for (const auto& h : req.suppress_hashes) {
    storage::suppression_table::put(tx, h, req.ts);
    ++c.suppressed;
  }

  // What remains of the person: that an erasure happened, under no personal key.
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  w.Key("erasure_id"); w.String(req.erasure_id);
  w.Key("reason"); w.String(req.reason);
  w.Key("suppressed"); w.Bool(!req.suppress_hashes.empty());
  w.Key("removed"); write_counts(w, c);
  w.EndObject();
  storage::audit_table::append(tx, storage::audit_record{"", req.ts, "erasure", {buf.GetString(), buf.GetSize()}});
}

std::string erasure_reply_json(const erasure_request& req) {
  rapidjson::StringBuffer buf;
  json_writer w(buf);
  w.StartObject();
  w.Key("erased"); w.Bool(true);
  w.Key("profile_id"); w.String(req.profile_id);
  w.Key("erasure_id"); w.String(req.erasure_id);
  w.Key("suppressed"); w.Bool(!req.suppress_hashes.empty());
  w.Key("removed");
  write_counts(w, req.counts);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace nudge::actors
