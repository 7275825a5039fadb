"""The code half of "the balance ledger is append-only" (the IAM half is terraform/iam.tf).

BigQuery IAM has no insert-only permission: an identity that may stream rows into a table and run
jobs may also run DML or a WRITE_TRUNCATE job on it (README, "Least privilege: the ledger"). So the
code that runs as those identities is held to appending: no function in the package may build a
DML statement (DELETE, UPDATE, MERGE, TRUNCATE) that names the ledger, and nothing anywhere asks
for WRITE_TRUNCATE. This reads the package's source (every function, its string constants and
the names it uses), so a new adapter that would rewrite ledger rows fails here first.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "warp_billing"
DML = re.compile(r"\b(DELETE\s+FROM|UPDATE\s+`?[\w.{}`]+`?\s+SET|MERGE\s|TRUNCATE\s+TABLE|INSERT\s+OVERWRITE)\b",
                 re.IGNORECASE)
LEDGER = re.compile(r"balance_ledger|BALANCE_LEDGER")


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _texts(node: ast.AST) -> list[str]:
    texts = []
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            texts.append(child.value)
        elif isinstance(child, ast.Name):
            texts.append(child.id)
        elif isinstance(child, ast.Attribute):
            texts.append(child.attr)
    return texts


def ledger_rewrites(source: str) -> list[str]:
    """Names of functions in ``source`` that build DML and mention the ledger."""
    found = []
    for function in _functions(ast.parse(source)):
        texts = _texts(function)
        if any(DML.search(text) for text in texts) and any(LEDGER.search(text) for text in texts):
            found.append(function.name)
    return found


def test_no_code_in_the_package_rewrites_ledger_rows():
    offenders = {str(path.relative_to(PACKAGE)): names for path in sorted(PACKAGE.rglob("*.py"))
                 if (names := ledger_rewrites(path.read_text(encoding="utf-8")))}
    assert offenders == {}


def test_nothing_asks_bigquery_to_overwrite_a_table():
    users = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
             if "WRITE_TRUNCATE" in path.read_text(encoding="utf-8")]
    assert users == []


def test_the_guard_sees_a_ledger_delete_and_leaves_other_tables_alone():
    bad = '''
def purge(self, customer):
    sql = f"DELETE FROM `{self.table_ref(BALANCE_LEDGER)}` WHERE customer_id = @c"
    return self._query(sql, [])
'''
    merge_elsewhere = '''
def hourly(self):
    sql = f"MERGE `{self.table_ref(USAGE_HOURLY)}` AS t USING (SELECT 1) AS s ON FALSE WHEN NOT MATCHED THEN INSERT ROW"
    return self._query(sql, [])
'''
    append = '''
def append(self, entries):
    self._insert(BALANCE_LEDGER, [row for row in entries], [row["entry_id"] for row in entries])
'''
    assert ledger_rewrites(bad) == ["purge"]
    assert ledger_rewrites(merge_elsewhere) == []
    assert ledger_rewrites(append) == []
