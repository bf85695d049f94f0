#include "service/verdict.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <tuple>

namespace imagegate::service {
namespace {

using admission::AdmissionRequest;
using admission::Verdict;
using policy::Action;
using policy::RuleResult;
using policy::RuleStatus;

// Bounds on what one response carries, whatever the number of containers and rules.
constexpr std::size_t kMaxDenialLines = 20;
constexpr std::size_t kMaxAnnotationValue = 2048;
// Room kept in each policy's share of the warnings for the note saying what was left out.
constexpr std::size_t kOmittedNoteRoom = 100;

std::string objectLabel(const AdmissionRequest& request) {
  std::string name = request.name.empty() ? "(unnamed)" : request.name;
  return request.kind + " \"" + (request.namespaceName.empty() ? "" : request.namespaceName + "/") +
         name + "\"";
}

std::string denialMessage(const AdmissionRequest& request,
                          const std::vector<const RuleResult*>& denials) {
  std::string message = "imagegate denied " + objectLabel(request) + ": " +
                        std::to_string(denials.size()) +
                        (denials.size() == 1 ? " violation" : " violations");
  for (std::size_t i = 0; i < denials.size() && i < kMaxDenialLines; ++i) {
    const RuleResult& r = *denials[i];
    message += "\n- policy \"" + r.policy + "\" rule \"" + r.rule + "\": " + describeFinding(r);
  }
  if (denials.size() > kMaxDenialLines) {
    message += "\n- and " + std::to_string(denials.size() - kMaxDenialLines) + " more";
  }
  return message;
}

void appendAnnotation(std::map<std::string, std::string>& annotations, const RuleResult& result) {
  // The API server records each key as "<webhook name>/<key>" and rejects keys that contain a
  // '/', so the key is the bare policy name.
  std::string& value = annotations[result.policy];
  if (value.size() >= kMaxAnnotationValue) return;
  if (!value.empty()) value += "; ";
  value += result.rule + ": " + describeFinding(result);
  if (value.size() > kMaxAnnotationValue) value = value.substr(0, kMaxAnnotationValue - 3) + "...";
}

bool warns(const RuleResult& result) {
  if (result.status == RuleStatus::kPass) return false;
  // onFetchError: Allow turns a rule that could not be checked into a warning, whatever its action.
  return result.status == RuleStatus::kWarning || result.action != Action::kEnforce;
}

/// The findings of one rule of one policy in one mode, across containers.
struct WarningGroup {
  const RuleResult* first = nullptr;
  std::vector<const RuleResult*> members;
};

std::string modeWord(const RuleResult& result) {
  return result.action == Action::kAudit ? "audit" : "warn";
}

/// Warning messages are shown verbatim by kubectl: one line.
std::string singleLine(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return text;
}

/// The message, then shorter forms of it, longest first: without a trailing "(...)" remark, then
/// cut before each "; " or ": " from the end. Rule messages read "problem: detail", so the last
/// form is the problem alone ("root filesystem is writable").
std::vector<std::string> shorterForms(const std::string& message) {
  std::vector<std::string> forms{message};
  std::string text = message;
  if (!text.empty() && text.back() == ')') {
    const std::size_t open = text.rfind(" (");
    if (open != std::string::npos && open > 0) {
      text = text.substr(0, open);
      forms.push_back(text);
    }
  }
  for (std::size_t cut = text.rfind(": "); cut != std::string::npos && cut > 0;
       cut = text.rfind(": ")) {
    text = text.substr(0, cut);
    forms.push_back(text);
  }
  return forms;
}

/// Cuts to at most `limit` bytes at a word boundary when there is one, marking the cut.
std::string cutToFit(const std::string& text, std::size_t limit) {
  if (text.size() <= limit) return text;
  if (limit <= 3) return text.substr(0, limit);
  std::size_t cut = limit - 3;
  const std::size_t space = text.rfind(' ', cut);
  if (space != std::string::npos && space > cut / 2) cut = space;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
}

/// "container \"a\"", "containers a, b and 3 more" within `room` bytes, else "" (or, when
/// `countOnly`, "40 containers").
std::string whoFits(const WarningGroup& group, std::size_t room, bool countOnly) {
  if (!group.first->container) return room >= 3 ? "pod" : "";
  if (group.members.size() == 1) {
    const std::string one = subject(*group.first);
    if (one.size() <= room) return one;
    const std::string& bare = *group.first->container;
    return bare.size() <= room ? bare : "";
  }
  const std::size_t count = group.members.size();
  std::string listed = "containers ";
  std::size_t shown = 0;
  for (const RuleResult* member : group.members) {
    const std::string next = (shown == 0 ? "" : ", ") + member->container.value_or("");
    const std::size_t left = count - shown - 1;
    const std::string tail = left == 0 ? "" : " and " + std::to_string(left) + " more";
    if (listed.size() + next.size() + tail.size() > room) break;
    listed += next;
    ++shown;
  }
  if (shown == count) return listed;
  if (shown > 0) return listed + " and " + std::to_string(count - shown) + " more";
  const std::string counted = std::to_string(count) + " containers";
  return countOnly && counted.size() <= room ? counted : "";
}

std::string warningFor(const WarningGroup& group) {
  const RuleResult& first = *group.first;
  const std::string head =
      "imagegate " + modeWord(first) + " " + first.policy + "/" + first.rule + ": ";
  const bool sameMessage =
      std::all_of(group.members.begin(), group.members.end(),
                  [&](const RuleResult* r) { return r->message == first.message; });
  std::vector<std::string> problems = shorterForms(singleLine(first.message));
  // Containers with different details share only the problem itself.
  if (!sameMessage) problems.erase(problems.begin(), problems.end() - 1);
  for (const bool countOnly : {false, true}) {
    for (const std::string& problem : problems) {
      const std::size_t used = head.size() + 2 + problem.size();
      if (used >= admission::kMaxWarningLength) continue;
      const std::string who = whoFits(group, admission::kMaxWarningLength - used, countOnly);
      if (!who.empty()) return head + who + ": " + problem;
    }
  }
  // Only very long names or a very long problem get here: keep who, cut the problem.
  const std::string who = whoFits(group, admission::kMaxWarningLength / 3, true);
  return cutToFit(head + (who.empty() ? "" : who + ": ") + problems.back(),
                  admission::kMaxWarningLength);
}

/// The warnings of each policy, in the order the policies first appear in `results`.
std::vector<std::pair<std::string, std::vector<std::string>>> warningsByPolicy(
    const std::vector<RuleResult>& results) {
  using Key = std::tuple<std::string, std::string, bool, Action>;
  std::map<Key, WarningGroup> groups;
  std::vector<Key> order;
  for (const RuleResult& result : results) {
    if (!warns(result)) continue;
    const Key key{result.policy, result.rule, result.status == RuleStatus::kWarning, result.action};
    auto [it, inserted] = groups.try_emplace(key);
    if (inserted) {
      it->second.first = &result;
      order.push_back(key);
    }
    it->second.members.push_back(&result);
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> byPolicy;
  std::map<std::string, std::size_t> policyIndex;
  for (const Key& key : order) {
    const std::string& policyName = std::get<0>(key);
    const auto [it, inserted] = policyIndex.try_emplace(policyName, byPolicy.size());
    if (inserted) byPolicy.emplace_back(policyName, std::vector<std::string>{});
    byPolicy[it->second].second.push_back(warningFor(groups.at(key)));
  }
  return byPolicy;
}

std::size_t totalSize(const std::vector<std::string>& warnings) {
  return std::accumulate(warnings.begin(), warnings.end(), std::size_t{0},
                         [](std::size_t sum, const std::string& w) { return sum + w.size(); });
}

/// Water-filling: policies needing less than an equal share keep what they need, and what they
/// leave is shared among the others.
std::vector<std::size_t> fairShares(const std::vector<std::size_t>& needs, std::size_t total) {
  std::vector<std::size_t> order(needs.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return needs[a] < needs[b]; });
  std::vector<std::size_t> shares(needs.size(), 0);
  std::size_t left = total;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::size_t equal = left / (order.size() - i);
    shares[order[i]] = std::min(needs[order[i]], equal);
    left -= shares[order[i]];
  }
  return shares;
}

}  // namespace

