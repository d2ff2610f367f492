// The compiled search core: the CTC prefix beam search of search.py and the context-graph
// bias scorer of bias.py / context_graph.py, step for step, so that texts, frames and scores
// are those of the Python reference (same floating-point operations in the same order).
//
// Python prepares what needs Python semantics (each frame's candidate units in the order
// the reference tries them, each label's cleaned forms) and turns the results into
// SearchResult records; everything per beam and per frame happens here. Without a
// language model the search runs with the GIL released; a language model is called back
// in Python (its word scores are cached per word sequence, as in the reference).

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <tuple>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace py = pybind11;

namespace {

using Doubles = py::array_t<double, py::array::c_style | py::array::forcecast>;
using Ints = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;
using Longs = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using Bytes = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

template <typename T>
std::vector<T> copy(const py::array_t<T, py::array::c_style | py::array::forcecast>& a) {
  return std::vector<T>(a.data(), a.data() + a.size());
}

constexpr int kVirtualBoundary = -1;  // context_graph.BOUNDARY

// ---------------------------------------------------------------- the context graph
class Graph {
 public:
  Graph(Ints parent_array, Ints symbol_array, Ints depth_array, Doubles weight_array,
        Ints entity_array, Doubles entity_weight_array, Doubles letters_array, int boundary)
      : depth_(copy(depth_array)), weight_(copy(weight_array)), entity_(copy(entity_array)),
        letters_(copy(letters_array)), boundary_(boundary) {
    const std::vector<int> parent = copy(parent_array), symbol = copy(symbol_array);
    const std::vector<double> entity_weight = copy(entity_weight_array);
    const std::vector<int>& depth = depth_;
    const std::vector<int>& entity = entity_;
    const size_t n = parent.size();
    if (symbol.size() != n || depth.size() != n || weight_.size() != n || entity.size() != n)
      throw std::invalid_argument("graph arrays differ in length");
    for (size_t node = 1; node < n; ++node)
      if (parent[node] < 0 || static_cast<size_t>(parent[node]) >= node)
        throw std::invalid_argument("a node's parent must come before it");
    for (size_t node = 0; node < n; ++node)
      if (entity[node] >= static_cast<int>(entity_weight.size()) ||
          entity[node] >= static_cast<int>(letters_.size()))
        throw std::invalid_argument("entity index out of range");
    // children as sorted (symbol, node) runs per node
    start_.assign(n + 1, 0);
    for (size_t node = 1; node < n; ++node) start_[parent[node] + 1]++;
    for (size_t i = 0; i < n; ++i) start_[i + 1] += start_[i];
    symbols_.resize(n ? n - 1 : 0);
    children_.resize(n ? n - 1 : 0);
    std::vector<int64_t> fill(start_.begin(), start_.end() - 1);
    for (size_t node = 1; node < n; ++node) {
      int64_t at = fill[parent[node]]++;
      symbols_[at] = symbol[node];
      children_[at] = static_cast<int>(node);
    }
    std::vector<std::pair<int, int>> run;
    for (size_t node = 0; node < n; ++node) {
      int64_t lo = start_[node], hi = start_[node + 1];
      if (hi - lo < 2) continue;
      run.clear();
      for (int64_t i = lo; i < hi; ++i) run.emplace_back(symbols_[i], children_[i]);
      std::sort(run.begin(), run.end());
      for (int64_t i = lo; i < hi; ++i) {
        symbols_[i] = run[i - lo].first;
        children_[i] = run[i - lo].second;
      }
    }
    // failure and output links, shallow nodes first (a link always points shallower)
    std::vector<int> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = static_cast<int>(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return depth[a] < depth[b]; });
    fail_.assign(n, 0);
    out_entity_.assign(n, -1);
    out_weight_.assign(n, 0.0);
    for (int node : order) {
      if (node == 0) continue;
      int link = 0;
      if (parent[node] != 0) {
        int target = fail_[parent[node]];
        while (true) {
          int child = find(target, symbol[node]);
          if (child >= 0) {
            link = child;
            break;
          }
          if (target == 0) break;
          target = fail_[target];
        }
      }
      fail_[node] = link;
      int index = entity[node];
      if (index >= 0) {
        out_entity_[node] = index;
        out_weight_[node] = entity_weight.at(index);
      } else {
        out_entity_[node] = out_entity_[link];
        out_weight_[node] = out_weight_[link];
      }
    }
    start_node_ = n ? std::max(find(0, boundary), 0) : 0;
  }

  int find(int node, int symbol) const {  // the child along symbol, -1 if none
    const int* lo = symbols_.data() + start_[node];
    const int* hi = symbols_.data() + start_[node + 1];
    if (hi - lo <= 8) {
      for (const int* it = lo; it != hi; ++it)
        if (*it == symbol) return children_[it - symbols_.data()];
      return -1;
    }
    const int* it = std::lower_bound(lo, hi, symbol);
    return (it != hi && *it == symbol) ? children_[it - symbols_.data()] : -1;
  }

  int step_failed(int node, int symbol) const {  // ContextGraph.step once the child is absent
    while (node) {
      node = fail_[node];
      int child = find(node, symbol);
      if (child >= 0) return child;
    }
    return 0;
  }

  bool continues(int node, int unit) const {  // unit in ContextGraph.force_units(node)
    if (unit == kVirtualBoundary) return false;
    if (find(node, unit) >= 0) return true;
    int after = find(node, kVirtualBoundary);
    return after >= 0 && find(after, unit) >= 0;
  }

  size_t size() const { return depth_.size(); }
  int fail(int node) const { return fail_.at(node); }
  int start_node() const { return start_node_; }

  std::vector<int64_t> start_;
  std::vector<int> symbols_, children_;
  std::vector<int> depth_;
  std::vector<double> weight_;
  std::vector<int> entity_;
  std::vector<double> letters_;
  std::vector<int> fail_, out_entity_;
  std::vector<double> out_weight_;
  int boundary_;
  int start_node_ = 0;
};

// ---------------------------------------------------------------- the bias scorer
struct BiasParams {
  double unit_bonus, scale, cap, completion;  // already times the decoder weight
  double full;                                // full_bonus_chars (0: no scaling)
};

