#include "policies/detail/compiler.hpp"

#include "policies/detail/text.hpp"
#include "policies/json.hpp"

#include <msgpack.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <exception>
#include <initializer_list>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>

namespace nudge::policies::detail {
namespace {

using json = rapidjson::Value;

constexpr std::size_t npos = static_cast<std::size_t>(-1);

constexpr std::array<std::string_view, 13> shapes{
    "all", "any", "not", "event", "current", "trait", "stat", "segment", "score",
    "channel", "placement", "identity", "consent"};

constexpr std::array<std::string_view, 8> op_names{"eq", "ne", "gt", "gte",
                                                   "lt", "lte", "in", "exists"};

std::optional<op> parse_op(std::string_view name) {
  for (std::size_t i = 0; i < op_names.size(); ++i)
    if (op_names[i] == name)
      return static_cast<op>(i);
  return std::nullopt;
}

std::string_view view(const json& v) { return {v.GetString(), v.GetStringLength()}; }

std::string in_quotes(std::string_view s) {
  std::string out = "\"";
  out.append(s);
  out.push_back('"');
  return out;
}

bool valid_action_id(std::string_view id) {
  if (id.empty() || id.size() > 64)
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string to_json_text(const json& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

void pack(const json& v, msgpack::packer<msgpack::sbuffer>& out) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      out.pack_nil();
      break;
    case rapidjson::kFalseType:
      out.pack_false();
      break;
    case rapidjson::kTrueType:
      out.pack_true();
      break;
    case rapidjson::kStringType:
      out.pack_str(v.GetStringLength());
      out.pack_str_body(v.GetString(), v.GetStringLength());
      break;
    case rapidjson::kNumberType:
      if (v.IsInt64())
        out.pack_int64(v.GetInt64());
      else if (v.IsUint64())
        out.pack_uint64(v.GetUint64());
      else
        out.pack_double(v.GetDouble());
      break;
    case rapidjson::kArrayType:
      out.pack_array(v.Size());
      for (const auto& item : v.GetArray())
        pack(item, out);
      break;
    case rapidjson::kObjectType:
      out.pack_map(v.MemberCount());
      for (const auto& m : v.GetObject()) {
        out.pack_str(m.name.GetStringLength());
        out.pack_str_body(m.name.GetString(), m.name.GetStringLength());
        pack(m.value, out);
      }
      break;
  }
}

/// Nesting limit for the whole document; compiling, serialising and evaluating
/// recurse, so depth is bounded before any of them runs.
constexpr int max_depth = 64;

bool deeper_than(const json& v, int limit) {
  if (limit < 0)
    return true;
  if (v.IsObject()) {
    for (const auto& m : v.GetObject())
      if (deeper_than(m.value, limit - 1))
        return true;
  } else if (v.IsArray()) {
    for (const auto& item : v.GetArray())
      if (deeper_than(item, limit - 1))
        return true;
  }
  return false;
}

/// What an OP's VALUE must be.
enum class value_kind { scalar_any, number, duration };

/// Where a condition sits, which decides what it may refer to.
struct cond_scope {
  const std::vector<std::pair<std::string, scalar>>* params = nullptr;  ///< action-local
  std::size_t owner = npos;  ///< graph node (segment or model) being compiled
  bool in_model = false;
};

/// A `$param` read inside a segment, checked per action that reaches the segment.
struct param_use {
  std::string name;
  std::string pointer;
};

class compiler {
public:
  compiler(const policy_limits& limits, program& out) : limits_(limits), out_(out) {}

  std::vector<problem> run(std::string_view text) {
    rapidjson::Document doc;
    // Iterative parsing (a hostile document cannot exhaust the stack), numbers read
    // exactly: see policies/json.hpp.
    if (const auto parsed = parse_json(doc, text); !parsed.ok()) {
      fail("", parsed.describe());
      return std::move(problems_);
    }
    if (!doc.IsObject()) {
      fail("", "a policy must be a JSON object");
      return std::move(problems_);
    }
    if (deeper_than(doc, max_depth)) {
      fail("", "the document nests deeper than " + std::to_string(max_depth) + " levels");
      return std::move(problems_);
    }
    out_.purposes = limits_.purposes;
    top(doc);
    if (problems_.empty())
      out_.source = to_json_text(doc);
    return std::move(problems_);
  }

private:
  void fail(std::string path, std::string message) {
    problems_.push_back(problem{std::move(path), std::move(message)});
  }

  void check_duplicates(const json& obj, const std::string& path) {
    for (auto m = obj.MemberBegin(); m != obj.MemberEnd(); ++m)
      for (auto prev = obj.MemberBegin(); prev != m; ++prev)
        if (view(prev->name) == view(m->name)) {
          fail(pointer_append(path, view(m->name)), "duplicate key " + in_quotes(view(m->name)));
          break;
        }
  }

  /// Reports unknown and duplicate keys of `obj`.
  void check_keys(const json& obj, const std::string& path,
                  std::initializer_list<std::string_view> allowed, bool ops_allowed = false) {
    for (auto m = obj.MemberBegin(); m != obj.MemberEnd(); ++m) {
      const std::string_view key = view(m->name);
      for (auto prev = obj.MemberBegin(); prev != m; ++prev)
        if (view(prev->name) == key) {
          fail(pointer_append(path, key), "duplicate key " + in_quotes(key));
          break;
        }
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end())
        continue;
      if (ops_allowed && parse_op(key))
        continue;
      fail(pointer_append(path, key), "unknown key " + in_quotes(key));
    }
  }

  bool expect_object(const json& v, const std::string& path, std::string_view what) {
    if (v.IsObject())
      return true;
    fail(path, std::string(what) + " must be an object");
    return false;
  }

  std::optional<std::string> get_string(const json& v, const std::string& path,
                                        bool allow_empty = false) {
    if (!v.IsString()) {
      fail(path, "must be a string");
      return std::nullopt;
    }
    if (!allow_empty && v.GetStringLength() == 0) {
      fail(path, "must not be empty");
      return std::nullopt;
    }
    return std::string(view(v));
  }

