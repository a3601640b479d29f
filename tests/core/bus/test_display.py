"""Rich display: SSML stripping, chunking and the media payload shapes of reference §d.5."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thalovant.core.bus.display import (
    ThalovantDisplayItem,
    chunk_text,
    display_items_for,
    spoken_text,
    strip_ssml,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
MEDIA_KEYS = st.sampled_from(
    [
        "utterance",
        "text",
        "utterances",
        "rich_media_data",
        "rich_media",
        "display",
        "table",
        "attachments",
        "attachment",
        "quick_replies",
        "buttons",
        "image",
        "images",
        "silent",
        "payload",
        "src",
        "url",
        "title",
    ]
)
MEDIA_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(MEDIA_KEYS | st.text(max_size=5), inner, max_size=5),
    max_leaves=25,
)


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("<speak>Hello</speak>", "Hello"),
        ('<speak>Hello<break time="1s"/>world</speak>', "Hello world"),
        ("<prosody rate='slow' pitch=\"+2st\">slowly</prosody> now", "slowly now"),
        ("<s>One.</s><s>Two.</s>", "One. Two."),
        ('<say-as interpret-as="digits">123</say-as>', "123"),
        ('<amazon:effect name="whispered">psst</amazon:effect>', "psst"),
        ('<?xml version="1.0"?><speak>x</speak>', "x"),
        ("a <!-- note --> b", "a b"),
        # ordinary text that the 0.4.7 regex destroyed
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
        ("a<b and c>d", "a<b and c>d"),
        ("x <= y >= z", "x <= y >= z"),
        ("<unknown>tag</unknown>", "<unknown>tag</unknown>"),
        ("<b>bold</b>", "<b>bold</b>"),
        ("wait<break time=2s/>done", "wait done"),
        ("<b x=1>kept</b>", "<b x=1>kept</b>"),
        ("if a<b or c>d then", "if a<b or c>d then"),
        ("<SPEAK>Caps</SPEAK>", "Caps"),
        ("<prosody rate='slow'>unclosed", "unclosed"),
        # entities are decoded after markup removal: an escaped tag survives as text
        ("&lt;speak&gt; is a tag", "<speak> is a tag"),
        ("AT&amp;T &quot;q&quot; &apos;a&apos; &#65;&#x42;", "AT&T \"q\" 'a' AB"),
        ("&bogus; &#0; &#xD800;", "&bogus; &#0; &#xD800;"),
        ("plain   spacing  kept", "plain   spacing  kept"),
        ("", ""),
    ],
)
def test_strip_ssml_table(raw: str, plain: str) -> None:
    assert strip_ssml(raw) == plain


def test_strip_ssml_non_string_is_empty() -> None:
    assert strip_ssml(None) == ""  # type: ignore[arg-type]
    assert strip_ssml(5) == ""  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_strip_ssml_is_total_and_keeps_text_without_markup(text: str) -> None:
    out = strip_ssml(text)
    assert isinstance(out, str)
    if "<" not in text and "&" not in text:
        assert out == text


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abc <>=/\"'&;#x", max_size=15), max_size=8))
def test_strip_ssml_never_grows_words_from_nothing(parts: list[str]) -> None:
    text = "".join(parts)
    out = strip_ssml(text)
    assert len(out) <= len(text)


@pytest.mark.parametrize(
    ("text", "size", "chunks"),
    [
        ("one two three", 7, ("one two", "three")),
        ("one two three", 100, ("one two three",)),
        ("one two three", None, ("one two three",)),
        ("  spaced   out  ", None, ("spaced out",)),
        ("abcdefgh", 3, ("abc", "def", "gh")),
        ("hi abcdefgh yo", 4, ("hi", "abcd", "efgh", "yo")),
        ("", 5, ()),
        ("   ", None, ()),
        ("a b c", 1, ("a", "b", "c")),
    ],
)
def test_chunk_text_table(text: str, size: int | None, chunks: tuple[str, ...]) -> None:
    assert chunk_text(text, size) == chunks


@pytest.mark.parametrize("size", [0, -3])
def test_chunk_text_rejects_bad_size(size: int) -> None:
    with pytest.raises(ValueError, match="max_text_chars"):
        chunk_text("x", size)
    with pytest.raises(ValueError, match="max_text_chars"):
        display_items_for("speak", {"utterance": "x"}, max_text_chars=size)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.integers(min_value=1, max_value=40))
def test_chunking_never_loses_or_reorders_text(text: str, size: int) -> None:
    chunks = chunk_text(text, size)
    assert all(0 < len(c) <= size for c in chunks)
    assert all(c == c.strip() for c in chunks)
    # the characters of the words come out in order, none lost or added
    assert "".join("".join(c.split()) for c in chunks) == "".join(text.split())
    if all(len(w) <= size for w in text.split()):
        words = [w for c in chunks for w in c.split()]
        assert words == text.split()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=8), max_size=30), st.integers(8, 30))
def test_chunks_are_greedy(words: list[str], size: int) -> None:
    chunks = chunk_text(" ".join(words), size)
    for first, second in itertools.pairwise(chunks):
        # the next chunk's first word would not have fitted
        assert len(first) + 1 + len(second.split()[0]) > size


def test_text_items_chunked_and_silent() -> None:
    items = display_items_for("speak", {"utterance": "<speak>one two three</speak>"}, max_text_chars=7)
    assert [(i.kind, i.text, i.silent) for i in items] == [("text", "one two", False), ("text", "three", False)]
    items = display_items_for("write", {"text": "hi"})
    assert items == (ThalovantDisplayItem("text", text="hi", silent=True),)
    items = display_items_for("speak", {"utterance": "hi", "silent": True})
    assert items[0].silent is True


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"utterance": "a"}, "a"),
        ({"utterance": "  ", "text": "b"}, "b"),
        ({"utterances": ["x", 3, "y"]}, "x y"),
        ({"utterances": "z"}, "z"),
        ({"utterance": 5}, ""),
        ({}, ""),
    ],
)
def test_spoken_text(data: dict[str, Any], expected: str) -> None:
    assert spoken_text(data) == expected


def test_table_from_json_string_in_rich_media_data() -> None:
    table = {"title": "Scores", "columns": ["a", "b"], "rows": [[1, 2]]}
    data = {"utterance": "Here", "rich_media_data": json.dumps({"table": json.dumps(table)})}
    items = display_items_for("speak", data)
    assert [i.kind for i in items] == ["text", "table"]
    assert items[1].data == table
    assert items[1].title == "Scores"


def test_attachments_images_and_files() -> None:
    data = {
        "rich_media": {
            "attachments": [
                {"type": "image", "payload": {"src": "https://x/img.png"}, "title": "Pic"},
                {"type": "file", "url": "https://x/doc.pdf", "name": "Doc"},
                "not a mapping",
            ]
        }
    }
    items = display_items_for("speak", data)
    assert [(i.kind, i.url, i.title) for i in items] == [
        ("image", "https://x/img.png", "Pic"),
        ("attachment", "https://x/doc.pdf", "Doc"),
    ]
    assert items[0].payload == {"src": "https://x/img.png"}
    assert items[1].data == {"type": "file", "url": "https://x/doc.pdf", "name": "Doc"}


def test_single_attachment_mapping() -> None:
    items = display_items_for("speak", {"attachment": {"type": "image", "src": "u"}})
    assert [(i.kind, i.url) for i in items] == [("image", "u")]


def test_choices_from_quick_replies_and_buttons() -> None:
    data = {
        "quick_replies": [
            "Yes",
            {"title": "No", "payload": "/no"},
            {"label": "Maybe", "value": "m"},
            {"text": "Later"},
            {"nothing": 1},
            "  ",
        ]
    }
    (item,) = display_items_for("speak", data)
    assert item.kind == "choices"
    assert [c["title"] for c in item.data] == ["Yes", "No", "Maybe", "Later"]
    assert [c["payload"] for c in item.data] == ["Yes", "/no", "m", "Later"]
    assert item.data[0] == {"title": "Yes", "payload": "Yes", "data": "Yes"}
    (item,) = display_items_for("speak", {"buttons": json.dumps(["A"])})
    assert [c["title"] for c in item.data] == ["A"]


def test_images_key() -> None:
    items = display_items_for("speak", {"images": ["u1", {"src": "u2", "title": "T"}, {"x": 1}, 7]})
    assert [(i.kind, i.url) for i in items] == [("image", "u1"), ("image", "u2")]


def test_item_order_is_text_table_attachments_choices_images() -> None:
    data = {
        "utterance": "t",
        "display": {
            "table": [[1]],
            "attachment": {"type": "file", "url": "f"},
            "buttons": ["b"],
            "image": "i",
        },
    }
    assert [i.kind for i in display_items_for("speak", data)] == ["text", "table", "attachment", "choices", "image"]


def test_media_source_precedence_and_fallback() -> None:
    # rich_media_data wins over rich_media; top-level keys used only without a source
    data = {"rich_media_data": {"image": "a"}, "rich_media": {"image": "b"}, "image": "c"}
    assert [i.url for i in display_items_for("speak", data)] == ["a"]
    data = {"rich_media_data": "{not json", "image": "c"}
    assert [i.url for i in display_items_for("speak", data)] == ["c"]


def test_include_text_false_keeps_media_only() -> None:
    items = display_items_for("complete_intent_failure", {"utterance": "user said", "image": "u"}, include_text=False)
    assert [i.kind for i in items] == ["image"]


def test_as_dict_has_every_field() -> None:
    item = ThalovantDisplayItem("image", url="u", title="t")
    assert item.as_dict() == {
        "kind": "image",
        "text": None,
        "data": None,
        "title": "t",
        "payload": None,
        "url": "u",
        "silent": False,
    }


@settings(max_examples=200, deadline=None)
@given(MEDIA_JSON | st.dictionaries(MEDIA_KEYS, MEDIA_JSON, max_size=6), st.none() | st.integers(1, 30))
def test_display_items_total_over_arbitrary_json(data: Any, size: int | None) -> None:
    items = display_items_for("speak", data, max_text_chars=size)
    assert all(isinstance(i, ThalovantDisplayItem) for i in items)
    assert all(i.kind in {"text", "choices", "image", "attachment", "table"} for i in items)
    for item in items:
        if item.kind == "text":
            assert item.text and (size is None or len(item.text) <= size)
        json.dumps(item.as_dict(), default=str)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(MEDIA_KEYS, st.text(max_size=40).map(json.dumps) | JSON, max_size=6))
def test_display_items_total_over_json_strings(data: dict[str, Any]) -> None:
    assert isinstance(display_items_for("speak", data), tuple)
