"""Group unrecognised messages that say (almost) the same.

Step 1: identical after :func:`bot.insights.extract.normalise` (case,
punctuation, spaces). Step 2: groups whose texts look alike are merged around
the most frequent one (a "leader"): cosine similarity of character 3–5-grams
(TF-IDF, inside word boundaries, so "milieustraat open?" and "is de
milieustraat open" match, and typos do too) of at least :data:`THRESHOLD`.
Only the :data:`MAX_LEADERS` most frequent texts can lead; rarer texts join the
most similar leader or stay alone, so the cost stays bounded at 100,000
conversations.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

THRESHOLD = 0.5
MAX_LEADERS = 2000


@dataclass
class Message:
    text: str            # masked
    normalised: str
    at: float
    guess: Optional[str] = None
    kind: str = "niet_begrepen"


@dataclass
class Group:
    key: str                      # normalised text of the leader
    text: str                     # the most frequent masked text of the leader
    count: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    variants: Counter = field(default_factory=Counter)    # masked text -> count
    guesses: Counter = field(default_factory=Counter)
    keys: List[str] = field(default_factory=list)          # normalised texts in the group

    @property
    def guess(self) -> Optional[str]:
        return self.guesses.most_common(1)[0][0] if self.guesses else None

    def top_variants(self, n: int = 3) -> List[Tuple[str, int]]:
        return [(t, c) for t, c in self.variants.most_common(n + 1) if t != self.text][:n]


def _exact(messages: Iterable[Message]) -> Dict[str, Group]:
    groups: Dict[str, Group] = {}
    for m in messages:
        if not m.normalised:
            continue
        g = groups.get(m.normalised)
        if g is None:
            g = groups[m.normalised] = Group(key=m.normalised, text=m.text, first_at=m.at, last_at=m.at,
                                             keys=[m.normalised])
        g.count += 1
        g.first_at = min(g.first_at, m.at)
        g.last_at = max(g.last_at, m.at)
        g.variants[m.text] += 1
        if m.guess:
            g.guesses[m.guess] += 1
    for g in groups.values():
        g.text = g.variants.most_common(1)[0][0]
    return groups


def _merge(into: Group, other: Group) -> None:
    into.count += other.count
    into.first_at = min(into.first_at, other.first_at)
    into.last_at = max(into.last_at, other.last_at)
    into.variants.update(other.variants)
    into.guesses.update(other.guesses)
    into.keys.extend(other.keys)


def group_messages(messages: Sequence[Message], threshold: float = THRESHOLD,
                   max_leaders: int = MAX_LEADERS) -> List[Group]:
    """Groups, most frequent first (ties: most recent first)."""
    exact = sorted(_exact(messages).values(), key=lambda g: (-g.count, -g.last_at))
    if len(exact) < 2:
        return exact
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [g.key for g in exact]
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit_transform(texts)
    n_lead = min(len(exact), max_leaders)
    head = vectors[:n_lead]
    similar = (head @ head.T).tocsr()
    leader_of: List[int] = [-1] * len(exact)
    leaders: List[int] = []
    for i in range(n_lead):
        if leader_of[i] != -1:
            continue
        leader_of[i] = i
        leaders.append(i)
        row = similar.getrow(i)
        for j, score in zip(row.indices, row.data):
            if j > i and leader_of[j] == -1 and score >= threshold:
                leader_of[j] = i
    if len(exact) > n_lead:
        lead_matrix = vectors[leaders]
        scores = (vectors[n_lead:] @ lead_matrix.T).tocsr()
        for offset in range(scores.shape[0]):
            row = scores.getrow(offset)
            j = n_lead + offset
            if row.nnz and row.data.max() >= threshold:
                leader_of[j] = leaders[int(row.indices[row.data.argmax()])]
            else:
                leader_of[j] = j
    merged: Dict[int, Group] = {}
    for j, lead in enumerate(leader_of):
        if lead == j:
            merged[j] = exact[j]
    for j, lead in enumerate(leader_of):
        if lead != j:
            _merge(merged[lead], exact[j])
    return sorted(merged.values(), key=lambda g: (-g.count, -g.last_at))