// BiasScorer.advance: the bonus of emitting unit from (node, partial), updated in place
double advance(const Graph& g, const BiasParams& b, int& node, double& partial, int unit,
               double gap) {
  double part = partial;
  int child = g.find(node, unit);
  double bonus = 0.0;
  if (child < 0) {
    if (node == 0) {
      partial = 0.0;
      return 0.0;
    }
    bonus = -part;
    part = 0.0;
    child = g.step_failed(node, unit);
    if (child == 0) {
      node = 0;
      partial = 0.0;
      return bonus;
    }
  }
  if (unit != g.boundary_) {
    double scaled = b.scale * gap;
    double capped = (b.cap < scaled) ? b.cap : scaled;  // Python's min(scaled, cap)
    double gain = (capped + b.unit_bonus) * g.weight_[child];
    node = child;
    partial = part + gain;
    return bonus + gain;
  }
  int ended = g.out_entity_[child];
  if (ended >= 0) {
    double shorter = 1.0;
    if (b.full != 0.0) {
      double ratio = g.letters_.at(ended) / b.full;
      shorter = (ratio < 1.0) ? ratio : 1.0;  // Python's min(1.0, ratio)
    }
    bonus += b.completion * g.out_weight_[child] * shorter;
    if (g.entity_[child] >= 0) part = 0.0;
  }
  node = child;
  partial = part;
  return bonus;
}

// ---------------------------------------------------------------- the search
struct Beam {
  int text;         // word-sequence id
  int part;         // string id of the word being spelled
  int last;         // label-string id emitted at the previous frame, -1 before any
  int frames;       // frame-list node of the completed words, -1 when empty
  int pf0, pf1;     // frames of the word being spelled, (-1, -1) when none
  double logit;     // acoustic log score
  int node;         // context-graph node
  double partial;   // bonus collected on the open entity path
  double bonus;     // biasing bonus collected
};

struct FrameNode {
  int prev, start, end;
};

struct Strings {  // interned strings; id 0 is ""
  std::vector<std::string> text{""};
  std::unordered_map<std::string, int> ids{{"", 0}};
  int intern(const std::string& s) {
    auto found = ids.find(s);
    if (found != ids.end()) return found->second;
    int id = static_cast<int>(text.size());
    ids.emplace(s, id);
    text.push_back(s);
    return id;
  }
};

struct TailKeyHash {
  size_t operator()(const std::vector<int>& v) const {
    size_t h = 1469598103934665603ull;
    for (int x : v) h = (h ^ static_cast<size_t>(x)) * 1099511628211ull;
    return h;
  }
};

inline uint64_t pair_key(int a, int b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct Words {  // search.Words: interned word sequences, id 0 empty
  std::vector<int> parent{0}, word{0}, tail{0};
  std::unordered_map<uint64_t, int> ids;
  std::unordered_map<std::vector<int>, int, TailKeyHash> tail_ids;
  std::vector<std::vector<int>> tails{{}};
  int history;
  explicit Words(int history) : history(history) { tail_ids.emplace(std::vector<int>{}, 0); }
  int add(int node, int w) {
    if (w == 0) return node;
    uint64_t key = pair_key(node, w);
    auto found = ids.find(key);
    if (found != ids.end()) return found->second;
    int id = static_cast<int>(parent.size());
    ids.emplace(key, id);
    parent.push_back(node);
    word.push_back(w);
    std::vector<int> t = tails[tail[node]];
    t.push_back(w);
    if (static_cast<int>(t.size()) > history) t.erase(t.begin(), t.end() - history);
    auto [it, fresh] = tail_ids.emplace(t, static_cast<int>(tails.size()));
    if (fresh) tails.push_back(t);
    tail.push_back(it->second);
    return id;
  }
  std::string text(int node, const Strings& strings) const {
    std::vector<int> chain;
    while (node) {
      chain.push_back(word[node]);
      node = parent[node];
    }
    std::string out;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      if (!out.empty()) out += ' ';
      out += strings.text[*it];
    }
    return out;
  }
};

struct MergeKey {
  int text, part, last;
  bool operator==(const MergeKey& o) const {
    return text == o.text && part == o.part && last == o.last;
  }
};
struct MergeKeyHash {
  size_t operator()(const MergeKey& k) const {
    uint64_t h = pair_key(k.text, k.part) * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(k.last)) *
                                    0xC2B2AE3D27D4EB4Full));
  }
};

double log_add(double a, double b) {  // search._log_add
  if (a >= b) return a + std::log(1 + std::exp(b - a));
  return b + std::log(1 + std::exp(a - b));
}

// search._keep: whether the later alignment's fields win
inline bool later_wins(const Beam& previous, const Beam& beam) {
  return beam.bonus == previous.bonus ||
         beam.logit + beam.bonus >= previous.logit + previous.bonus;
}

struct Units {  // per label index, what the Python side worked out
  std::vector<int> lid;         // label-string id ("" is the blank)
  std::vector<char> starts;     // BPE piece starting with "▁"
  std::vector<char> ends;       // BPE piece ending with "▁"
  std::vector<char> space;      // the " " label of a character vocabulary
  std::vector<int> clean;       // string id of the word part a starting piece begins
  std::vector<int> forced;      // ... and of a piece that starts a word by a carried break
  std::vector<int> label_sid;   // string id of the label itself (appended to a word part)
  int blank_lid;                // label-string id of "" (-2 if none)
};

struct Plan {  // each frame's candidate units, from the Python side (native.py)
  const int64_t* offsets;        // frame t tries units[offsets[t]:offsets[t + 1]] ...
  const int32_t* units;
  const double* values;          // ... with these log-probabilities
  const uint8_t* single;         // at most one unit above token_min_logp
  const int32_t* best_unit;
  const double* best;
  const int64_t* force_offsets;  // units an entity may be forced to: forcible[...]
  const int32_t* forcible;
};

struct Result {
  std::string text;
  std::vector<std::pair<int, int>> frames;
  double logit, score;
  std::optional<int> lm_key;  // word sequence whose final LM state to return
};

class Search {
 public:
  Search(const Units& units, Strings strings, bool is_bpe, const Graph* graph, BiasParams bias,
         py::object lm, py::object start_state, int history)
      : u_(units), strings_(std::move(strings)), is_bpe_(is_bpe), g_(graph), b_(bias),
        lm_(std::move(lm)), words_(history) {
    if (!lm_.is_none()) {
      has_.push_back(1);
      hot_.push_back(0.0);
      raw_.push_back(0.0);
      state_.push_back(start_state.is_none() ? lm_.attr("get_start_state")() : start_state);
      score_fn_ = lm_.attr("score");  // bound once: looked up per call, they cost more
      partial_fn_ = lm_.attr("score_partial_token");
    }
  }

  bool has_lm() const { return !lm_.is_none(); }