  std::optional<double> get_number(const json& v, const std::string& path) {
    if (!v.IsNumber()) {
      fail(path, "must be a number");
      return std::nullopt;
    }
    return v.GetDouble();
  }

  std::optional<std::uint64_t> get_count(const json& v, const std::string& path) {
    if (v.IsUint64())
      return v.GetUint64();
    // 2^64 and beyond (and NaN) must not reach the cast: converting them is undefined.
    if (v.IsNumber() && !v.IsInt64() && v.GetDouble() >= 0 && v.GetDouble() < 18446744073709551616.0 &&
        v.GetDouble() == static_cast<double>(static_cast<std::uint64_t>(v.GetDouble())))
      return static_cast<std::uint64_t>(v.GetDouble());
    fail(path, "must be a non-negative integer");
    return std::nullopt;
  }

  std::optional<duration> get_duration(const json& v, const std::string& path) {
    if (!v.IsString()) {
      fail(path, "must be a duration string such as \"30s\", \"15m\", \"2h\" or \"7d\"");
      return std::nullopt;
    }
    auto d = parse_duration(view(v));
    if (!d)
      fail(path, "bad duration " + in_quotes(view(v)) +
                     ": expected an integer and a unit (ms, s, m, h, d), e.g. \"15m\"");
    return d;
  }

  std::vector<std::string> get_strings(const json& v, const std::string& path,
                                       bool allow_single, bool allow_empty_list) {
    std::vector<std::string> out;
    if (allow_single && v.IsString()) {
      if (auto s = get_string(v, path))
        out.push_back(*s);
      return out;
    }
    if (!v.IsArray()) {
      fail(path, allow_single ? "must be a string or an array of strings"
                              : "must be an array of strings");
      return out;
    }
    if (v.Empty() && !allow_empty_list)
      fail(path, "must not be empty");
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i)
      if (auto s = get_string(v[i], pointer_append(path, i)))
        out.push_back(*s);
    return out;
  }

  std::size_t purpose_index(std::string_view name) const {
    for (std::size_t i = 0; i < limits_.purposes.size(); ++i)
      if (limits_.purposes[i] == name)
        return i;
    return npos;
  }

  void check_channel(std::string_view name, const std::string& path) {
    if (!limits_.channels.empty() &&
        std::find(limits_.channels.begin(), limits_.channels.end(), name) ==
            limits_.channels.end())
      fail(path, "unknown channel " + in_quotes(name));
  }

  // ---- top level -------------------------------------------------------------

  void top(const json& doc) {
    check_keys(doc, "",
               {"version", "segments", "models", "actions", "fallback", "arbitration",
                "holdout", "holdout_salt", "contact_policy", "schedules"});

    if (auto v = doc.FindMember("version"); v == doc.MemberEnd())
      fail("/version", "version is required");
    else if (auto s = get_string(v->value, "/version"))
      out_.version = *s;

    // Ids first, so that references can be resolved in any order.
    const json* segments = nullptr;
    const json* models = nullptr;
    if (auto v = doc.FindMember("segments"); v != doc.MemberEnd() &&
                                             expect_object(v->value, "/segments", "segments")) {
      segments = &v->value;
      for (const auto& m : segments->GetObject()) {
        segment s;
        s.id = std::string(view(m.name));
        s.pointer = pointer_append("/segments", s.id);
        out_.segments.push_back(std::move(s));
      }
    }
    if (auto v = doc.FindMember("models");
        v != doc.MemberEnd() && expect_object(v->value, "/models", "models")) {
      models = &v->value;
      for (const auto& m : models->GetObject()) {
        model md;
        md.id = std::string(view(m.name));
        out_.models.push_back(std::move(md));
      }
    }
    edges_.assign(out_.segments.size() + out_.models.size(), {});
    segment_params_.assign(out_.segments.size(), {});

    if (segments) {
      std::size_t i = 0;
      for (const auto& m : segments->GetObject()) {
        cond_scope scope;
        scope.owner = i;
        out_.segments[i].root = compile_condition(m.value, out_.segments[i].pointer, scope);
        ++i;
      }
    }
    if (models) {
      std::size_t i = 0;
      for (const auto& m : models->GetObject()) {
        compile_model(m.value, pointer_append("/models", view(m.name)), i);
        ++i;
      }
    }
    const bool acyclic = check_cycles() && check_reference_depth();

    if (auto v = doc.FindMember("actions"); v == doc.MemberEnd()) {
      fail("/actions", "actions is required");
    } else if (!v->value.IsArray()) {
      fail("/actions", "actions must be an array");
    } else {
      for (rapidjson::SizeType i = 0; i < v->value.Size(); ++i)
        out_.actions.push_back(compile_action(v->value[i], pointer_append("/actions", i)));
    }
    if (auto v = doc.FindMember("fallback"); v != doc.MemberEnd())
      out_.fallback = compile_action(v->value, "/fallback");

    std::unordered_map<std::string_view, std::string_view> first;
    auto note_id = [&](const action& a) {
      if (a.id.empty())
        return;
      auto [it, inserted] = first.emplace(a.id, a.pointer);
      if (!inserted)
        fail(a.pointer + "/id",
             "duplicate action id " + in_quotes(a.id) + " (first at " + std::string(it->second) + ")");
    };
    for (const auto& a : out_.actions)
      note_id(a);
    if (out_.fallback)
      note_id(*out_.fallback);

    if (auto v = doc.FindMember("arbitration"); v != doc.MemberEnd())
      compile_arbitration(v->value);
    if (auto v = doc.FindMember("holdout"); v != doc.MemberEnd()) {
      if (auto h = get_number(v->value, "/holdout")) {
        if (*h < 0 || *h > 1)
          fail("/holdout", "holdout must be within [0, 1]");
        else
          out_.holdout = *h;
      }
    }
    if (auto v = doc.FindMember("holdout_salt"); v != doc.MemberEnd())
      if (auto s = get_string(v->value, "/holdout_salt", true))
        out_.holdout_salt = *s;
    if (auto v = doc.FindMember("contact_policy"); v != doc.MemberEnd())
      compile_contact_policy(v->value);
    if (auto v = doc.FindMember("schedules"); v != doc.MemberEnd())
      compile_schedules(v->value);

    if (acyclic && problems_.empty()) {
      propagate_param_use();
      check_segment_params();
    }
    assign_memo_slots();
  }

