"""Searching text columns by any part of them ("王伟" in "王伟明", "0012345" in a phone number) on
PostgreSQL through an n-gram index, whatever the length of the search.

pg_trgm (the usual answer) cannot serve a pattern shorter than three characters: `%王伟%` gives
it no trigram, so it scans the table. Most Chinese names are two or three characters and people
search by the whole name or its given part, so most name searches would scan. Instead, a GIN
index holds every 2- and 3-character piece of the lower-cased text (`search_grams`); a search
asks for the text's pieces of the search's own length, up to three (`search_keys`), and keeps
the ILIKE for the exact answer. 200,000 customers: ~1 ms by name, ~3 ms by phone number, instead
of ~100 ms scanning (BENCHMARKS.md).

The index is used only where it helps:
- a search of one character scans: a single character is in too many names for an index;
- a grid uses it only when *every* column it searches has such an index, so that PostgreSQL can
  combine the indexes (a BitmapOr). Were one column without, the n-gram test would become a
  filter computed row by row, far slower than the plain scan (the deals grid, which also
  searches the unit's and the lead's columns through joins, went from ~200 ms to 3.7 s).

The functions are created by migration 0013 (and before `create_all` on PostgreSQL); an index is
declared after a model with `gram_index(name, Model.column)`; admin.base.ProtectedView uses the index for
any searchable column that has one. SQLite has neither and searches as before.
"""
from __future__ import annotations

import re

from sqlalchemy import DDL, Index, and_, event, func

from .identity import as_typed_ascii, is_phone, normalise_phone

FUNCTIONS = """
CREATE OR REPLACE FUNCTION search_grams(value text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT substr(lower(value), i, n)), '{}')
  FROM generate_series(2, 3) AS n, generate_series(1, length(value) - n + 1) AS i
$$;
CREATE OR REPLACE FUNCTION search_keys(value text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT substr(lower(value), i, least(length(value), 3))), '{}')
  FROM generate_series(1, greatest(length(value) - 2, 1)) AS i
$$;
"""

WILDCARDS = set("%_\\")


def gram_index(name: str, column) -> Index:
    """A GIN index of `column`'s n-grams (a mapped column, after its class), on PostgreSQL only."""
    return Index(name, func.search_grams(column), postgresql_using="gin").ddl_if(dialect="postgresql")


def gram_indexed(metadata) -> set[tuple[str, str]]:
    """(table, column) of every column with an n-gram index in `metadata`."""
    found = set()
    for table in metadata.tables.values():
        for index in table.indexes:
            expressions = list(index.expressions)
            if len(expressions) == 1 and getattr(expressions[0], "name", None) == "search_grams":
                (argument,) = expressions[0].clauses
                found.add((table.name, argument.key))
    return found


def narrowed(column, term: str, clause):
    """`clause` (the ILIKE of `term` on `column`) with the n-gram condition in front, so the
    index finds the candidates. A term with LIKE wildcards in it is left to the ILIKE alone."""
    bare = term[1:] if term[:1] in ("^", "=") else term
    if len(bare) < 2 or WILDCARDS & set(bare):
        return clause
    return and_(func.search_grams(column).op("@>", is_comparison=True)(func.search_keys(bare)), clause)


def install(metadata) -> None:
    """Create the functions before the tables when `create_all` is used on PostgreSQL."""
    event.listen(metadata, "before_create", DDL(FUNCTIONS).execute_if(dialect="postgresql"))


# --- what people type, read like the data (issue 19, item 5) -----------------------------------
# A phone number typed with separators inside, spaces included ("138 0013 8001", "0731-88886666",
# "(0731) 8888 6666", full-width digits): one search term, as the phone is stored.
_PHONE_RUN = re.compile(r"(?<![^\W\d_])\+?[\d(（][\d\s\-‐‑‒–—―−.()（）]{4,}\d(?![^\W\d_])")
_PHONE_CHARS = re.compile(r"^\+?[\d\s\-‐‑‒–—―−.()（）]+$")


def search_text(search: str) -> str:
    """The search box's text as the data is stored: full-width characters as ASCII (NFKC), and a
    whole phone number typed with spaces inside made one term (its normalised digits)."""
    search = as_typed_ascii(search)  # NFKC, and digits of any script as ASCII

    def joined(match):
        phone = normalise_phone(match.group(0))
        return phone if is_phone(phone) else match.group(0)
    return _PHONE_RUN.sub(joined, search)


def phone_term(term: str) -> str:
    """A search term for a phone column: a number with dashes, dots or brackets (138-0013-8001,
    0731-88886666, +86…) reads as the stored digits; any other term is left as it is."""
    return normalise_phone(term) if _PHONE_CHARS.match(term) and any(c.isdigit() for c in term) else term