  std::vector<Beam> run(const double* lp, int frames, int vocab, const Plan& plan,
                        int beam_width, double prune, bool prune_history) {
    const int64_t* offsets = plan.offsets;
    const int32_t* cand = plan.units;
    const double* values = plan.values;
    const uint8_t* single = plan.single;
    const int32_t* best_unit = plan.best_unit;
    const double* best = plan.best;
    const int64_t* force_offsets = plan.force_offsets;
    const int32_t* forcible = plan.forcible;
    Beam first{0, 0, -1, -1, -1, -1, 0.0, g_ ? g_->start_node() : 0, 0.0, 0.0};
    std::vector<Beam> beams{first}, extended, merged;
    std::vector<double> scores;
    std::unordered_map<MergeKey, int, MergeKeyHash> slot;
    bool force_break = false;
    for (int t = 0; t < frames; ++t) {
      const bool no_force = force_offsets[t] == force_offsets[t + 1];
      if (single[t] && beams.size() == 1 && no_force) {
        beams[0] = extend(beams[0], best_unit[t], best[t], 0.0, t, force_break);
        continue;
      }
      extended.clear();
      for (int64_t i = offsets[t]; i < offsets[t + 1]; ++i) {
        const int unit = cand[i];
        const double p = values[i];
        if (u_.lid[unit] == u_.blank_lid) {
          for (const Beam& b : beams) {
            Beam n = b;
            n.last = u_.blank_lid;
            n.logit = b.logit + p;
            extended.push_back(n);
          }
          continue;
        }
        const double gap = best[t] - p;
        for (const Beam& b : beams) extended.push_back(extend(b, unit, p, gap, t, force_break));
      }
      if (g_ && !no_force) {
        for (const Beam& b : beams) {
          if (g_->depth_[b.node] < 2) continue;
          for (int64_t i = force_offsets[t]; i < force_offsets[t + 1]; ++i) {
            const int unit = forcible[i];
            if (!g_->continues(b.node, unit)) continue;
            const double p = lp[static_cast<int64_t>(t) * vocab + unit];
            bool ignored = false;
            extended.push_back(extend(b, unit, p, best[t] - p, t, ignored));
          }
        }
      }
      merge(extended, merged, slot);
      score_all(merged, scores);
      prune_beams(merged, scores, beam_width, prune, prune_history, beams);
    }
    return beams;
  }

  std::vector<Result> finalise(const std::vector<Beam>& beams, int beam_width, double prune) {
    struct Closed {
      Beam beam;
      int previous, word;
    };
    std::vector<Closed> closed;
    std::unordered_map<int, int> slot;
    for (const Beam& b : beams) {
      Beam c = b;
      if (b.part) c.frames = push_frames(b.frames, b.pf0, b.pf1);
      if (g_) c.bonus = b.bonus + finalize_bias(b.node, b.partial);
      c.text = words_.add(b.text, b.part);
      c.part = 0;
      c.last = -1;
      c.pf0 = c.pf1 = -1;
      auto found = slot.find(c.text);
      if (found == slot.end()) {
        slot.emplace(c.text, static_cast<int>(closed.size()));
        closed.push_back({c, b.text, b.part});
        continue;
      }
      Closed& old = closed[found->second];
      const double logit = log_add(old.beam.logit, c.logit);
      if (later_wins(old.beam, c)) {
        old = {c, b.text, b.part};
      }
      old.beam.logit = logit;
    }
    std::vector<double> scores;
    for (const Closed& c : closed) scores.push_back(final_score(c.beam, c.previous, c.word));
    std::vector<int> order(closed.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return scores[a] > scores[b]; });
    std::vector<Result> out;
    if (order.empty()) return out;
    const double floor = scores[order[0]] + prune;
    for (size_t k = 0; k < order.size() && static_cast<int>(k) < beam_width; ++k) {
      const int i = order[k];
      if (!(scores[i] >= floor)) continue;
      const Beam& b = closed[i].beam;
      Result r;
      r.text = words_.text(b.text, strings_);
      for (int f = b.frames; f >= 0; f = frame_nodes_[f].prev)
        r.frames.emplace_back(frame_nodes_[f].start, frame_nodes_[f].end);
      std::reverse(r.frames.begin(), r.frames.end());
      r.logit = b.logit;
      r.score = scores[i];
      if (has_lm()) r.lm_key = b.text;
      out.push_back(std::move(r));
    }
    return out;
  }

  py::object final_state(int text) const {
    auto found = final_.find(text);
    return found == final_.end() ? py::object(py::none()) : found->second.state;
  }

 private:
  int push_frames(int prev, int start, int end) {
    frame_nodes_.push_back({prev, start, end});
    return static_cast<int>(frame_nodes_.size()) - 1;
  }

  int extend_part(int part, int unit) {
    uint64_t key = pair_key(part, unit);
    auto found = appended_.find(key);
    if (found != appended_.end()) return found->second;
    int id = strings_.intern(strings_.text[part] + strings_.text[u_.label_sid[unit]]);
    appended_.emplace(key, id);
    return id;
  }

  double bias_step(Beam& b, int unit, double gap) {
    return advance(*g_, b_, b.node, b.partial, unit, gap);
  }

  double finalize_bias(int node, double partial) {
    double bonus = advance(*g_, b_, node, partial, g_->boundary_, 0.0);
    return bonus - partial;
  }

  // search._extend
  Beam extend(const Beam& beam, int unit, double p, double gap, int t, bool& force_break) {
    Beam b = beam;
    const int lid = u_.lid[unit];
    if (lid == u_.blank_lid || lid == b.last) {
      if (lid != u_.blank_lid) b.pf1 = t + 1;
      b.last = lid;
      b.logit = beam.logit + p;
      return b;
    }
    if (is_bpe_ && (u_.starts[unit] || force_break)) {
      const int clean = u_.starts[unit] ? u_.clean[unit] : u_.forced[unit];
      force_break = u_.ends[unit] != 0;
      if (b.part) b.frames = push_frames(b.frames, b.pf0, b.pf1);
      if (g_) {
        double delta = bias_step(b, g_->boundary_, 0.0);
        b.bonus += delta;
        delta = bias_step(b, unit, gap);
        b.bonus += delta;
      }
      b.text = words_.add(beam.text, beam.part);
      b.part = clean;
      b.last = lid;
      b.pf0 = t;
      b.pf1 = t + 1;
      b.logit = beam.logit + p;
      return b;
    }
    if (!is_bpe_ && u_.space[unit]) {
      if (b.part) b.frames = push_frames(b.frames, b.pf0, b.pf1);
      if (g_) b.bonus += bias_step(b, unit, 0.0);
      b.text = words_.add(beam.text, beam.part);
      b.part = 0;
      b.last = lid;
      b.pf0 = b.pf1 = -1;
      b.logit = beam.logit + p;
      return b;
    }
    if (b.pf0 < 0) {
      b.pf0 = t;
      b.pf1 = t + 1;
    } else {
      b.pf1 = t + 1;
    }
    if (g_) b.bonus += bias_step(b, unit, gap);
    b.part = extend_part(beam.part, unit);
    b.last = lid;
    b.logit = beam.logit + p;
    return b;
  }

  // search._merge
  void merge(const std::vector<Beam>& beams, std::vector<Beam>& out,
             std::unordered_map<MergeKey, int, MergeKeyHash>& slot) {
    out.clear();
    slot.clear();
    for (const Beam& b : beams) {
      MergeKey key{b.text, b.part, b.last};
      auto [it, fresh] = slot.emplace(key, static_cast<int>(out.size()));
      if (fresh) {
        out.push_back(b);
        continue;
      }
      Beam& previous = out[it->second];
      const double logit = log_add(previous.logit, b.logit);
      if (later_wins(previous, b)) previous = b;
      previous.logit = logit;
    }
  }

  // search._Scorer.score_all
  void score_all(const std::vector<Beam>& beams, std::vector<double>& scores) {
    scores.clear();
    if (!has_lm()) {
      for (const Beam& b : beams) scores.push_back(b.logit + b.bonus);
      return;
    }
    for (const Beam& b : beams) {
      double lm_score = words_score(b.text);
      if (b.part) lm_score += partial_score(b.part);
      double score = b.logit + lm_score;
      scores.push_back(g_ ? score + b.bonus : score);
    }
  }

  double final_score(const Beam& b, int previous, int word) {
    if (!has_lm()) return g_ ? b.logit + b.bonus : b.logit;
    auto found = final_.find(b.text);
    if (found == final_.end()) {
      words_score(previous);
      found = final_.emplace(b.text, lm_step(previous, word, true)).first;
    }
    double score = b.logit + found->second.hot;
    return g_ ? score + b.bonus : score;
  }

  struct Scored {
    double hot, raw;
    py::object state;
  };

  Scored lm_step(int previous, int word, bool last) {
    py::tuple got = score_fn_(state_[previous], strings_.text[word],
                                      py::arg("is_last_word") = last);
    double raw = raw_[previous] + got[0].cast<double>();
    return {raw + 0.0, raw, got[1]};
  }

  double words_score(int node) {  // _Scorer._words
    if (node < static_cast<int>(has_.size()) && has_[node]) return hot_[node];
    std::vector<int> chain;
    while (!(node < static_cast<int>(has_.size()) && has_[node])) {
      chain.push_back(node);
      node = words_.parent[node];
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      const int n = *it;
      Scored s = lm_step(words_.parent[n], words_.word[n], false);
      if (static_cast<int>(has_.size()) <= n) {
        has_.resize(n + 1, 0);
        hot_.resize(n + 1, 0.0);
        raw_.resize(n + 1, 0.0);
        state_.resize(n + 1);
      }
      has_[n] = 1;
      hot_[n] = s.hot;
      raw_[n] = s.raw;
      state_[n] = s.state;
    }
    return hot_[chain.empty() ? node : chain[0]];
  }

  double partial_score(int part) {
    auto found = partial_.find(part);
    if (found != partial_.end()) return found->second;
    const std::string& text = strings_.text[part];
    py::object word = py::reinterpret_steal<py::object>(
        PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "strict"));
    if (!word) throw py::error_already_set();
    py::object got = py::reinterpret_steal<py::object>(
        PyObject_CallOneArg(partial_fn_.ptr(), word.ptr()));
    if (!got) throw py::error_already_set();
    const double s = PyFloat_AsDouble(got.ptr());
    if (s == -1.0 && PyErr_Occurred()) throw py::error_already_set();
    partial_.emplace(part, s);
    return s;
  }

  // search._prune
  void prune_beams(const std::vector<Beam>& merged, const std::vector<double>& scores,
                   int beam_width, double prune, bool prune_history, std::vector<Beam>& out) {
    order_.resize(merged.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<int>(i);
    std::stable_sort(order_.begin(), order_.end(),
                     [&](int a, int b) { return scores[a] > scores[b]; });
    out.clear();
    const double floor = scores[order_[0]] + prune;
    for (size_t k = 0; k < order_.size() && static_cast<int>(k) < beam_width; ++k) {
      if (scores[order_[k]] < floor) break;
      out.push_back(merged[order_[k]]);
    }
    if (!prune_history) return;
    struct Key {
      int tail, part, last, node;
      bool operator==(const Key& o) const {
        return tail == o.tail && part == o.part && last == o.last && node == o.node;
      }
    };
    std::vector<Key> seen;
    std::vector<Beam> kept;
    for (const Beam& b : out) {
      Key key{words_.tail[b.text], b.part, b.last, g_ ? b.node : -1};
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
      seen.push_back(key);
      kept.push_back(b);
    }
    out.swap(kept);
  }

  const Units& u_;
  Strings strings_;
  bool is_bpe_;
  const Graph* g_;
  BiasParams b_;
  py::object lm_, score_fn_, partial_fn_;
  Words words_;
  std::vector<FrameNode> frame_nodes_;
  std::unordered_map<uint64_t, int> appended_;
  std::vector<char> has_;  // LM cache per word sequence (not the utterance's end)
  std::vector<double> hot_, raw_;
  std::vector<py::object> state_;
  std::unordered_map<int, Scored> final_;  // ... as the utterance's end
  std::unordered_map<int, double> partial_;
  std::vector<int> order_;
};