  /// Gives event conditions memo slots (program::memo), at most
  /// history_memo::max_conditions: first each condition that reads texts to match an
  /// event and whose match depends on the event alone (a slot saves it those reads),
  /// then each name that a count without `where` or a `since` looks for (a slot saves
  /// a walk over the records: the count becomes one over the masks).
  void assign_memo_slots() {
    static std::atomic<std::uint64_t> serials{0};
    out_.serial = ++serials;
    auto& memo = out_.memo;
    const auto full = [&memo] { return memo.size() >= history_memo::max_conditions; };
    auto add_slot = [&memo](const name_key& key, const std::string& name, std::optional<std::uint32_t> where_of) {
      memo.push_back(memo_matcher{key, name, where_of});
      return static_cast<std::int8_t>(memo.size() - 1);
    };
    for (std::size_t i = 0; i < out_.conditions.size() && !full(); ++i) {
      auto& c = out_.conditions[i];
      if (c.kind != cond_kind::event || c.sum || (c.key.exact && c.where.empty()))
        continue;
      if (std::any_of(c.where.begin(), c.where.end(),
                      [](const where_entry& w) { return w.from != where_entry::source::literal; }))
        continue;
      std::optional<std::uint32_t> where_of;
      if (!c.where.empty())
        where_of = static_cast<std::uint32_t>(i);
      c.memo_slot = add_slot(c.key, c.name, where_of);
    }
    // One slot per name, shared by every count and `since` of that name.
    auto slot_of_name = [&](const name_key& key, const std::string& name) -> std::int8_t {
      for (std::size_t s = 0; s < memo.size(); ++s)
        if (!memo[s].where_of && memo[s].name == name)
          return static_cast<std::int8_t>(s);
      return full() ? std::int8_t{-1} : add_slot(key, name, std::nullopt);
    };
    for (auto& c : out_.conditions) {
      if (c.kind != cond_kind::event)
        continue;
      if (c.memo_slot < 0 && !c.sum && c.where.empty())
        c.memo_slot = slot_of_name(c.key, c.name);
      if (c.since)
        c.since_slot = slot_of_name(c.since_key, *c.since);
    }
  }

  // ---- conditions ------------------------------------------------------------

  std::uint32_t add(condition c) {
    out_.conditions.push_back(std::move(c));
    return static_cast<std::uint32_t>(out_.conditions.size() - 1);
  }

  std::optional<scalar> get_scalar(const json& v, const std::string& path, value_kind kind) {
    switch (kind) {
      case value_kind::number:
        if (v.IsNumber())
          return scalar{v.GetDouble()};
        fail(path, "must be a number");
        return std::nullopt;
      case value_kind::duration:
        if (auto d = get_duration(v, path))
          return scalar{static_cast<double>(d->count())};
        return std::nullopt;
      case value_kind::scalar_any:
        break;
    }
    if (v.IsString())
      return scalar{std::string(view(v))};
    if (v.IsNumber())
      return scalar{v.GetDouble()};
    if (v.IsBool())
      return scalar{v.GetBool()};
    if (v.IsNull())
      return scalar{};
    fail(path, "must be a string, number, boolean or null");
    return std::nullopt;
  }

  /// Parses the OP members of `obj` into comparisons.
  std::vector<comparison> get_ops(const json& obj, const std::string& path, value_kind kind) {
    std::vector<comparison> out;
    for (const auto& m : obj.GetObject()) {
      auto k = parse_op(view(m.name));
      if (!k)
        continue;
      const std::string p = pointer_append(path, view(m.name));
      comparison c;
      c.kind = *k;
      if (*k == op::exists) {
        if (kind != value_kind::scalar_any) {
          fail(p, "exists applies to traits and event properties only");
          continue;
        }
        if (!m.value.IsBool()) {
          fail(p, "exists needs true or false");
          continue;
        }
        c.value = m.value.GetBool();
      } else if (*k == op::in) {
        if (!m.value.IsArray()) {
          fail(p, "in needs an array");
          continue;
        }
        for (rapidjson::SizeType i = 0; i < m.value.Size(); ++i)
          if (auto s = get_scalar(m.value[i], pointer_append(p, i), kind))
            c.list.push_back(std::move(*s));
      } else if (auto s = get_scalar(m.value, p, kind)) {
        c.value = std::move(*s);
      } else {
        continue;
      }
      out.push_back(std::move(c));
    }
    return out;
  }

