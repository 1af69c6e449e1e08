"""ComfyUI's prompt-weight syntax: expected values read off `comfy/sd1_clip.py`
(`token_weights`, `parse_parentheses`, `escape_important`) and its docstring examples."""

from __future__ import annotations

import pytest

from lcm_core.text.weights import embedding_name, split_embeddings, split_top_level, weighted_segments


def _approx(pairs):
    return [(t, pytest.approx(w, rel=1e-12)) for t, w in pairs]


WEIGHTS = [
    # plain text and the empty prompt
    ("a cat", [("a cat", 1.0)]),
    ("", []),
    # bare groups multiply by 1.1, nesting multiplies again
    ("(foo)", [("foo", 1.1)]),
    ("(foo)(bar)", [("foo", 1.1), ("bar", 1.1)]),
    ("((foo))", [("foo", 1.1 * 1.1)]),
    ("a (b) c", [("a ", 1.0), ("b", 1.1), (" c", 1.0)]),
    # an explicit weight replaces, it does not multiply
    ("(foo:2.0)", [("foo", 2.0)]),
    ("((foo):1.1)", [("foo", 1.1 * 1.1)]),
    ("((foo:1.1))", [("foo", 1.1)]),
    ("(foo:0.0)", [("foo", 0.0)]),
    ("((foo:1.0):0.0)", [("foo", 1.0)]),
    ("foo ((((lol (cat:666) attack:100)))) baz",
     [("foo ", 1.0), ("lol ", 100.0), ("cat", 666.0), (" attack", 100.0), (" baz", 1.0)]),
    ("foo ((((lol (cat:666) attack):100))) baz",
     [("foo ", 1.0), ("lol ", 110.0), ("cat", 666.0), (" attack", 110.0), (" baz", 1.0)]),
    # the weight is what follows the LAST colon, parsed by float()
    ("(a:b:1.5)", [("a:b", 1.5)]),
    ("(cat: 1.2 )", [("cat", 1.2)]),
    ("(cat:-1)", [("cat", -1.0)]),
    ("(cat:1e1)", [("cat", 10.0)]),
    ("(cat:1_5)", [("cat", 15.0)]),
    ("(a:b)", [("a:b", 1.1)]),          # not a number: stays text, bare-group weight
    ("(:1.5)", [(":1.5", 1.1)]),        # colon at position 0 is not a weight
    ("(cat:)", [("cat:", 1.1)]),
    ("((a:1.2) b)", [("a", 1.2), (" b", 1.1)]),  # last colon is inside the inner group
    # colons outside groups are text
    ("style: photo", [("style: photo", 1.0)]),
    # escapes
    ("\\(cat\\)", [("(cat)", 1.0)]),
    ("\\(cat\\) (dog:1.5)", [("(cat) ", 1.0), ("dog", 1.5)]),
    ("(a \\(b\\):1.3)", [("a (b)", 1.3)]),
    ("(cat:1.2\\))", [("cat:1.2)", 1.1)]),
    # brackets are not syntax in ComfyUI
    ("[cat]", [("[cat]", 1.0)]),
    ("[cat:dog:0.5]", [("[cat:dog:0.5]", 1.0)]),
    # unbalanced parentheses
    ("a (b c", [("a ", 1.0), ("(b c", 1.0)]),
    ("(a (b) c", [("(a (b) c", 1.0)]),
    ("a) (b)", [("a) (b)", 1.0)]),
    ("a) b", [("a) b", 1.0)]),
    ("()", []),
    ("a () b", [("a ", 1.0), (" b", 1.0)]),
]


@pytest.mark.parametrize("text,expected", WEIGHTS, ids=[repr(t) for t, _ in WEIGHTS])
def test_weighted_segments_match_comfyui(text, expected):
    assert weighted_segments(text) == _approx(expected)


def test_split_top_level_docstring_examples():
    assert split_top_level("(foo)(bar)") == ["(foo)", "(bar)"]
    assert split_top_level("(foo(bar)(test1))(test2(test3))") == ["(foo(bar)(test1))", "(test2(test3))"]
    assert split_top_level("x (y) z") == ["x ", "(y)", " z"]


EMBEDDING_SPLITS = [
    ("a photo", ["a photo"]),
    ("embedding:foo cat", ["embedding:foo cat"]),
    ("a embedding:foo, cat", ["a ", "embedding:foo, cat"]),
    ("a embedding:x b embedding:y", ["a ", "embedding:x b ", "embedding:y"]),
    ("notanembedding:foo", ["notanembedding:foo"]),   # must follow whitespace
]


@pytest.mark.parametrize("segment,pieces", EMBEDDING_SPLITS)
def test_split_embeddings(segment, pieces):
    assert split_embeddings(segment) == pieces


@pytest.mark.parametrize("piece,expected", [
    ("embedding:foo", ("foo", "")),
    ("embedding:foo cat dog", ("foo", "cat dog")),
    ("embedding:foo, cat", ("foo,", "cat")),
    ("embedding:foo[x] cat", ("foo", "[x] cat")),
    ("embedding:foo<lora:x:1>", ("foo", "<lora:x:1>")),
    ("embedding:", ("", "")),
])
def test_embedding_name(piece, expected):
    assert embedding_name(piece) == expected