// The vocabulary as the search sees it: built once per decoder.
class Vocabulary {
 public:
  Vocabulary(const std::vector<std::string>& labels, bool is_bpe,
             const std::vector<int>& starts, const std::vector<int>& ends,
             const std::vector<std::string>& clean, const std::vector<std::string>& forced)
      : is_bpe_(is_bpe) {
    const size_t n = labels.size();
    Strings label_ids;
    u_.blank_lid = -2;
    for (size_t i = 0; i < n; ++i) {
      int lid = label_ids.intern(labels[i]);
      u_.lid.push_back(lid);
      if (labels[i].empty()) u_.blank_lid = lid;
      u_.starts.push_back(static_cast<char>(starts.at(i)));
      u_.ends.push_back(static_cast<char>(ends.at(i)));
      u_.space.push_back(static_cast<char>(labels[i] == " "));
      u_.clean.push_back(strings_.intern(clean.at(i)));
      u_.forced.push_back(strings_.intern(forced.at(i)));
      u_.label_sid.push_back(strings_.intern(labels[i]));
    }
  }

  py::list search(Doubles logprobs, Longs offsets, Ints units, Doubles values, Bytes single,
                  Ints best_unit, Doubles best, Longs force_offsets, Ints forcible,
                  int beam_width, double prune, bool prune_history, const Graph* graph,
                  std::vector<double> bias, py::object lm, py::object start_state,
                  int history) {
    if (logprobs.ndim() != 2 || static_cast<size_t>(logprobs.shape(1)) != u_.lid.size())
      throw std::invalid_argument("logprobs must be (frames, labels)");
    const py::ssize_t frames = logprobs.shape(0);
    if (offsets.size() != frames + 1 || force_offsets.size() != frames + 1 ||
        single.size() != frames || best.size() != frames || best_unit.size() != frames ||
        units.size() != values.size() || offsets.at(frames) != units.size() ||
        force_offsets.at(frames) != forcible.size())
      throw std::invalid_argument("per-frame arrays do not match the frames");
    for (py::ssize_t i = 0; i < units.size(); ++i)
      if (units.at(i) < 0 || static_cast<size_t>(units.at(i)) >= u_.lid.size())
        throw std::invalid_argument("candidate unit out of range");
    for (py::ssize_t i = 0; i < forcible.size(); ++i)
      if (forcible.at(i) < 0 || static_cast<size_t>(forcible.at(i)) >= u_.lid.size())
        throw std::invalid_argument("forcible unit out of range");
    Plan plan{offsets.data(), units.data(), values.data(), single.data(),
              best_unit.data(), best.data(), force_offsets.data(), forcible.data()};
    const int vocab = static_cast<int>(u_.lid.size());
    BiasParams params{0, 0, 0, 0, 0};
    if (graph) {
      if (bias.size() != 5) throw std::invalid_argument("bias needs 5 numbers");
      params = {bias[0], bias[1], bias[2], bias[3], bias[4]};
    }
    Search s(u_, strings_, is_bpe_, graph, params, std::move(lm), std::move(start_state),
             history);
    std::vector<Result> results;
    if (s.has_lm()) {
      auto beams = s.run(logprobs.data(), static_cast<int>(frames), vocab, plan, beam_width,
                         prune, prune_history);
      results = s.finalise(beams, beam_width, prune);
    } else {
      py::gil_scoped_release release;
      auto beams = s.run(logprobs.data(), static_cast<int>(frames), vocab, plan, beam_width,
                         prune, prune_history);
      results = s.finalise(beams, beam_width, prune);
    }
    py::list out;
    for (const Result& r : results) {
      py::object state = r.lm_key ? s.final_state(*r.lm_key) : py::object(py::none());
      out.append(py::make_tuple(r.text, state, r.frames, r.logit, r.score));
    }
    return out;
  }

