"""GVariant text values (``uint64 123``, ``'inactive-or-failed'``, ``true``) as D-Bus values.

``org.systemd.property.NAME`` annotations carry their value in this notation
(runc's docs/systemd-properties.md; GLib's "GVariant Text Format"), because a
unit property needs a D-Bus type and JSON has none to spare: ``123`` alone is
an int32, ``uint64 123`` a uint64. ``parse`` returns the ``(signature, value)``
pair jeepney sends; anything it cannot type raises ``ValueError`` with the
reason, and the caller names the annotation.

What is understood (the part of the format unit properties need):

* numbers: decimal, octal (leading ``0``) or hex (``0x``), optionally signed;
  untyped ones are int32, or double with a ``.`` or an exponent; typed with
  ``byte int16 uint16 int32 uint32 int64 uint64 double``, range-checked;
* ``true`` / ``false`` (also after ``boolean``);
* strings in single or double quotes with C escapes (``\\n``, ``\\u00e9``...),
  typed as ``string``, ``objectpath`` or ``signature``; ``b'...'`` byte strings
  (with their trailing NUL, as GVariant has it);
* arrays ``[a, b]`` whose elements share one type; an empty one needs its type
  (``@as []``); ``@SIG`` annotations of basic and array types;
* variants ``<...>``.

Dictionaries are refused with a clear reason (no unit property takes one).
Pure Python without ``re``: it loads only with the systemd driver.
"""

from __future__ import annotations

KEYWORDS = {"boolean": "b", "byte": "y", "int16": "n", "uint16": "q", "int32": "i", "uint32": "u",
            "int64": "x", "uint64": "t", "double": "d", "string": "s", "objectpath": "o", "signature": "g"}
RANGES = {"y": (0, 0xFF), "n": (-(1 << 15), (1 << 15) - 1), "q": (0, 0xFFFF), "i": (-(1 << 31), (1 << 31) - 1),
          "u": (0, 0xFFFFFFFF), "x": (-(1 << 63), (1 << 63) - 1), "t": (0, (1 << 64) - 1)}
NUMERIC = "ynqiuxtd"
BASIC = NUMERIC + "bsog"
PUNCT = "[]{}<>,:"
ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def parse(text: str) -> tuple[str, object]:
    """One GVariant text value -> (D-Bus signature, value as jeepney takes it)."""
    parser = _Parser(_tokens(text))
    node = parser.value()
    if parser.peek() is not None:
        raise ValueError(f"unexpected {parser.peek()[1]!r} after the value")
    sig = node.signature(None)
    return sig, node.convert(sig)


# ----- lexer -------------------------------------------------------------------------------------
def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) pairs; kinds: num, str, bytes, word, type, and the punctuation itself."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in PUNCT:
            out.append((ch, ch))
            i += 1
        elif ch in "'\"" or (ch == "b" and i + 1 < n and text[i + 1] in "'\""):
            start = i
            if ch == "b":
                i += 1
            quote = text[i]
            i += 1
            while i < n and text[i] != quote:
                i += 2 if text[i] == "\\" else 1
            if i >= n:
                raise ValueError(f"unterminated string {text[start:]!r}")
            i += 1
            out.append(("bytes" if ch == "b" else "str", text[start:i]))
        elif ch.isdigit() or ch in "+-.":
            start = i
            while i < n and not text[i].isspace() and text[i] not in PUNCT:
                i += 1
            out.append(("num", text[start:i]))
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in PUNCT:
                i += 1
            word = text[start:i]
            if word.startswith("@"):
                out.append(("type", _check_signature(word[1:])))
            elif word in ("true", "false"):
                out.append(("bool", word))
            elif word in KEYWORDS:
                out.append(("type", KEYWORDS[word]))
            else:
                raise ValueError(f"unrecognized type {word!r} (a string needs quotes: '{word}')")
    return out


def _check_signature(sig: str) -> str:
    """A single complete type made of basic types, arrays and variants."""
    rest = _one_type(sig)
    if rest:
        raise ValueError(f"invalid type annotation @{sig}")
    return sig


def _one_type(sig: str) -> str:
    if not sig:
        raise ValueError("invalid type annotation: empty")
    if sig[0] in BASIC or sig[0] == "v":
        return sig[1:]
    if sig[0] == "a":
        return _one_type(sig[1:])
    raise ValueError(f"type {sig!r} is not supported (basic types, arrays and variants are)")