  std::vector<where_entry> compile_where(const json& v, const std::string& path,
                                         const cond_scope& scope) {
    std::vector<where_entry> out;
    if (!expect_object(v, path, "where"))
      return out;
    check_duplicates(v, path);
    for (const auto& m : v.GetObject()) {
      const std::string p = pointer_append(path, view(m.name));
      where_entry w;
      w.path = std::string(view(m.name));
      if (w.path.empty())
        fail(p, "a where path must not be empty");
      if (m.value.IsObject()) {
        const json& o = m.value;
        auto cur = o.FindMember("$current");
        auto par = o.FindMember("$param");
        if (cur != o.MemberEnd() || par != o.MemberEnd()) {
          if (o.MemberCount() != 1) {
            fail(p, "a $current or $param reference must be the only key");
            continue;
          }
          const bool is_current = cur != o.MemberEnd();
          const json& ref = is_current ? cur->value : par->value;
          const std::string rp = pointer_append(p, is_current ? "$current" : "$param");
          auto name = get_string(ref, rp);
          if (!name)
            continue;
          w.from = is_current ? where_entry::source::current : where_entry::source::param;
          w.ref = *name;
          if (!is_current)
            note_param(w.ref, rp, scope);
          // In an action's own conditions a $param is that action's constant: compared
          // as a literal, the match depends on the event alone (program::memo).
          if (!is_current && scope.params)
            for (const auto& [param, value] : *scope.params)
              if (param == w.ref) {
                comparison eq;
                eq.value = value;
                w.compare.push_back(std::move(eq));
                w.from = where_entry::source::literal;
              }
        } else {
          for (const auto& om : o.GetObject())
            if (!parse_op(view(om.name)))
              fail(pointer_append(p, view(om.name)),
                   "unknown operator " + in_quotes(view(om.name)) +
                       " (expected eq, ne, gt, gte, lt, lte, in, exists, $current or $param)");
          w.compare = get_ops(o, p, value_kind::scalar_any);
          if (o.MemberCount() == 0)
            fail(p, "needs an operator");
        }
      } else if (m.value.IsArray()) {
        fail(p, "an array is not a value: use {\"in\": [...]}");
        continue;
      } else if (auto s = get_scalar(m.value, p, value_kind::scalar_any)) {
        comparison c;
        c.value = std::move(*s);
        w.compare.push_back(std::move(c));
      }
      out.push_back(std::move(w));
    }
    return out;
  }

  void note_param(const std::string& name, const std::string& pointer, const cond_scope& scope) {
    if (scope.params) {
      const bool found = std::any_of(scope.params->begin(), scope.params->end(),
                                     [&](const auto& p) { return p.first == name; });
      if (!found)
        fail(pointer, "$param " + in_quotes(name) + " is not defined in this action's params");
    } else if (scope.in_model) {
      fail(pointer, "$param is not available in models");
    } else if (scope.owner != npos && scope.owner < segment_params_.size()) {
      segment_params_[scope.owner].push_back(param_use{name, pointer});
    }
  }

  void add_edge(const cond_scope& scope, std::size_t target) {
    if (scope.owner != npos)
      edges_[scope.owner].push_back(target);
  }

  std::uint32_t compile_condition(const json& v, const std::string& path,
                                  const cond_scope& scope) {
    condition c;
    c.pointer = path;
    if (!v.IsObject()) {
      fail(path, "a condition must be an object");
      return add(std::move(c));
    }
    std::vector<std::string_view> found;
    for (const auto& m : v.GetObject())
      if (std::find(shapes.begin(), shapes.end(), view(m.name)) != shapes.end())
        found.push_back(view(m.name));
    if (found.empty()) {
      fail(path,
           "a condition needs exactly one of all, any, not, event, current, trait, stat, "
           "segment, score, channel, placement, identity, consent");
      return add(std::move(c));
    }
    if (found.size() > 1) {
      std::string list;
      for (auto f : found)
        list += (list.empty() ? "" : ", ") + std::string(f);
      fail(path, "a condition has exactly one shape, this one has " + list);
      return add(std::move(c));
    }
    const std::string_view shape = found.front();
    const json& arg = v[json(rapidjson::StringRef(shape.data(), shape.size()))];
    const std::string ap = pointer_append(path, shape);

    if (shape == "all" || shape == "any") {
      check_keys(v, path, {shape});
      c.kind = shape == "all" ? cond_kind::all : cond_kind::any;
      if (!arg.IsArray()) {
        fail(ap, std::string(shape) + " needs an array of conditions");
      } else {
        for (rapidjson::SizeType i = 0; i < arg.Size(); ++i)
          c.children.push_back(compile_condition(arg[i], pointer_append(ap, i), scope));
      }
    } else if (shape == "not") {
      check_keys(v, path, {"not"});
      c.kind = cond_kind::negate;
      c.children.push_back(compile_condition(arg, ap, scope));
    } else if (shape == "event") {
      check_keys(v, path, {"event", "within", "since", "where", "sum"}, true);
      c.kind = cond_kind::event;
      if (auto s = get_string(arg, ap))
        c.name = *s;
      c.key = name_key::of(c.name);
      if (auto m = v.FindMember("within"); m != v.MemberEnd())
        c.within = get_duration(m->value, pointer_append(path, "within"));
      if (auto m = v.FindMember("since"); m != v.MemberEnd())
        c.since = get_string(m->value, pointer_append(path, "since"));
      if (c.since)
        c.since_key = name_key::of(*c.since);
      if (auto m = v.FindMember("sum"); m != v.MemberEnd())
        c.sum = get_string(m->value, pointer_append(path, "sum"));
      if (auto m = v.FindMember("where"); m != v.MemberEnd())
        c.where = compile_where(m->value, pointer_append(path, "where"), scope);
      c.compare = get_ops(v, path, value_kind::number);
      if (c.compare.empty() && !has_op(v)) {
        comparison d;
        d.kind = op::gte;
        d.value = 1.0;
        c.compare.push_back(std::move(d));
      }
    } else if (shape == "current") {
      check_keys(v, path, {"current"});
      c.kind = cond_kind::current;
      if (expect_object(arg, ap, "current")) {
        check_keys(arg, ap, {"name", "where"});
        if (auto m = arg.FindMember("name"); m != arg.MemberEnd())
          c.names = get_strings(m->value, pointer_append(ap, "name"), true, false);
        if (auto m = arg.FindMember("where"); m != arg.MemberEnd())
          c.where = compile_where(m->value, pointer_append(ap, "where"), scope);
      }
    } else if (shape == "trait") {
      check_keys(v, path, {"trait"}, true);
      c.kind = cond_kind::trait;
      if (auto s = get_string(arg, ap))
        c.name = *s;
      c.compare = get_ops(v, path, value_kind::scalar_any);
      if (!has_op(v))
        fail(path, "trait needs an operator (eq, ne, gt, gte, lt, lte, in, exists)");
    } else if (shape == "stat") {
      check_keys(v, path, {"stat"}, true);
      c.kind = cond_kind::stat;
      value_kind kind = value_kind::duration;
      if (!arg.IsString()) {
        fail(ap, "must be event_count, first_seen_ago or last_seen_ago");
      } else if (view(arg) == "event_count") {
        c.stat = stat_kind::event_count;
        kind = value_kind::number;
      } else if (view(arg) == "first_seen_ago") {
        c.stat = stat_kind::first_seen_ago;
      } else if (view(arg) == "last_seen_ago") {
        c.stat = stat_kind::last_seen_ago;
      } else {
        fail(ap, "unknown stat " + in_quotes(view(arg)) +
                     " (expected event_count, first_seen_ago or last_seen_ago)");
      }
      c.compare = get_ops(v, path, kind);
      if (!has_op(v))
        fail(path, "stat needs an operator");
    } else if (shape == "segment") {
      check_keys(v, path, {"segment"});
      c.kind = cond_kind::segment;
      if (auto s = get_string(arg, ap)) {
        c.ref = find_segment(*s);
        if (c.ref == npos)
          fail(ap, "unknown segment " + in_quotes(*s));
        else
          add_edge(scope, c.ref);
      }
    } else if (shape == "score") {
      check_keys(v, path, {"score"}, true);
      c.kind = cond_kind::score;
      if (auto s = get_string(arg, ap)) {
        c.ref = find_model(*s);
        if (c.ref == npos)
          fail(ap, "unknown model " + in_quotes(*s));
        else
          add_edge(scope, out_.segments.size() + c.ref);
      }
      c.compare = get_ops(v, path, value_kind::number);
      if (!has_op(v))
        fail(path, "score needs an operator");
    } else if (shape == "channel" || shape == "placement") {
      check_keys(v, path, {shape});
      c.kind = shape == "channel" ? cond_kind::channel : cond_kind::placement;
      c.names = get_strings(arg, ap, true, false);
      if (c.kind == cond_kind::channel) {
        if (arg.IsString())
          check_channel(c.names.empty() ? "" : c.names[0], ap);
        else
          for (std::size_t i = 0; i < c.names.size(); ++i)
            check_channel(c.names[i], pointer_append(ap, i));
      }
    } else if (shape == "identity") {
      check_keys(v, path, {"identity"});
      c.kind = cond_kind::identity;
      if (auto s = get_string(arg, ap)) {
        c.name = *s;
        const auto& types = limits_.identity_types;
        if (!types.empty() && std::find(types.begin(), types.end(), *s) == types.end())
          fail(ap, "unknown identity type " + in_quotes(*s));
      }
    } else {  // consent
      check_keys(v, path, {"consent"});
      c.kind = cond_kind::consent;
      if (auto s = get_string(arg, ap)) {
        c.name = *s;
        c.ref = purpose_index(*s);
        if (c.ref == npos)
          fail(ap, "unknown purpose " + in_quotes(*s));
      }
    }
    return add(std::move(c));
  }