 private:
  Units u_;
  Strings strings_;
  bool is_bpe_;
};

// ---------------------------------------------------------------- the unit spotter
// spotting.spot's token passing, frame by frame as in the reference (states, their order,
// ties and pruning the same): the best (score, end) per (trie node, start frame) completed,
// in the order the reference first records them.
py::list spot_tokens(Doubles rel_array, Bytes gate_array, int blank, Longs unit_array,
                     Longs depth_array, Longs child_ptr_array, Longs child_ids_array,
                     Bytes terminal_array, double bonus, double max_cost, int64_t max_active) {
  if (rel_array.ndim() != 2) throw std::invalid_argument("rel must be (frames, classes)");
  const int64_t frames = rel_array.shape(0), classes = rel_array.shape(1);
  const int64_t size = unit_array.size();
  if (gate_array.size() != frames || depth_array.size() != size ||
      terminal_array.size() != size || child_ptr_array.size() != size + 1 ||
      child_ids_array.size() != size - 1 || blank < 0 || blank >= classes)
    throw std::invalid_argument("trie arrays do not match");
  const double* rel = rel_array.data();
  const uint8_t* gate = gate_array.data();
  const int64_t* unit = unit_array.data();
  const int64_t* depth = depth_array.data();
  const int64_t* child_ptr = child_ptr_array.data();
  const int64_t* child_ids = child_ids_array.data();
  const uint8_t* terminal = terminal_array.data();
  for (int64_t n = 1; n < size; ++n)
    if (unit[n] < 0 || unit[n] >= classes) throw std::invalid_argument("unit out of range");
  struct Token {
    int64_t state;
    double score;
    int64_t start;
  };
  struct Best {
    double score;
    int64_t end;
    size_t order;
  };
  std::vector<Token> live, next;
  std::vector<int64_t> seen(2 * size, -1), unique;  // per state: the frame it was last seen
  std::vector<size_t> holder(2 * size, 0);          // ... and its best token there
  std::vector<double> adjusted;
  std::unordered_map<uint64_t, size_t> found;  // (node, start) -> index in bests
  std::vector<std::tuple<int64_t, int64_t, double, int64_t>> bests;
  {
    py::gil_scoped_release release;
    const int64_t root_lo = child_ptr[0], root_hi = child_ptr[1];
    for (int64_t t = 0; t < frames; ++t) {
      if (live.empty() && !gate[t]) continue;
      const double* r = rel + t * classes;
      next.clear();
      for (const Token& k : live) {  // stay on the unit
        const bool emitting = k.state < size;
        const int64_t node = emitting ? k.state : k.state - size;
        next.push_back({k.state, emitting ? k.score + r[unit[node]]
                                          : -std::numeric_limits<double>::infinity(),
                        k.start});
      }
      for (const Token& k : live) {  // the blank after it
        const int64_t node = k.state < size ? k.state : k.state - size;
        next.push_back({node + size, k.score + r[blank], k.start});
      }
      for (const Token& k : live) {  // on to a child
        const bool emitting = k.state < size;
        const int64_t node = emitting ? k.state : k.state - size;
        for (int64_t i = child_ptr[node]; i < child_ptr[node + 1]; ++i) {
          const int64_t kid = child_ids[i];
          if (emitting && unit[kid] == unit[node]) continue;
          next.push_back({kid, k.score + r[unit[kid]], k.start});
        }
      }
      if (gate[t]) {
        for (int64_t i = root_lo; i < root_hi; ++i)
          next.push_back({child_ids[i], r[unit[child_ids[i]]], t});
      }
      // one token per state, the best (the earliest of equals), states in order
      unique.clear();
      for (size_t i = 0; i < next.size(); ++i) {
        const int64_t state = next[i].state;
        if (seen[state] != t) {
          seen[state] = t;
          holder[state] = i;
          unique.push_back(state);
        } else if (next[i].score > next[holder[state]].score) {
          holder[state] = i;
        }
      }
      std::sort(unique.begin(), unique.end());
      live.clear();
      adjusted.clear();
      for (int64_t state : unique) {
        const Token& token = next[holder[state]];
        const int64_t node = state < size ? state : state - size;
        const double adj = token.score + bonus * static_cast<double>(depth[node]);
        if (adj >= -max_cost) {
          live.push_back(token);
          adjusted.push_back(adj);
        }
      }
      if (static_cast<int64_t>(live.size()) > max_active) {
        std::vector<double> copy(adjusted);
        std::nth_element(copy.begin(), copy.begin() + (max_active - 1), copy.end(),
                         std::greater<double>());
        const double cut = copy[max_active - 1];
        size_t w = 0;
        for (size_t i = 0; i < live.size(); ++i)
          if (adjusted[i] >= cut) live[w++] = live[i];
        live.resize(w);
      }
      for (const Token& k : live) {
        if (k.state >= size || !terminal[k.state]) continue;
        const uint64_t key = pair_key(static_cast<int>(k.state), static_cast<int>(k.start));
        auto it = found.find(key);
        if (it == found.end()) {
          found.emplace(key, bests.size());
          bests.emplace_back(k.state, k.start, k.score, t + 1);
        } else if (k.score > std::get<2>(bests[it->second])) {
          std::get<2>(bests[it->second]) = k.score;
          std::get<3>(bests[it->second]) = t + 1;
        }
      }
    }
  }
  py::list out;
  for (const auto& [node, start, score, end] : bests) out.append(py::make_tuple(node, start, score, end));
  return out;
}

