"""SOQL text -> a typed query tree, checked against the schema as Salesforce checks it.

The subset: SELECT fields or COUNT() FROM one object, WHERE with comparisons, LIKE, IN, NOT IN,
INCLUDES, EXCLUDES, AND/OR/NOT (AND and OR may not be mixed without parentheses, as in SOQL),
ORDER BY ... ASC|DESC NULLS FIRST|LAST, LIMIT and OFFSET. Errors carry Salesforce's codes and
its "ERROR at Row:1:Column:n" messages so a client sees what the real API would say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from smartseg.sandbox.salesforce.errors import SfError
from smartseg.sandbox.salesforce.ids import is_valid_id
from smartseg.sandbox.salesforce.schema import FieldDef, ObjectDef, Schema
from smartseg.sandbox.salesforce.values import NUMERIC_TYPES, TEXT_TYPES, parse_date, parse_datetime

__all__ = ["And", "Compare", "Condition", "Literal", "Not", "Or", "OrderItem", "Query", "parse"]

_GRAMMAR = r"""
start: "SELECT"i select_list "FROM"i NAME where? order? limit? offset?
select_list: select_item ("," select_item)*
?select_item: count_all | path
count_all: "COUNT"i "(" ")"
path: NAME ("." NAME)*
where: "WHERE"i condition
?condition: unary | and_chain | or_chain
and_chain: unary ("AND"i unary)+
or_chain: unary ("OR"i unary)+
?unary: "NOT"i unary -> not_expr
      | "(" condition ")"
      | comparison
?comparison: path OP value -> compare
      | path "LIKE"i value -> like
      | path "IN"i "(" values ")" -> in_
      | path "NOT"i "IN"i "(" values ")" -> not_in
      | path "INCLUDES"i "(" values ")" -> includes
      | path "EXCLUDES"i "(" values ")" -> excludes
values: value ("," value)*
value: STRING | NUMBER | TRUE | FALSE | NULL | DATETIME | DATE | DATE_FN
order: "ORDER"i "BY"i order_item ("," order_item)*
order_item: path DIRECTION? NULLS?
limit: "LIMIT"i INT
offset: "OFFSET"i INT
DIRECTION: /(ASC|DESC)\b/i
NULLS: /NULLS\s+(FIRST|LAST)\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
NULL.2: /null\b/i
OP: "!=" | "<>" | "<=" | ">=" | "=" | "<" | ">"
STRING: /'(\\.|[^'\\])*'/
DATETIME.4: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})/
DATE.3: /\d{4}-\d{2}-\d{2}/
DATE_FN.2: /(LAST_N_DAYS|NEXT_N_DAYS|N_DAYS_AGO):\d+/i
    | /(TODAY|YESTERDAY|TOMORROW|THIS_MONTH|LAST_MONTH|THIS_YEAR)\b/i
NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)/
INT: /\d+/
NAME: /[A-Za-z_][A-Za-z0-9_]*/
%import common.WS
%ignore WS
"""
_PARSER = Lark(_GRAMMAR, parser="lalr", propagate_positions=True)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
MAX_OFFSET = 2000


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant: kind is string, number, boolean, null, date, datetime or date_fn."""

    kind: str
    value: Any
    raw: str


@dataclass(frozen=True, slots=True)
class Compare:
    """field OP values; op is one of = != < <= > >= LIKE IN NOTIN INCLUDES EXCLUDES."""

    field: FieldDef
    op: str
    values: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Condition


Condition = Compare | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderItem:
    field: FieldDef
    descending: bool
    nulls_first: bool


@dataclass(frozen=True, slots=True)
class Query:
    obj: ObjectDef
    fields: tuple[FieldDef, ...]  # empty for COUNT()
    count: bool
    where: Condition | None
    order: tuple[OrderItem, ...]
    limit: int | None
    offset: int


def _positioned(text: str, line: int, column: int, message: str) -> str:
    """Salesforce's error text: the query, a caret under the column, then the message."""
    row = text.splitlines()[line - 1] if text.splitlines() else text
    return f"\n{row}\n{' ' * max(column - 1, 0)}^\nERROR at Row:{line}:Column:{column}\n{message}"