  static bool has_op(const json& obj) {
    for (const auto& m : obj.GetObject())
      if (parse_op(view(m.name)))
        return true;
    return false;
  }

  std::size_t find_segment(std::string_view id) const {
    for (std::size_t i = 0; i < out_.segments.size(); ++i)
      if (out_.segments[i].id == id)
        return i;
    return npos;
  }

  std::size_t find_model(std::string_view id) const {
    for (std::size_t i = 0; i < out_.models.size(); ++i)
      if (out_.models[i].id == id)
        return i;
    return npos;
  }

  // ---- models ----------------------------------------------------------------

  void compile_model(const json& v, const std::string& path, std::size_t index) {
    if (!expect_object(v, path, "a model"))
      return;
    check_keys(v, path, {"type", "bias", "features"});
    model& md = out_.models[index];
    if (auto t = v.FindMember("type"); t == v.MemberEnd())
      fail(pointer_append(path, "type"), "type is required (\"logistic\")");
    else if (!t->value.IsString() || view(t->value) != "logistic")
      fail(pointer_append(path, "type"), "the only model type is \"logistic\"");
    if (auto b = v.FindMember("bias"); b != v.MemberEnd())
      if (auto n = get_number(b->value, pointer_append(path, "bias")))
        md.bias = *n;
    auto f = v.FindMember("features");
    if (f == v.MemberEnd())
      return;
    const std::string fp = pointer_append(path, "features");
    if (!f->value.IsArray()) {
      fail(fp, "features must be an array");
      return;
    }
    cond_scope scope;
    scope.owner = out_.segments.size() + index;
    scope.in_model = true;
    for (rapidjson::SizeType i = 0; i < f->value.Size(); ++i) {
      const json& item = f->value[i];
      const std::string ip = pointer_append(fp, i);
      if (!expect_object(item, ip, "a feature"))
        continue;
      check_keys(item, ip, {"weight", "x"});
      feature ft;
      if (auto w = item.FindMember("weight"); w == item.MemberEnd())
        fail(pointer_append(ip, "weight"), "weight is required");
      else if (auto n = get_number(w->value, pointer_append(ip, "weight")))
        ft.weight = *n;
      if (auto x = item.FindMember("x"); x == item.MemberEnd()) {
        fail(pointer_append(ip, "x"), "x is required");
        continue;
      } else {
        ft.x = compile_condition(x->value, pointer_append(ip, "x"), scope);
      }
      md.features.push_back(ft);
    }
  }

  // ---- cycles and $param through segments -------------------------------------

