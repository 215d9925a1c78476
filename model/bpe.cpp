#include "model/bpe.h"

#include <queue>

#include "model/unicode.h"

namespace dso {
namespace {

struct Symbol {
  std::size_t begin;
  std::size_t end;
  int prev;
  int next;
  bool alive;
};

struct Candidate {
  double priority;
  int left;
  int right;
  std::size_t length;  // of the merged text; a mismatch later means a side has changed since
  std::size_t begin;
};

struct WorseCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.priority != b.priority) return a.priority < b.priority;
    return a.begin > b.begin;
  }
};

}  // namespace

std::vector<std::string_view> bpe_merge(std::string_view word, const PairPriority& priority) {
  std::vector<Symbol> s;
  for (std::size_t pos = 0; pos < word.size();) {
    const auto length = std::size_t(unicode::decode_utf8(word, pos).length);
    const int index = int(s.size());
    s.push_back({pos, pos + length, index - 1, index + 1, true});
    pos += length;
  }
  if (!s.empty()) s.back().next = -1;

  std::priority_queue<Candidate, std::vector<Candidate>, WorseCandidate> queue;
  const auto consider = [&](int left, int right) {
    if (left < 0 || right < 0) return;
    const std::string_view l = word.substr(s[left].begin, s[left].end - s[left].begin);
    const std::string_view r = word.substr(s[right].begin, s[right].end - s[right].begin);
    if (const auto p = priority(l, r)) queue.push({*p, left, right, l.size() + r.size(), s[left].begin});
  };
  for (int i = 0; i + 1 < int(s.size()); ++i) consider(i, i + 1);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = s[c.left];
    Symbol& right = s[c.right];
    if (!left.alive || !right.alive || left.next != c.right || right.end - left.begin != c.length) continue;
    left.end = right.end;
    left.next = right.next;
    right.alive = false;
    if (left.next >= 0) s[left.next].prev = c.left;
    consider(left.prev, c.left);
    consider(c.left, left.next);
  }

  std::vector<std::string_view> out;
  for (int i = s.empty() ? -1 : 0; i >= 0; i = s[i].next) out.push_back(word.substr(s[i].begin, s[i].end - s[i].begin));
  return out;
}

}  // namespace dso
