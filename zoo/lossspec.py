"""The loss-spec grammar used everywhere (CLI ``--loss``, config files, API). Pure Python.

    spec   := term ("+" term)*
    term   := [number "*"] name [ "(" [key "=" value ("," key "=" value)*] ")" ]
    name   := a registered loss, an alias, or plugin:name

Examples: ``bce+dice``, ``0.3*bce+0.7*dice``, ``focal(gamma=3)+dice``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from zoo.errors import LossSpecError

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)"
    r"|(?P<string>'[^']*'|\"[^\"]*\")|(?P<op>[-+*(),=]))"
)


@dataclass(frozen=True)
class Term:
    weight: float
    name: str
    kwargs: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        args = f"({','.join(f'{k}={v}' for k, v in self.kwargs.items())})" if self.kwargs else ""
        weight = "" if self.weight == 1.0 else f"{self.weight:g}*"
        return f"{weight}{self.name}{args}"


def _tokens(spec: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(spec):
        if spec[pos:].strip() == "":
            break
        m = _TOKEN.match(spec, pos)
        if not m or m.end() == pos:
            raise _error(spec, pos, "unexpected character")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return tokens


def _error(spec: str, pos: int, what: str) -> LossSpecError:
    rest = spec[pos:] or "the end"
    return LossSpecError(f"bad loss spec {spec!r}: {what} at column {pos + 1} ({rest!r})")


def parse_loss_spec(spec: str) -> list[Term]:
    if not spec or not spec.strip():
        raise LossSpecError("empty loss spec; name a loss such as 'mse' or '0.5*bce+0.5*dice'")
    tokens = _tokens(spec)
    terms: list[Term] = []
    i = 0

    def peek(offset: int = 0) -> tuple[str, str, int]:
        return tokens[i + offset] if i + offset < len(tokens) else ("end", "", len(spec))

    while True:
        weight = 1.0
        if peek()[0] == "number":
            weight = float(peek()[1])
            if peek(1)[1] != "*":
                raise _error(spec, peek(1)[2], "expected '*' after a weight")
            i += 2
        kind, text, pos = peek()
        if kind != "name":
            raise _error(spec, pos, "expected a loss name")
        i += 1
        kwargs: dict[str, str] = {}
        if peek()[1] == "(":
            i += 1
            while peek()[1] != ")":
                key, eq, (vkind, value, vpos) = peek(), peek(1), peek(2)
                if key[0] != "name" or eq[1] != "=":
                    raise _error(spec, key[2], "expected key=value")
                if vkind not in {"number", "name", "string"}:
                    raise _error(spec, vpos, f"expected a value for {key[1]!r}")
                if key[1] in kwargs:
                    raise _error(spec, key[2], f"{key[1]!r} given twice")
                kwargs[key[1]] = value
                i += 3
                if peek()[1] == ",":
                    i += 1
                elif peek()[1] != ")":
                    raise _error(spec, peek()[2], "expected ',' or ')'")
            i += 1
        terms.append(Term(weight, text, kwargs))
        kind, text, pos = peek()
        if kind == "end":
            return terms
        if text != "+":
            raise _error(spec, pos, "expected '+' between losses")
        i += 1


def format_loss_spec(terms: list[Term]) -> str:
    return "+".join(str(t) for t in terms)