  /// Reports every segment or model that refers to itself through others.
  bool check_cycles() {
    const std::size_t n = edges_.size();
    std::vector<std::uint8_t> state(n, 0);  // 0 new, 1 on stack, 2 done
    std::vector<std::size_t> stack;
    bool ok = true;
    auto node_pointer = [&](std::size_t i) {
      return i < out_.segments.size()
                 ? out_.segments[i].pointer
                 : pointer_append("/models", out_.models[i - out_.segments.size()].id);
    };
    auto node_name = [&](std::size_t i) {
      return i < out_.segments.size() ? "segment " + in_quotes(out_.segments[i].id)
                                      : "model " + in_quotes(out_.models[i - out_.segments.size()].id);
    };
    // Iterative DFS; a back edge closes a cycle, reported at its first node.
    for (std::size_t start = 0; start < n; ++start) {
      if (state[start] != 0)
        continue;
      std::vector<std::pair<std::size_t, std::size_t>> work{{start, 0}};
      state[start] = 1;
      stack.push_back(start);
      while (!work.empty()) {
        auto& [node, next] = work.back();
        if (next < edges_[node].size()) {
          const std::size_t to = edges_[node][next++];
          if (state[to] == 1) {
            ok = false;
            std::string chain;
            auto from = std::find(stack.begin(), stack.end(), to);
            for (auto it = from; it != stack.end(); ++it)
              chain += node_name(*it) + " -> ";
            chain += node_name(to);
            fail(node_pointer(to), node_name(to) + " refers to itself: " + chain);
          } else if (state[to] == 0) {
            state[to] = 1;
            stack.push_back(to);
            work.emplace_back(to, 0);
          }
        } else {
          state[node] = 2;
          stack.pop_back();
          work.pop_back();
        }
      }
    }
    return ok;
  }

  /// Bounds chains of segment and model references (evaluation recurses along them).
  bool check_reference_depth() {
    // Longest-path relaxation on the (acyclic) graph: converges within as many rounds
    // as the longest chain, and stops as soon as one chain is too long.
    const std::size_t n = edges_.size();
    std::vector<int> depth(n, 0);
    for (bool changed = true; changed;) {
      changed = false;
      for (std::size_t u = 0; u < n; ++u)
        for (auto v : edges_[u])
          if (depth[v] + 1 > depth[u]) {
            depth[u] = depth[v] + 1;
            changed = true;
            if (depth[u] > max_depth) {
              fail(u < out_.segments.size()
                       ? out_.segments[u].pointer
                       : pointer_append("/models", out_.models[u - out_.segments.size()].id),
                   "segment and model references nest deeper than " + std::to_string(max_depth) +
                       " levels");
              return false;
            }
          }
    }
    return true;
  }

  void propagate_param_use() {
    auto& conds = out_.conditions;
    bool changed = true;
    while (changed) {
      changed = false;
      for (auto& c : conds) {
        bool uses = c.uses_param;
        for (const auto& w : c.where)
          uses = uses || w.from == where_entry::source::param;
        for (auto child : c.children)
          uses = uses || conds[child].uses_param;
        if (c.kind == cond_kind::segment)
          uses = uses || out_.segments[c.ref].uses_param;
        if (uses != c.uses_param) {
          c.uses_param = uses;
          changed = true;
        }
      }
      for (auto& s : out_.segments)
        if (conds[s.root].uses_param && !s.uses_param) {
          s.uses_param = true;
          changed = true;
        }
    }
  }

  void collect_segments(std::uint32_t cond, std::vector<std::uint8_t>& seen) const {
    const auto& c = out_.conditions[cond];
    for (auto child : c.children)
      collect_segments(child, seen);
    if (c.kind == cond_kind::segment && !seen[c.ref]) {
      seen[c.ref] = 1;
      collect_segments(out_.segments[c.ref].root, seen);
    }
  }

  /// A segment that reads `$param` must get it from every action that uses it.
  void check_segment_params() {
    auto check = [&](const action& a) {
      std::vector<std::uint8_t> seen(out_.segments.size(), 0);
      if (a.when)
        collect_segments(*a.when, seen);
      if (a.suppress)
        collect_segments(*a.suppress, seen);
      for (std::size_t s = 0; s < seen.size(); ++s) {
        if (!seen[s])
          continue;
        for (const auto& use : segment_params_[s])
          if (!a.find_param(use.name))
            fail(use.pointer, "$param " + in_quotes(use.name) + " is not defined in the params of " +
                                  in_quotes(a.id) + " (" + a.pointer + "), which uses this segment");
      }
    };
    for (const auto& a : out_.actions)
      check(a);
    if (out_.fallback)
      check(*out_.fallback);
  }

  // ---- actions ---------------------------------------------------------------

