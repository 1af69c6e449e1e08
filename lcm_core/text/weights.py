"""ComfyUI's prompt-weight syntax, parsed the way ComfyUI's CLIP tokenizer parses it.

- `(words)` multiplies the weight of `words` by 1.1; groups nest, so `((words))` is 1.21.
- `(words:1.3)` sets the weight to 1.3: an explicit weight replaces the weight the group
  would get, it does not multiply it (`((a):2)` gives `a` 2.2, `((a:2))` gives 2).
  The weight is what follows the group's *last* `:` and must parse as a Python float;
  otherwise the `:` and what follows stay text and the group counts as a bare `(…)`.
- `\\(` and `\\)` are literal parentheses. `[words]` is plain text (A1111's de-emphasis
  is not ComfyUI syntax). A `)` with no opening `(` and everything after a `(` that is
  never closed are plain text as well; `()` disappears.
- `embedding:name` (at the start or after whitespace) names a textual-inversion
  embedding; `split_embeddings` separates those names from the text around them.
"""

from __future__ import annotations

import re

_ESCAPES = (("\\)", "\0\1"), ("\\(", "\0\2"))
EMBEDDING_PREFIX = "embedding:"
_EMBEDDING_SPLIT = re.compile(r"(?<=\s)" + re.escape(EMBEDDING_PREFIX))
_EMBEDDING_NAME_END = re.compile(r"[<\[]")


def escape_important(text: str) -> str:
    """Hide escaped parentheses from the parser (ComfyUI's placeholder characters)."""
    for literal, placeholder in _ESCAPES:
        text = text.replace(literal, placeholder)
    return text


def unescape_important(text: str) -> str:
    """Turn the placeholders of `escape_important` back into plain parentheses."""
    for literal, placeholder in _ESCAPES:
        text = text.replace(placeholder, literal[1])
    return text


def split_top_level(text: str) -> list[str]:
    """Split `text` into runs of plain text and top-level `(...)` groups.

    A `)` that would take the depth below zero is kept as text and leaves the depth
    negative, so a later `(` only brings it back to zero (ComfyUI's counting).
    """
    parts: list[str] = []
    current = ""
    depth = 0
    for char in text:
        if char == "(":
            if depth == 0:
                if current:
                    parts.append(current)
                current = ""
            current += char
            depth += 1
        elif char == ")":
            depth -= 1
            current += char
            if depth == 0:
                parts.append(current)
                current = ""
        else:
            current += char
    if current:
        parts.append(current)
    return parts


def _group_weight(inner: str, weight: float) -> tuple[str, float]:
    """The text and weight of a group's interior: an explicit `:w` suffix, else ×1.1."""
    colon = inner.rfind(":")
    if colon > 0:
        try:
            return inner[:colon], float(inner[colon + 1:])
        except ValueError:
            pass
    return inner, weight * 1.1


def token_weights(text: str, weight: float = 1.0) -> list[tuple[str, float]]:
    """`(segment, weight)` pairs of already-escaped `text`, in order."""
    out: list[tuple[str, float]] = []
    for part in split_top_level(text):
        if len(part) >= 2 and part[0] == "(" and part[-1] == ")":
            inner, inner_weight = _group_weight(part[1:-1], weight)
            out.extend(token_weights(inner, inner_weight))
        else:
            out.append((part, weight))
    return out


def weighted_segments(text: str) -> list[tuple[str, float]]:
    """The prompt as `(text, weight)` segments, escapes resolved, in prompt order."""
    return [(unescape_important(seg), w) for seg, w in token_weights(escape_important(text), 1.0)]


def split_embeddings(segment: str) -> list[str]:
    """`segment` cut before each `embedding:` that starts it or follows whitespace;
    empty pieces dropped. Pieces that start with `embedding:` name an embedding."""
    first, *rest = _EMBEDDING_SPLIT.split(segment)
    return [p for p in [first] + [EMBEDDING_PREFIX + r for r in rest] if p]


def embedding_name(piece: str) -> tuple[str, str]:
    """`(name, leftover text)` of a piece that starts with `embedding:`.

    The name is the first whitespace-separated word, cut before any `<` or `[`; the
    rest of the piece is ordinary prompt text.
    """
    words = piece[len(EMBEDDING_PREFIX):].strip("\n").split()
    if not words:
        return "", ""
    name, leftover = words[0], " ".join(words[1:])
    cut = _EMBEDDING_NAME_END.search(name)
    if cut is not None:
        leftover = name[cut.start():] + (" " + leftover if leftover else "")
        name = name[:cut.start()]
    return name, leftover