std::string subject(const RuleResult& result) {
  if (!result.container) return "pod";
  return std::string(admission::describe(
             result.containerKind.value_or(admission::ContainerKind::kContainer))) +
         " \"" + *result.container + "\"";
}

std::string describeFinding(const RuleResult& result) {
  std::string text = subject(result) + ": " + result.message;
  if (result.status == RuleStatus::kError)
    text = subject(result) + ": could not be evaluated: " + result.message;
  if (!result.remediation.empty()) text += " (fix: " + result.remediation + ")";
  return text;
}

std::vector<std::string> composeWarnings(const std::vector<RuleResult>& results) {
  const auto byPolicy = warningsByPolicy(results);
  std::vector<std::size_t> needs;
  for (const auto& [policyName, warnings] : byPolicy) needs.push_back(totalSize(warnings));
  const std::vector<std::size_t> shares = fairShares(needs, admission::kMaxWarningsTotal);
  std::vector<std::string> out;
  for (std::size_t p = 0; p < byPolicy.size(); ++p) {
    const auto& [policyName, warnings] = byPolicy[p];
    const bool allFit = needs[p] <= shares[p];
    const std::size_t budget =
        allFit ? shares[p] : shares[p] - std::min(shares[p], kOmittedNoteRoom);
    std::size_t used = 0;
    std::size_t kept = 0;
    for (; kept < warnings.size() && used + warnings[kept].size() <= budget; ++kept) {
      used += warnings[kept].size();
      out.push_back(warnings[kept]);
    }
    const std::size_t noteRoom = std::min(shares[p] - used, kOmittedNoteRoom);
    if (kept < warnings.size() && noteRoom >= 40) {
      out.push_back(cutToFit("imagegate: " + std::to_string(warnings.size() - kept) +
                                 " more findings of " + policyName + " in the imagegate log",
                             noteRoom));
    }
  }
  return out;
}

Verdict verdictFor(const AdmissionRequest& request, const std::vector<RuleResult>& results) {
  Verdict verdict;
  std::vector<const RuleResult*> denials;
  for (const RuleResult& result : results) {
    if (result.status == RuleStatus::kPass) continue;
    if (result.status == RuleStatus::kWarning) continue;  // a warning only
    if (result.action == Action::kEnforce) denials.push_back(&result);
    if (result.action == Action::kAudit) appendAnnotation(verdict.auditAnnotations, result);
  }
  verdict.warnings = composeWarnings(results);
  if (!denials.empty()) {
    verdict.allowed = false;
    verdict.code = 403;
    verdict.reason = "Forbidden";
    verdict.message = denialMessage(request, denials);
  }
  return verdict;
}

}  // namespace imagegate::service