  action compile_action(const json& v, const std::string& path) {
    action a;
    a.pointer = path;
    if (!expect_object(v, path, "an action"))
      return a;
    check_keys(v, path,
               {"id", "channels", "placements", "requires", "when", "suppress", "params",
                "priority", "value", "weight", "propensity", "cap", "global_cap", "cooldown",
                "payload"});
    auto member = [&](std::string_view key) -> const json* {
      auto m = v.FindMember(json(rapidjson::StringRef(key.data(), key.size())));
      return m == v.MemberEnd() ? nullptr : &m->value;
    };
    auto at = [&](std::string_view key) { return pointer_append(path, key); };

    if (const json* id = member("id"); !id) {
      fail(at("id"), "id is required");
    } else if (auto s = get_string(*id, at("id"))) {
      if (!valid_action_id(*s))
        fail(at("id"), "action id " + in_quotes(*s) + " must match [a-z0-9_]{1,64}");
      else
        a.id = *s;
    }

    if (const json* ch = member("channels"); !ch) {
      fail(at("channels"), "channels is required");
    } else {
      a.channels = get_strings(*ch, at("channels"), false, false);
      if (ch->IsArray())
        for (std::size_t i = 0; i < a.channels.size(); ++i)
          check_channel(a.channels[i], pointer_append(at("channels"), i));
    }
    for (const auto& ch : a.channels) {
      std::string purpose;
      if (ch == "email" || ch == "sms" || ch == "push")
        purpose = "marketing_" + ch;
      a.channel_purpose_index.push_back(purpose.empty() ? npos : purpose_index(purpose));
      a.channel_purpose.push_back(std::move(purpose));
    }
    if (const json* pl = member("placements"))
      a.placements = get_strings(*pl, at("placements"), false, false);
    if (const json* rq = member("requires")) {
      a.requires_names = get_strings(*rq, at("requires"), false, true);
      for (std::size_t i = 0; i < a.requires_names.size(); ++i) {
        const std::size_t index = purpose_index(a.requires_names[i]);
        if (index == npos)
          fail(pointer_append(at("requires"), i),
               "unknown purpose " + in_quotes(a.requires_names[i]));
        a.requires_index.push_back(index);
      }
    }
    if (const json* pr = member("params"); pr && expect_object(*pr, at("params"), "params")) {
      for (const auto& m : pr->GetObject()) {
        const std::string p = pointer_append(at("params"), view(m.name));
        if (m.value.IsString())
          a.params.emplace_back(std::string(view(m.name)), scalar{std::string(view(m.value))});
        else if (m.value.IsNumber())
          a.params.emplace_back(std::string(view(m.name)), scalar{m.value.GetDouble()});
        else if (m.value.IsBool())
          a.params.emplace_back(std::string(view(m.name)), scalar{m.value.GetBool()});
        else
          fail(p, "a param must be a string, number or boolean");
      }
    }
    cond_scope scope;
    scope.params = &a.params;
    if (const json* w = member("when"))
      a.when = compile_condition(*w, at("when"), scope);
    if (const json* s = member("suppress"))
      a.suppress = compile_condition(*s, at("suppress"), scope);

    if (const json* n = member("priority"))
      if (auto d = get_number(*n, at("priority")))
        a.priority = *d;
    if (const json* n = member("value"))
      if (auto d = get_number(*n, at("value")))
        a.value = *d;
    if (const json* n = member("weight"))
      if (auto d = get_number(*n, at("weight")))
        a.weight = *d;
    if (const json* p = member("propensity"))
      compile_propensity(*p, at("propensity"), a.propensity);

    if (const json* cp = member("cap")) {
      if (!cp->IsArray()) {
        fail(at("cap"), "cap must be an array of {\"max\": N, \"per\": DURATION}");
      } else {
        for (rapidjson::SizeType i = 0; i < cp->Size(); ++i)
          if (auto c = compile_cap((*cp)[i], pointer_append(at("cap"), i), true))
            a.caps.push_back(std::move(*c));
      }
    }
    if (const json* gc = member("global_cap"))
      a.global_cap = compile_cap(*gc, at("global_cap"), false);
    if (const json* cd = member("cooldown"); cd && expect_object(*cd, at("cooldown"), "cooldown")) {
      const std::string cp = at("cooldown");
      check_keys(*cd, cp, {"after_shown", "after_dismissed", "after_accepted"});
      for (const auto& m : cd->GetObject()) {
        const std::string_view key = view(m.name);
        cooldown_rule rule;
        std::string_view event;
        if (key == "after_shown") {
          rule.kind = cooldown_rule::after::shown;
          event = "action_shown";
        } else if (key == "after_dismissed") {
          rule.kind = cooldown_rule::after::dismissed;
          event = "action_dismissed";
        } else if (key == "after_accepted") {
          rule.kind = cooldown_rule::after::accepted;
          event = "action_accepted";
        } else {
          continue;
        }
        rule.event_key = name_key::of(event);
        rule.pointer = pointer_append(cp, key);
        if (auto d = get_duration(m.value, rule.pointer)) {
          rule.length = *d;
          a.cooldowns.push_back(std::move(rule));
        }
      }
    }
    if (const json* pl = member("payload")) {
      a.payload_json = to_json_text(*pl);
      msgpack::sbuffer buffer;
      msgpack::packer<msgpack::sbuffer> packer(buffer);
      pack(*pl, packer);
      a.payload_msgpack.assign(buffer.data(), buffer.size());
    } else {
      msgpack::sbuffer buffer;
      msgpack::packer<msgpack::sbuffer> packer(buffer);
      packer.pack_nil();
      a.payload_msgpack.assign(buffer.data(), buffer.size());
    }
    return a;
  }

  /// A `cap` (`per_profile`: counted in the profile's decision log, so bounded by what
  /// it keeps) or a `global_cap`.
  std::optional<cap> compile_cap(const json& v, const std::string& path, bool per_profile) {
    if (!expect_object(v, path, "a cap"))
      return std::nullopt;
    check_keys(v, path, {"max", "per"});
    cap c;
    c.pointer = path;
    bool ok = true;
    if (auto m = v.FindMember("max"); m == v.MemberEnd()) {
      fail(pointer_append(path, "max"), "max is required");
      ok = false;
    } else if (auto n = get_count(m->value, pointer_append(path, "max"))) {
      c.max = *n;
      if (per_profile && !within_decisions_kept(*n, pointer_append(path, "max")))
        ok = false;
    } else {
      ok = false;
    }
    if (auto m = v.FindMember("per"); m == v.MemberEnd()) {
      fail(pointer_append(path, "per"), "per is required");
      ok = false;
    } else if (auto d = get_duration(m->value, pointer_append(path, "per"))) {
      c.per = *d;
    } else {
      ok = false;
    }
    if (!ok)
      return std::nullopt;
    return c;
  }

  void compile_propensity(const json& v, const std::string& path, propensity_spec& out) {
    if (v.IsNumber()) {
      const double p = v.GetDouble();
      if (p < 0 || p > 1)
        fail(path, "propensity must be within [0, 1]");
      out.from = propensity_spec::source::fixed;
      out.fixed = p;
      return;
    }
    if (!v.IsObject()) {
      fail(path, "propensity must be a number, {\"model\": ID} or {\"learn\": {\"prior\": [A, B]}}");
      return;
    }
    check_keys(v, path, {"model", "learn"});
    const auto model = v.FindMember("model");
    const auto learn = v.FindMember("learn");
    if ((model == v.MemberEnd()) == (learn == v.MemberEnd())) {
      fail(path, "propensity needs exactly one of model and learn");
      return;
    }
    if (model != v.MemberEnd()) {
      const std::string mp = pointer_append(path, "model");
      if (auto s = get_string(model->value, mp)) {
        out.from = propensity_spec::source::model;
        out.model = find_model(*s);
        if (out.model == npos)
          fail(mp, "unknown model " + in_quotes(*s));
      }
      return;
    }
    const std::string lp = pointer_append(path, "learn");
    if (!expect_object(learn->value, lp, "learn"))
      return;
    check_keys(learn->value, lp, {"prior"});
    out.from = propensity_spec::source::learn;
    const auto prior = learn->value.FindMember("prior");
    const std::string pp = pointer_append(lp, "prior");
    if (prior == learn->value.MemberEnd()) {
      out.prior_a = out.prior_b = 1;  // uniform prior when none is given
      return;
    }
    const json& p = prior->value;
    if (!p.IsArray() || p.Size() != 2 || !p[0].IsNumber() || !p[1].IsNumber() ||
        !(p[0].GetDouble() > 0) || !(p[1].GetDouble() > 0)) {
      fail(pp, "prior must be [A, B] with two positive numbers");
      return;
    }
    out.prior_a = p[0].GetDouble();
    out.prior_b = p[1].GetDouble();
  }