// ---------------------------------------------------------------- CTC Viterbi
// ctc_score.ctc_viterbi over the extended sequence: (best score, per unit (first, last+1)
// frames); the same choices (the first best of stay, s-1, s-2) as the reference.
py::tuple viterbi(Doubles emit_array, Bytes skip_array) {
  if (emit_array.ndim() != 2) throw std::invalid_argument("emit must be (frames, states)");
  const int64_t frames = emit_array.shape(0), states = emit_array.shape(1);
  if (skip_array.size() != states || states < 1 || frames < 1)
    throw std::invalid_argument("emit and skip do not match");
  const double* emit = emit_array.data();
  const uint8_t* skip = skip_array.data();
  const double inf = std::numeric_limits<double>::infinity();
  const int64_t n = (states - 1) / 2;
  std::vector<int8_t> back(static_cast<size_t>(frames * states), 0);
  std::vector<double> score(states, -inf), fresh(states);
  double best;
  py::array_t<int64_t> spans({n, static_cast<int64_t>(2)});
  {
    py::gil_scoped_release release;
    score[0] = emit[0];
    if (states > 1) score[1] = emit[1];
    for (int64_t t = 1; t < frames; ++t) {
      const double* e = emit + t * states;
      int8_t* b = back.data() + t * states;
      for (int64_t s = 0; s < states; ++s) {
        double top = score[s];
        int8_t choice = 0;
        const double one = s >= 1 ? score[s - 1] : -inf;
        if (one > top) {
          top = one;
          choice = 1;
        }
        const double two = (s >= 2 && skip[s]) ? score[s - 2] : -inf;
        if (two > top) {
          top = two;
          choice = 2;
        }
        b[s] = choice;
        fresh[s] = top + e[s];
      }
      score.swap(fresh);
    }
    const int64_t last = (states == 1 || score[states - 1] >= score[states - 2]) ? states - 1
                                                                                : states - 2;
    best = score[last];
    if (best != -inf) {
      auto out = spans.mutable_unchecked<2>();
      for (int64_t i = 0; i < n; ++i) out(i, 0) = out(i, 1) = -1;
      int64_t state = last;
      for (int64_t t = frames - 1; t >= 0; --t) {
        if (state % 2 == 1) {
          const int64_t u = state / 2;
          if (out(u, 1) < 0) out(u, 1) = t + 1;
          out(u, 0) = t;
        }
        state -= back[t * states + state];
      }
    }
  }
  if (best == -inf) return py::make_tuple(best, py::none());
  return py::make_tuple(best, spans);
}