def _unescape(raw: str, query: str, token: Token, *, like: bool) -> str:
    body, out, i = raw[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if like and nxt in "%_":
                out.append("\\" + nxt)  # stays escaped for the LIKE matcher
            elif nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            else:
                message = (
                    f"Invalid string literal '{raw}'. Illegal character sequence "
                    f"'\\{nxt}' in string literal."
                )
                raise SfError(
                    "MALFORMED_QUERY",
                    _positioned(query, token.line or 1, token.column or 1, message),
                )
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


class _Builder(Transformer[Token, Any]):
    def __init__(self, text: str, schema: Schema) -> None:
        super().__init__()
        self.text = text
        self.schema = schema
        self.obj: ObjectDef | None = None

    def resolve(self, path: list[Token]) -> FieldDef:
        assert self.obj is not None
        head = path[0]
        if len(path) > 1:
            message = (
                f"Didn't understand relationship '{head}' in field path. If you are "
                "attempting to use a custom relationship, be sure to append the '__r' "
                "after the custom relationship name. Please reference your WSDL or the "
                "describe call for the appropriate names."
            )
            raise SfError(
                "INVALID_FIELD", _positioned(self.text, head.line or 1, head.column or 1, message)
            )
        found = self.obj.get(str(head))
        # A field hidden by field-level security is unknown to the user's queries.
        if found is None or not self.schema.readable(self.obj, found):
            message = (
                f"No such column '{head}' on entity '{self.obj.name}'. If you are "
                "attempting to use a custom field, be sure to append the '__c' after the "
                "custom field name. Please reference your WSDL or the describe call for "
                "the appropriate names."
            )
            raise SfError(
                "INVALID_FIELD", _positioned(self.text, head.line or 1, head.column or 1, message)
            )
        return found


def _literal(token: Token, query: str, *, like: bool = False) -> Literal:
    raw = str(token)
    kind = token.type
    if kind == "STRING":
        return Literal("string", _unescape(raw, query, token, like=like), raw)
    if kind == "NUMBER":
        return Literal("number", float(raw), raw)
    if kind in ("TRUE", "FALSE"):
        return Literal("boolean", kind == "TRUE", raw)
    if kind == "NULL":
        return Literal("null", None, raw)
    if kind == "DATETIME":
        value = parse_datetime(raw)
        if value is None:
            raise SfError(
                "MALFORMED_QUERY",
                f"line 1:{token.column} no viable alternative at character '{raw}'",
            )
        return Literal("datetime", value, raw)
    if kind == "DATE":
        day = parse_date(raw)
        if day is None:
            raise SfError(
                "MALFORMED_QUERY",
                f"line 1:{token.column} no viable alternative at character '{raw}'",
            )
        return Literal("date", day, raw)
    name, _, number = raw.upper().partition(":")
    return Literal("date_fn", (name, int(number) if number else 0), raw)


_EXPECTED = {
    "boolean": ("boolean", "should not be enclosed in quotes"),
    "date": ("date", "should not be enclosed in quotes"),
    "datetime": ("dateTime", "should not be enclosed in quotes"),
    "int": ("integer", "should not be enclosed in quotes"),
}


def _check_value(query: str, definition: FieldDef, op: str, literal: Literal) -> None:
    """Reject a constant of the wrong type for its field, with Salesforce's wording."""
    kind = definition.type
    if literal.kind == "null":
        return
    if kind in TEXT_TYPES or kind in ("multipicklist", "id", "reference"):
        ok = literal.kind == "string"
        expected = ("string", "should be enclosed in quotes")
    elif kind in NUMERIC_TYPES:
        ok = literal.kind == "number"
        expected = _EXPECTED.get(kind, ("double", "should not be enclosed in quotes"))
    elif kind in ("date", "datetime"):
        ok = literal.kind in (kind, "date_fn")
        expected = _EXPECTED[kind]
    else:
        ok = literal.kind == "boolean"
        expected = _EXPECTED["boolean"]
    if not ok:
        raise SfError(
            "INVALID_FIELD",
            f"\n{query}\n^\nERROR at Row:1:Column:1\nvalue of filter "
            f"criterion for field '{definition.name}' must be of type {expected[0]} "
            f"and {expected[1]}",
        )
    if kind in ("id", "reference") and op != "LIKE" and not is_valid_id(literal.value):
        raise SfError(
            "INVALID_QUERY_FILTER_OPERATOR",
            f"\n{query}\n^\nERROR at Row:1:Column:1\ninvalid ID field: {literal.value}",
        )


@v_args(inline=True)
class _QueryBuilder(_Builder):
    def path(self, *names: Token) -> list[Token]:
        return list(names)

    def count_all(self) -> str:
        return "COUNT()"

    def select_list(self, *items: Any) -> list[Any]:
        return list(items)

    def value(self, token: Token) -> Token:
        return token

    def values(self, *tokens: Token) -> list[Token]:
        return list(tokens)

    def _compare(self, path: list[Token], op: str, tokens: list[Token]) -> Compare:
        definition = self.resolve(path)
        literals = tuple(_literal(t, self.text, like=op == "LIKE") for t in tokens)
        if not definition.describe()["filterable"]:
            raise SfError(
                "INVALID_FIELD", f"field '{definition.name}' can not be filtered in a query call"
            )
        if op in ("INCLUDES", "EXCLUDES") and definition.type != "multipicklist":
            raise SfError(
                "INVALID_QUERY_FILTER_OPERATOR",
                "includes or excludes operator only valid on multipicklist field",
            )
        if op == "LIKE" and definition.type not in TEXT_TYPES | {"id", "reference"}:
            raise SfError("INVALID_FIELD", f"invalid operator on field '{definition.name}'")
        for literal in literals:
            _check_value(self.text, definition, op, literal)
        return Compare(definition, op, literals)

    def compare(self, path: list[Token], op: Token, value: Token) -> Compare:
        return self._compare(path, "!=" if str(op) == "<>" else str(op), [value])

    def like(self, path: list[Token], value: Token) -> Compare:
        return self._compare(path, "LIKE", [value])

    def in_(self, path: list[Token], values: list[Token]) -> Compare:
        return self._compare(path, "IN", values)

    def not_in(self, path: list[Token], values: list[Token]) -> Compare:
        return self._compare(path, "NOTIN", values)

    def includes(self, path: list[Token], values: list[Token]) -> Compare:
        return self._compare(path, "INCLUDES", values)

    def excludes(self, path: list[Token], values: list[Token]) -> Compare:
        return self._compare(path, "EXCLUDES", values)

    def and_chain(self, *parts: Condition) -> And:
        return And(parts)

    def or_chain(self, *parts: Condition) -> Or:
        return Or(parts)

    def not_expr(self, part: Condition) -> Not:
        return Not(part)

    def where(self, condition: Condition) -> tuple[str, Condition]:
        return ("where", condition)

    def order_item(self, path: list[Token], *options: Token) -> OrderItem:
        definition = self.resolve(path)
        if not definition.describe()["sortable"]:
            raise SfError(
                "INVALID_FIELD", f"field '{definition.name}' can not be sorted in a query call"
            )
        descending = any(o.type == "DIRECTION" and o.upper() == "DESC" for o in options)
        nulls = [o for o in options if o.type == "NULLS"]
        nulls_first = not descending if not nulls else nulls[0].upper().endswith("FIRST")
        return OrderItem(definition, descending, nulls_first)

    def order(self, *items: OrderItem) -> tuple[str, tuple[OrderItem, ...]]:
        return ("order", items)

    def limit(self, number: Token) -> tuple[str, int]:
        return ("limit", int(number))

    def offset(self, number: Token) -> tuple[str, int]:
        value = int(number)
        if value > MAX_OFFSET:
            raise SfError(
                "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
            )
        return ("offset", value)


def _find_object(text: str, schema: Schema) -> ObjectDef:
    found = re.search(r"\bFROM\s+([A-Za-z_][A-Za-z0-9_]*)", text, re.IGNORECASE)
    if found is None:
        raise SfError("MALFORMED_QUERY", "unexpected token: <EOF>")
    obj = schema.get(found.group(1))
    if obj is None:
        column = found.start(1) + 1
        message = (
            f"sObject type '{found.group(1)}' is not supported. If you are attempting to "
            "use a custom object, be sure to append the '__c' after the entity name. "
            "Please reference your WSDL or the describe call for the appropriate names."
        )
        raise SfError("INVALID_TYPE", _positioned(text, 1, column, message))
    return obj


def _syntax_error(text: str, exc: UnexpectedInput) -> SfError:
    line, column = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        return SfError(
            "MALFORMED_QUERY", _positioned(text, line, max(column, 1), "unexpected token: <EOF>")
        )
    if isinstance(exc, UnexpectedToken):
        return SfError(
            "MALFORMED_QUERY", _positioned(text, line, column, f"unexpected token: {exc.token}")
        )
    if isinstance(exc, UnexpectedCharacters):
        return SfError(
            "MALFORMED_QUERY", _positioned(text, line, column, f"unexpected token: {exc.char}")
        )
    return SfError("MALFORMED_QUERY", str(exc))


def parse(text: str, schema: Schema) -> Query:
    """Parse and check one SOQL query; raises SfError (400) with Salesforce's code and message."""
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    builder = _QueryBuilder(text, schema)
    builder.obj = _find_object(text, schema)
    select, _name, *clauses = tree.children
    try:
        items = builder.transform(cast(Tree[Token], select))
        parts = dict(builder.transform(cast(Tree[Token], clause)) for clause in clauses)
    except Exception as exc:  # lark wraps errors raised inside the transformer
        inner = getattr(exc, "orig_exc", exc)
        if isinstance(inner, SfError):
            raise inner from None
        raise
    count = "COUNT()" in items
    if count and len(items) > 1:
        raise SfError("MALFORMED_QUERY", _positioned(text, 1, 8, "unexpected token: ','"))
    fields: list[FieldDef] = []
    for path in [] if count else items:
        definition = builder.resolve(path)
        if definition in fields:
            raise SfError("MALFORMED_QUERY", f"duplicate field selected: {definition.name}")
        fields.append(definition)
    return Query(
        obj=builder.obj,
        fields=tuple(fields),
        count=count,
        where=parts.get("where"),
        order=parts.get("order", ()),
        limit=parts.get("limit"),
        offset=parts.get("offset", 0),
    )