  // ---- the rest of the top level ---------------------------------------------

  void compile_arbitration(const json& v) {
    const std::string path = "/arbitration";
    if (!expect_object(v, path, "arbitration"))
      return;
    check_keys(v, path, {"rank_by", "max_actions"});
    if (auto m = v.FindMember("rank_by"); m != v.MemberEnd()) {
      if (m->value.IsString() && view(m->value) == "expected_value")
        out_.ranking = rank_by::expected_value;
      else if (m->value.IsString() && view(m->value) == "priority")
        out_.ranking = rank_by::priority;
      else
        fail("/arbitration/rank_by", "rank_by must be \"expected_value\" or \"priority\"");
    }
    if (auto m = v.FindMember("max_actions"); m != v.MemberEnd()) {
      if (auto n = get_count(m->value, "/arbitration/max_actions")) {
        if (*n < 1)
          fail("/arbitration/max_actions", "max_actions must be at least 1");
        else
          out_.max_actions = static_cast<std::size_t>(*n);
      }
    }
  }

  bool within_decisions_kept(std::uint64_t max, const std::string& path) {
    if (max <= limits_.decisions_kept)
      return true;
    fail(path, "max must be at most " + std::to_string(limits_.decisions_kept) +
                   " (the decisions a profile keeps, which caps and the contact policy count)");
    return false;
  }

  void compile_contact_policy(const json& v) {
    const std::string path = "/contact_policy";
    if (!expect_object(v, path, "contact_policy"))
      return;
    check_keys(v, path, {"channels", "max", "per"});
    contact_spec cp;
    bool ok = true;
    if (auto m = v.FindMember("channels"); m == v.MemberEnd()) {
      fail("/contact_policy/channels", "channels is required");
      ok = false;
    } else {
      cp.channels = get_strings(m->value, "/contact_policy/channels", false, false);
      for (std::size_t i = 0; i < cp.channels.size(); ++i)
        check_channel(cp.channels[i], pointer_append("/contact_policy/channels", i));
    }
    if (auto m = v.FindMember("max"); m == v.MemberEnd()) {
      fail("/contact_policy/max", "max is required");
      ok = false;
    } else if (auto n = get_count(m->value, "/contact_policy/max")) {
      cp.max = *n;
      if (!within_decisions_kept(*n, "/contact_policy/max"))
        ok = false;
    } else {
      ok = false;
    }
    if (auto m = v.FindMember("per"); m == v.MemberEnd()) {
      fail("/contact_policy/per", "per is required");
      ok = false;
    } else if (auto d = get_duration(m->value, "/contact_policy/per")) {
      cp.per = *d;
    } else {
      ok = false;
    }
    if (ok)
      out_.contact = std::move(cp);
  }

  void compile_schedules(const json& v) {
    if (!v.IsArray()) {
      fail("/schedules", "schedules must be an array");
      return;
    }
    std::unordered_map<std::string, std::string> first;
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
      const std::string path = pointer_append("/schedules", i);
      const json& s = v[i];
      if (!expect_object(s, path, "a schedule"))
        continue;
      check_keys(s, path, {"id", "on", "after", "cancel_on", "emit", "channel"});
      schedule out;
      auto required_string = [&](std::string_view key, std::string& into) {
        const std::string p = pointer_append(path, key);
        auto m = s.FindMember(json(rapidjson::StringRef(key.data(), key.size())));
        if (m == s.MemberEnd())
          fail(p, std::string(key) + " is required");
        else if (auto str = get_string(m->value, p))
          into = *str;
      };
      required_string("id", out.id);
      required_string("on", out.on);
      required_string("emit", out.emit);
      required_string("channel", out.channel);
      if (!out.channel.empty())
        check_channel(out.channel, pointer_append(path, "channel"));
      if (auto m = s.FindMember("after"); m == s.MemberEnd())
        fail(pointer_append(path, "after"), "after is required");
      else if (auto d = get_duration(m->value, pointer_append(path, "after")))
        out.after = *d;
      if (auto m = s.FindMember("cancel_on"); m != s.MemberEnd())
        out.cancel_on = get_strings(m->value, pointer_append(path, "cancel_on"), false, true);
      if (!out.id.empty()) {
        auto [it, inserted] = first.emplace(out.id, path);
        if (!inserted)
          fail(pointer_append(path, "id"),
               "duplicate schedule id " + in_quotes(out.id) + " (first at " + it->second + ")");
      }
      out_.schedules.push_back(std::move(out));
    }
  }

  const policy_limits& limits_;
  program& out_;
  std::vector<problem> problems_;
  std::vector<std::vector<std::size_t>> edges_;      ///< segments, then models
  std::vector<std::vector<param_use>> segment_params_;  ///< per segment
};

}  // namespace

bool compile_program(std::string_view json, const policy_limits& limits, program& out,
                     std::vector<problem>& problems) noexcept {
  try {
    compiler c(limits, out);
    problems = c.run(json);
    return problems.empty();
  } catch (const std::exception& e) {
    try {
      problems.push_back(problem{"", std::string("internal error while compiling: ") + e.what()});
    } catch (...) {
    }
    return false;
  }
}

}  // namespace nudge::policies::detail