// ---------------------------------------------------------------- building the graph
// (node, symbol) -> child, open addressing: the tree's edges are looked up once per path
// symbol, and a chained map's cache misses cost more than the rest of the build
class EdgeMap {
 public:
  EdgeMap() : keys_(1024, kEmpty), values_(1024, 0) {}
  // the child along key, or inserts value and returns -1
  int32_t find_or_insert(uint64_t key, int32_t value) {
    if (2 * (size_ + 1) > keys_.size()) grow();
    size_t mask = keys_.size() - 1;
    for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
      if (keys_[i] == key) return values_[i];
      if (keys_[i] == kEmpty) {
        keys_[i] = key;
        values_[i] = value;
        ++size_;
        return -1;
      }
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t mix(uint64_t x) {  // splitmix64's finaliser
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  void grow() {
    std::vector<uint64_t> keys(keys_.size() * 2, kEmpty);
    std::vector<int32_t> values(keys.size(), 0);
    size_t mask = keys.size() - 1;
    for (size_t j = 0; j < keys_.size(); ++j) {
      if (keys_[j] == kEmpty) continue;
      size_t i = mix(keys_[j]) & mask;
      while (keys[i] != kEmpty) i = (i + 1) & mask;
      keys[i] = keys_[j];
      values[i] = values_[j];
    }
    keys_.swap(keys);
    values_.swap(values);
  }
  std::vector<uint64_t> keys_;
  std::vector<int32_t> values_;
  size_t size_ = 0;
};

// ContextGraph.build's prefix tree, node for node (the same numbering, weights and entity
// ends), from (entity index, symbols, weight) paths; and compile's spotter sequences: per
// path its units without the word boundaries, (entity, units) pairs once each in order.
py::tuple build_graph(py::list paths, int boundary, int virtual_boundary) {
  std::vector<int32_t> parent{0}, symbol{0}, depth{0}, entity{-1};
  std::vector<double> weight{0.0};
  EdgeMap child;  // (node, symbol) -> node
  std::vector<std::pair<int64_t, std::vector<int64_t>>> sequences;
  std::unordered_map<std::string, size_t> seen_sequences;
  std::vector<int64_t> units;
  const Py_ssize_t n_paths = PyList_GET_SIZE(paths.ptr());
  for (Py_ssize_t i = 0; i < n_paths; ++i) {
    PyObject* item = PyList_GET_ITEM(paths.ptr(), i);
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3)
      throw std::invalid_argument("a path is (entity index, symbols, weight)");
    const long index = PyLong_AsLong(PyTuple_GET_ITEM(item, 0));
    const double path_weight = PyFloat_AsDouble(PyTuple_GET_ITEM(item, 2));
    PyObject* symbols = PySequence_Fast(PyTuple_GET_ITEM(item, 1), "symbols must be a list");
    if (!symbols || PyErr_Occurred()) throw py::error_already_set();
    const Py_ssize_t length = PySequence_Fast_GET_SIZE(symbols);
    PyObject** items = PySequence_Fast_ITEMS(symbols);
    int32_t node = 0;
    units.clear();
    for (Py_ssize_t k = 0; k < length; ++k) {
      const long value = PyLong_AsLong(items[k]);
      if (value == -1 && PyErr_Occurred()) {
        Py_DECREF(symbols);
        throw py::error_already_set();
      }
      const int32_t sym = static_cast<int32_t>(value);
      // compile._trim (the first and last boundary) and the virtual boundaries inside
      const bool edge = (k == 0 || k == length - 1) && sym == boundary;
      if (!edge && sym != virtual_boundary) units.push_back(sym);
      int32_t next = child.find_or_insert(pair_key(node, sym),
                                          static_cast<int32_t>(parent.size()));
      if (next < 0) {
        next = static_cast<int32_t>(parent.size());
        parent.push_back(node);
        symbol.push_back(sym);
        depth.push_back(depth[node] + 1);
        weight.push_back(path_weight);
        entity.push_back(-1);
      } else if (path_weight > weight[next]) {
        weight[next] = path_weight;
      }
      node = next;
    }
    Py_DECREF(symbols);
    if (entity[node] < 0) entity[node] = static_cast<int32_t>(index);
    std::string key(reinterpret_cast<const char*>(&index), sizeof(index));
    key.append(reinterpret_cast<const char*>(units.data()), units.size() * sizeof(int64_t));
    if (seen_sequences.emplace(std::move(key), sequences.size()).second)
      sequences.emplace_back(index, units);
  }
  auto as_array = [](const auto& v) {
    using T = typename std::decay_t<decltype(v)>::value_type;
    py::array_t<T> out(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
  };
  // a hundred thousand new tuples would run the cyclic GC over every object many times
  const int collecting = PyGC_Disable();
  py::list spotted(sequences.size());
  for (size_t i = 0; i < sequences.size(); ++i) {
    const auto& [index, seq] = sequences[i];
    py::tuple t(seq.size());
    for (size_t k = 0; k < seq.size(); ++k) t[k] = py::int_(seq[k]);
    spotted[i] = py::make_tuple(index, t);
  }
  if (collecting) PyGC_Enable();
  return py::make_tuple(as_array(parent), as_array(symbol), as_array(depth), as_array(weight),
                        as_array(entity), spotted);
}

// ---------------------------------------------------------------- the spotter's trie
// spotting.UnitTrie's arrays, node for node, from (key, units) sequences: parent, unit and
// depth per node, children in creation order (child_ptr, child_ids), and each sequence's
// last node.
py::tuple build_trie(py::list sequences) {
  std::vector<int64_t> parent{0}, unit{-1}, depth{0};
  EdgeMap child;
  const Py_ssize_t n = PyList_GET_SIZE(sequences.ptr());
  py::array_t<int64_t> ends(n);
  int64_t* end = ends.mutable_data();
  for (Py_ssize_t i = 0; i < n; ++i) {
    PyObject* item = PyList_GET_ITEM(sequences.ptr(), i);
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2)
      throw std::invalid_argument("a sequence is (key, units)");
    PyObject* units = PySequence_Fast(PyTuple_GET_ITEM(item, 1), "units must be a sequence");
    if (!units) throw py::error_already_set();
    const Py_ssize_t length = PySequence_Fast_GET_SIZE(units);
    PyObject** items = PySequence_Fast_ITEMS(units);
    int64_t node = 0;
    for (Py_ssize_t k = 0; k < length; ++k) {
      const long value = PyLong_AsLong(items[k]);
      if ((value == -1 && PyErr_Occurred()) || value < 0 || value > INT32_MAX) {
        Py_DECREF(units);
        if (!PyErr_Occurred()) throw std::invalid_argument("units must be label indices");
        throw py::error_already_set();
      }
      int32_t next = child.find_or_insert(pair_key(static_cast<int>(node),
                                                   static_cast<int>(value)),
                                          static_cast<int32_t>(parent.size()));
      if (next < 0) {
        next = static_cast<int32_t>(parent.size());
        parent.push_back(node);
        unit.push_back(value);
        depth.push_back(depth[node] + 1);
      }
      node = next;
    }
    Py_DECREF(units);
    end[i] = node;
  }
  const size_t size = parent.size();
  py::array_t<int64_t> child_ptr(static_cast<py::ssize_t>(size + 1));
  py::array_t<int64_t> child_ids(static_cast<py::ssize_t>(size - 1));
  int64_t* ptr = child_ptr.mutable_data();
  int64_t* ids = child_ids.mutable_data();
  std::fill(ptr, ptr + size + 1, 0);
  for (size_t node = 1; node < size; ++node) ptr[parent[node] + 1]++;
  for (size_t i = 0; i < size; ++i) ptr[i + 1] += ptr[i];
  std::vector<int64_t> fill(ptr, ptr + size);
  for (size_t node = 1; node < size; ++node) ids[fill[parent[node]]++] = node;
  auto as_array = [](const std::vector<int64_t>& v) {
    py::array_t<int64_t> out(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
  };
  return py::make_tuple(as_array(parent), as_array(unit), as_array(depth), child_ptr,
                        child_ids, ends);
}

// ---------------------------------------------------------------- CTC forward and best score
// numpy's logaddexp (npy_logaddexp), operation for operation
inline double logaddexp(double x, double y) {
  if (x == y) return x + 0.693147180559945309417232121458176568;
  const double tmp = x - y;
  if (tmp > 0) return x + std::log1p(std::exp(-tmp));
  if (tmp <= 0) return y + std::log1p(std::exp(tmp));
  return tmp;  // NaN
}

inline double maximum(double a, double b) {  // np.maximum (NaN propagates)
  if (std::isnan(a)) return a;
  if (std::isnan(b)) return b;
  return a >= b ? a : b;
}

// ctc_score.ctc_log_likelihood's recursion over the extended sequence's emissions
double ctc_forward(Doubles emit_array, Bytes skip_array) {
  const int64_t frames = emit_array.shape(0), states = emit_array.shape(1);
  if (emit_array.ndim() != 2 || skip_array.size() != states || states < 1 || frames < 1)
    throw std::invalid_argument("emit and skip do not match");
  const double* emit = emit_array.data();
  const uint8_t* skip = skip_array.data();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> alpha(states, -inf), next(states);
  py::gil_scoped_release release;
  alpha[0] = emit[0];
  if (states > 1) alpha[1] = emit[1];
  for (int64_t t = 1; t < frames; ++t) {
    const double* e = emit + t * states;
    for (int64_t s = 0; s < states; ++s) {
      const double one = s >= 1 ? alpha[s - 1] : -inf;
      const double two = (s >= 2 && skip[s]) ? alpha[s - 2] : -inf;
      next[s] = logaddexp(logaddexp(alpha[s], one), two) + e[s];
    }
    alpha.swap(next);
  }
  return states > 1 ? logaddexp(alpha[states - 1], alpha[states - 2]) : alpha[0];
}

// ctc_score.ctc_best_score's max-plus recursion (with the optional deletion jumps) over
// `states` extended-sequence states; emit(t, s) is state s's log-probability at frame t
template <typename Emit>
double best_path(int64_t frames, int64_t states, Emit emit, const uint8_t* skip,
                 const uint8_t* jump, const uint8_t* from_unit, double deletion,
                 bool use_jump) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> score(states, -inf), next(states);
  score[0] = emit(0, 0);
  if (states > 1) score[1] = emit(0, 1);
  for (int64_t t = 1; t < frames; ++t) {
    for (int64_t s = 0; s < states; ++s) {
      double best = maximum(score[s], s >= 1 ? score[s - 1] : -inf);
      best = maximum(best, (s >= 2 && skip[s]) ? score[s - 2] : -inf);
      if (use_jump) {
        double jumped = -inf;
        if (s >= 4 && jump[s])
          jumped = maximum(from_unit[s] ? score[s - 4] : -inf, score[s - 3]) - deletion;
        best = maximum(best, jumped);
      }
      next[s] = best + emit(t, s);
    }
    score.swap(next);
  }
  if (states == 1) return score[0];
  // Python's max(last, before): the first unless the second is greater
  return score[states - 2] > score[states - 1] ? score[states - 2] : score[states - 1];
}

// ctc_score.ctc_best_score over the extended sequence's (frames, states) emissions
double ctc_best(Doubles emit_array, Bytes skip_array, Bytes jump_array, Bytes from_unit_array,
                double deletion, bool use_jump) {
  const int64_t frames = emit_array.shape(0), states = emit_array.shape(1);
  if (emit_array.ndim() != 2 || skip_array.size() != states || jump_array.size() != states ||
      from_unit_array.size() != states || states < 1 || frames < 1)
    throw std::invalid_argument("emit and masks do not match");
  const double* emit = emit_array.data();
  py::gil_scoped_release release;
  return best_path(frames, states, [&](int64_t t, int64_t s) { return emit[t * states + s]; },
                   skip_array.data(), jump_array.data(), from_unit_array.data(), deletion,
                   use_jump);
}

// ---------------------------------------------------------------- soft phone posteriors
// confusion.soft_posteriors: per frame and phone p, max over q of logprobs[q] - costs[p, q]
// (a max-plus product; the same subtractions and comparisons as numpy's)
py::array_t<double> soft_posteriors(Doubles logprobs_array, Doubles costs_array) {
  if (logprobs_array.ndim() != 2 || costs_array.ndim() != 2 ||
      costs_array.shape(0) != costs_array.shape(1) ||
      costs_array.shape(1) != logprobs_array.shape(1))
    throw std::invalid_argument("logprobs (frames, P) and costs (P, P) do not match");
  const int64_t frames = logprobs_array.shape(0), n = logprobs_array.shape(1);
  py::array_t<double> out({frames, n});
  const double* lp = logprobs_array.data();
  const double* costs = costs_array.data();
  double* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    for (int64_t t = 0; t < frames; ++t) {
      const double* row = lp + t * n;
      for (int64_t p = 0; p < n; ++p) {
        const double* c = costs + p * n;
        double best = row[0] - c[0];
        for (int64_t q = 1; q < n; ++q) best = maximum(best, row[q] - c[q]);
        o[t * n + p] = best;
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- best path over a span
// ctc_score.ctc_best_score(rel[start:end], units, blank, deletion) without building the
// extended sequence's arrays in numpy: the recursion reads rel's rows directly (the same
// values, so the same result; a span score is asked for thousands of times per utterance)
double span_best(Doubles rel_array, int64_t start, int64_t end, Longs units_array,
                 int64_t blank, double deletion, bool use_deletion) {
  if (rel_array.ndim() != 2) throw std::invalid_argument("rel must be (frames, classes)");
  const int64_t classes = rel_array.shape(1);
  const int64_t n = units_array.size();
  const int64_t* units = units_array.data();
  for (int64_t i = 0; i < n; ++i)
    if (units[i] < 0 || units[i] >= classes || units[i] == blank)
      throw std::invalid_argument("units must be non-blank classes");
  if (blank < 0 || blank >= classes) throw std::invalid_argument("blank out of range");
  start = std::max<int64_t>(0, std::min(start, rel_array.shape(0)));
  end = std::max(start, std::min(end, rel_array.shape(0)));
  const int64_t frames = end - start;
  const double inf = std::numeric_limits<double>::infinity();
  if (frames == 0) return n == 0 ? 0.0 : -inf;
  const int64_t states = 2 * n + 1;
  std::vector<int64_t> ext(states, blank);
  std::vector<uint8_t> skip(states, 0), jump(states, 0), from_unit(states, 0);
  for (int64_t i = 0; i < n; ++i) ext[2 * i + 1] = units[i];
  for (int64_t s = 3; s < states; s += 2) skip[s] = ext[s] != ext[s - 2];
  bool use_jump = false;
  if (use_deletion && n > 2) {
    for (int64_t s = 5; s < states - 1; s += 2) {
      jump[s] = 1;
      from_unit[s] = ext[s] != ext[s - 4];
      use_jump = true;
    }
  }
  const double* rel = rel_array.data() + start * classes;
  py::gil_scoped_release release;
  return best_path(frames, states,
                   [&](int64_t t, int64_t s) { return rel[t * classes + ext[s]]; },
                   skip.data(), jump.data(), from_unit.data(), deletion, use_jump);
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "ctc-biasing's compiled search core (see biasing/decoders/native.py)";
  py::class_<Graph>(m, "Graph")
      .def(py::init<Ints, Ints, Ints, Doubles, Ints, Doubles, Doubles, int>(),
           py::arg("parent"), py::arg("symbol"), py::arg("depth"), py::arg("weight"),
           py::arg("entity"), py::arg("entity_weight"), py::arg("letters"),
           py::arg("boundary"))
      .def("__len__", &Graph::size)
      .def("fail", &Graph::fail)
      .def("continues", &Graph::continues)
      .def_property_readonly("start", &Graph::start_node)
      .def("advance",
           [](const Graph& g, std::vector<double> bias, int node, double partial, int unit,
              double gap) {
             BiasParams b{bias.at(0), bias.at(1), bias.at(2), bias.at(3), bias.at(4)};
             double bonus = advance(g, b, node, partial, unit, gap);
             return py::make_tuple(bonus, node, partial);
           });
  m.def("spot_tokens", &spot_tokens);
  m.def("build_graph", &build_graph);
  m.def("build_trie", &build_trie);
  m.def("viterbi", &viterbi);
  m.def("ctc_forward", &ctc_forward);
  m.def("ctc_best", &ctc_best);
  m.def("soft_posteriors", &soft_posteriors);
  m.def("span_best", &span_best);
  py::class_<Vocabulary>(m, "Vocabulary")
      .def(py::init<const std::vector<std::string>&, bool, const std::vector<int>&,
                    const std::vector<int>&, const std::vector<std::string>&,
                    const std::vector<std::string>&>())
      .def("search", &Vocabulary::search, py::arg("logprobs"), py::arg("offsets"),
           py::arg("units"), py::arg("values"), py::arg("single"), py::arg("best_unit"),
           py::arg("best"), py::arg("force_offsets"), py::arg("forcible"),
           py::arg("beam_width"), py::arg("prune"), py::arg("prune_history"),
           py::arg("graph").none(true), py::arg("bias"), py::arg("lm").none(true),
           py::arg("start_state").none(true), py::arg("history"));
}
