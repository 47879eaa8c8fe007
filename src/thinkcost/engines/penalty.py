"""Which token ids the wait-penalty pushes down, per tokenizer: a trie over each word's token
sequences, so a word the tokenizer splits ("Hmm" = "H" + "mm") is penalised only where it is
being written, never its first sub-token in other words. Engines subtract the penalty from the
logits; which ids, and after which generated tokens, is decided here."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_SEPARATORS = ("", " ", "\n", "\n\n")


class _Node:
    """A node of the reversed prefix trie: the path from the root spells, last token first,
    what a row just emitted; `next` are the ids that continue a penalty form from there."""

    __slots__ = ("children", "next")

    def __init__(self) -> None:
        self.children: dict[int, _Node] = {}
        self.next: set[int] = set()


@dataclass(frozen=True)
class PenaltyRules:
    """Which token ids the wait-penalty pushes down.

    `single` ids are penalised whatever came before (applied to all rows at once): the words'
    one-token surface forms and every vocabulary token that is exactly a word once stripped.
    `forms` are the multi-token surface forms, phrases ("But wait") included: their k-th token
    (k >= 2) is penalised only right after their first k-1 tokens, and their first token never
    on its own, so "Hmm" = "H" + "mm" pushes down "mm" after "H" and leaves "How" alone."""

    words: tuple[str, ...]
    single: tuple[int, ...]
    forms: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        # The trie is keyed by the prefixes read backwards, so `targets` walks back from a
        # row's last token and stops at the first mismatch: its cost is the depth of the
        # trie, not the number of forms. Ids in `single` are left out: subtracted once.
        root, single = _Node(), set(self.single)
        for form in self.forms:
            for k in range(1, len(form)):
                if form[k] in single:
                    continue
                node = root
                for t in reversed(form[:k]):
                    node = node.children.setdefault(t, _Node())
                node.next.add(form[k])
        object.__setattr__(self, "_root", root)  # derived, so not a field (eq, repr, hash)

    @property
    def contextual(self) -> bool:
        """Whether any id depends on the row's last tokens; if not, `targets` is always empty
        and an engine can skip the per-row call."""
        return bool(self._root.children)

    @property
    def prefixed(self) -> tuple[tuple[tuple[int, ...], int], ...]:
        """Every (prefix, target) pair of `forms`, to inspect what `targets` can return."""
        return tuple(sorted({(f[:k], f[k]) for f in self.forms for k in range(1, len(f))}))

    def targets(self, generated: Sequence[int]) -> list[int]:
        """Ids to push down after `generated` on top of `single` (which they never repeat):
        the next tokens of every form whose earlier tokens end `generated`."""
        out: set[int] = set()
        node = self._root
        for t in reversed(generated):
            child = node.children.get(t)
            if child is None:
                break
            out |= child.next
            node = child
        return sorted(out)


_RULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> {words: rules}
_VOCAB_TEXT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> [text per id]


def penalty_rules(tok: Any, words: Sequence[str]) -> PenaltyRules:
    """The rule table of `words` for `tok`, built once per (tokenizer, words) and cached.

    Each word w is tokenized in each surface form {w, " w", "\\nw", "\\n\\nw"}; leading tokens
    that are pure whitespace are the separator, not the word, so they are dropped (penalising
    them would push down every newline). A form left with one token is penalised everywhere;
    a longer one token by token after its own beginning (see `PenaltyRules`), so a word that
    a tokenizer splits costs its first sub-token nothing in other words. Every vocabulary
    token whose text, stripped of whitespace, is exactly w is penalised everywhere too."""
    words = tuple(words)
    try:
        per_tok = _RULES.setdefault(tok, {})
    except TypeError:  # a tokenizer that cannot be weakly referenced: no cache
        per_tok = {}
    if words not in per_tok:
        per_tok[words] = _build_rules(tok, words)
    return per_tok[words]


def _build_rules(tok: Any, words: tuple[str, ...]) -> PenaltyRules:
    """`penalty_rules` without the cache."""
    single: set[int] = set()
    forms: set[tuple[int, ...]] = set()
    stripped = {w.strip() for w in words} - {""}
    for w in stripped:
        for sep in _SEPARATORS:
            ids = list(tok.encode(sep + w, add_special_tokens=False))
            while ids and not tok.decode(ids[:1], skip_special_tokens=False).strip():
                ids = ids[1:]  # leading separator tokens
            if len(ids) == 1:
                single.add(ids[0])
            elif ids:
                forms.add(tuple(ids))
    single.update(i for i, t in enumerate(_vocab_texts(tok)) if t.strip() in stripped)
    return PenaltyRules(words, tuple(sorted(single)), tuple(sorted(forms)))


def _vocab_texts(tok: Any) -> list[str]:
    """Each vocabulary id decoded alone (cached per tokenizer: one pass over the vocab)."""
    try:
        cached = _VOCAB_TEXT.get(tok)
    except TypeError:
        cached = None
    if cached is not None:
        return cached
    ids = [[i] for i in range(len(tok))]
    batch = getattr(tok, "batch_decode", None)
    texts = list(batch(ids)) if batch is not None else [tok.decode(i) for i in ids]
    with contextlib.suppress(TypeError):  # not weakly referenceable: no cache
        _VOCAB_TEXT[tok] = texts
    return texts