# ----- parser ------------------------------------------------------------------------------------
class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]):
        self.tokens = tokens
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise ValueError("unexpected end of the value")
        self.i += 1
        return tok

    def value(self) -> _Node:
        kind, text = self.take()
        declared = None
        if kind == "type":
            declared = text
            kind, text = self.take()
            if kind == "type":
                raise ValueError("two type annotations in a row")
        if kind == "num":
            node: _Node = _Number(text)
        elif kind == "bool":
            node = _Scalar("b", text == "true")
        elif kind == "str":
            node = _String(_unquote(text[1:-1]))
        elif kind == "bytes":
            node = _Scalar("ay", _unquote(text[2:-1]).encode("utf-8", "surrogateescape") + b"\0")
        elif kind == "[":
            node = self.array()
        elif kind == "<":
            inner = self.value()
            if self.take()[0] != ">":
                raise ValueError("a variant <...> is not closed")
            node = _Variant(inner)
        elif kind == "{":
            raise ValueError("dictionaries are not supported in unit property values")
        else:
            raise ValueError(f"unexpected {text!r}")
        if declared is not None:
            node.signature(declared)  # checks that the value fits the annotation
            node.declared = declared
        return node

    def array(self) -> _Node:
        items: list[_Node] = []
        if self.peek() is not None and self.peek()[0] == "]":
            self.take()
            return _Array(items)
        while True:
            items.append(self.value())
            kind, text = self.take()
            if kind == "]":
                return _Array(items)
            if kind != ",":
                raise ValueError(f"unexpected {text!r} in an array")


class _Node:
    declared: str | None = None

    def signature(self, want: str | None) -> str:
        raise NotImplementedError

    def convert(self, sig: str) -> object:
        raise NotImplementedError


class _Scalar(_Node):
    def __init__(self, sig: str, value: object):
        self.sig, self.value = sig, value

    def signature(self, want: str | None) -> str:
        if want not in (None, self.sig):
            raise ValueError(f"{self.value!r} is not of type {want}")
        return self.sig

    def convert(self, sig: str) -> object:
        return self.value


class _String(_Node):
    def __init__(self, text: str):
        self.text = text

    def signature(self, want: str | None) -> str:
        want = want or self.declared or "s"
        if want not in "sog":
            raise ValueError(f"string {self.text!r} is not of type {want}")
        return want

    def convert(self, sig: str) -> object:
        return self.text


class _Number(_Node):
    def __init__(self, text: str):
        self.text = text
        self.floating = ("." in text or "e" in text.lower()) and not text.lower().lstrip("+-").startswith("0x")

    def signature(self, want: str | None) -> str:
        want = want or self.declared or ("d" if self.floating else "i")
        if want not in NUMERIC:
            raise ValueError(f"number {self.text} is not of type {want}")
        self.convert(want)  # range and syntax
        return want

    def convert(self, sig: str) -> object:
        if sig == "d":
            try:
                return float(self.text)
            except ValueError:
                raise ValueError(f"bad number {self.text!r}") from None
        if self.floating:
            raise ValueError(f"{self.text} is not an integer (type {sig})")
        value = _integer(self.text)
        lo, hi = RANGES[sig]
        if not lo <= value <= hi:
            raise ValueError(f"{self.text} is out of range for type {sig} ({lo}..{hi})")
        return value


class _Array(_Node):
    def __init__(self, items: list[_Node]):
        self.items = items

    def signature(self, want: str | None) -> str:
        want = want or self.declared
        if want is not None:
            if not want.startswith("a"):
                raise ValueError(f"an array is not of type {want}")
            for item in self.items:
                item.signature(want[1:])
            return want
        if not self.items:
            raise ValueError("an empty array needs its type, e.g. @as []")
        typed = [item for item in self.items if item.declared]
        first = (typed[0] if typed else self.items[0]).signature(None)
        for item in self.items:
            item.signature(first)
        return "a" + first

    def convert(self, sig: str) -> object:
        if sig == "ay":
            return bytes(item.convert("y") for item in self.items)  # type: ignore[misc]
        return [item.convert(sig[1:]) for item in self.items]


class _Variant(_Node):
    def __init__(self, inner: _Node):
        self.inner = inner

    def signature(self, want: str | None) -> str:
        if want not in (None, "v"):
            raise ValueError(f"a variant is not of type {want}")
        return "v"

    def convert(self, sig: str) -> object:
        inner = self.inner.signature(None)
        return (inner, self.inner.convert(inner))


def _integer(text: str) -> int:
    sign = 1
    body = text
    if body[:1] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    try:
        if body.lower().startswith("0x"):
            return sign * int(body[2:], 16)
        if len(body) > 1 and body.startswith("0"):
            return sign * int(body[1:], 8)
        return sign * int(body, 10)
    except ValueError:
        raise ValueError(f"bad number {text!r}") from None


def _unquote(body: str) -> str:
    """C-style escapes of a quoted GVariant string."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise ValueError("a string ends in a lone backslash")
        esc = body[i]
        if esc in "uU":
            width = 4 if esc == "u" else 8
            digits = body[i + 1:i + 1 + width]
            try:
                if len(digits) != width:
                    raise ValueError
                out.append(chr(int(digits, 16)))
            except ValueError:
                raise ValueError(f"bad \\{esc} escape in a string") from None
            i += 1 + width
            continue
        if esc != "\n":  # backslash-newline continues the line
            out.append(ESCAPES.get(esc, esc))
        i += 1
    return "".join(out)
