"""The README and the pages in docs/ stay true to the code.

- every `make <target>` they show is a target of the Makefile, and every target is in the table of
  docs/local-setup.md;
- every `[xcom_storage] <name>` / `AIRFLOW__XCOM_STORAGE__<NAME>` they name is a setting the code
  reads, and every setting the code reads is a row of the settings table in docs/configuration.md
  (and nothing else is);
- every field of a store or a rule is in docs/routing.md, every encryption mode in docs/encryption.md;
- every relative link and image of the README points at a file that exists, and every anchor at a
  heading of that file; a heading's anchor is the same on GitHub and on the site;
- the README stays a five-minute read: at most 2,000 words.

Links, anchors and images inside docs/ are checked by `mkdocs build --strict` (tests/test_lint.py).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

from localdev.config import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
SECTION = "xcom_storage"

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"\bmake ([a-z][a-z0-9_-]*)")
NAMED_SETTING = re.compile(r"\[xcom_storage\] ([a-z][a-z0-9_]*)")
ENV_SETTING = re.compile(r"AIRFLOW__XCOM_STORAGE__([A-Z][A-Z0-9_]*)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def code_of(text: str) -> str:
    """The text of a page's code: fenced blocks and inline code spans, where commands are shown."""
    blocks = FENCE.findall(text)
    spans = CODE_SPAN.findall(FENCE.sub("", text))
    return "\n".join([*blocks, *spans])


def without_code(text: str) -> str:
    """A page without its fenced blocks and code spans (where links are)."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


# --- make targets ---------------------------------------------------------------------------------


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return {name for name in re.findall(r"^([A-Za-z0-9_-]+):", text, re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_make_target_shown_exists(page: Path) -> None:
    targets = makefile_targets()
    shown = set(MAKE.findall(code_of(page.read_text())))
    missing = sorted(shown - targets)
    assert not missing, f"{rel(page)} shows `make {missing[0]}`, which the Makefile does not define: {missing}"


def test_every_make_target_is_in_the_table_of_local_setup() -> None:
    text = (DOCS / "local-setup.md").read_text()
    table = section(text, "Every make target")
    listed = set(re.findall(r"^\| `make ([a-z0-9_-]+)`", table, re.MULTILINE))
    missing = sorted(makefile_targets() - listed)
    assert not missing, f"docs/local-setup.md, 'Every make target', has no row for: {missing}"
    stale = sorted(listed - makefile_targets())
    assert not stale, f"docs/local-setup.md lists targets the Makefile does not define: {stale}"


# --- [xcom_storage] settings ----------------------------------------------------------------------


def section(text: str, heading: str) -> str:
    """The text under ``## heading`` (any level), up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.MULTILINE)
    assert match, f"no heading {heading!r}"
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _is_section(node: ast.expr) -> bool:
    return (isinstance(node, ast.Name) and node.id == "SECTION") or (
        isinstance(node, ast.Constant) and node.value == SECTION
    )


def _is_conf_get(node: ast.AST) -> bool:
    """``conf.get(SECTION, ...)``, ``conf.getint(SECTION, ...)`` and the like."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute) or len(node.args) < 2:
        return False
    owner = node.func.value
    named_conf = (isinstance(owner, ast.Name) and owner.id == "conf") or (
        isinstance(owner, ast.Attribute) and owner.attr == "conf"
    )
    return named_conf and node.func.attr.startswith("get") and _is_section(node.args[0])


def _strings(node: ast.expr) -> list[str] | None:
    """The strings of a tuple, list or set literal of string constants (None: not one)."""
    if isinstance(node, ast.Tuple | ast.List | ast.Set) and all(
        isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
    ):
        return [str(e.value) for e in node.elts if isinstance(e, ast.Constant)]
    return None


def _names_for(name: str, call: ast.Call, parents: dict[ast.AST, ast.AST]) -> list[str] | None:
    """The setting names a variable ``name`` takes at ``call``: the string arguments of every call to
    the function whose parameter it is, or the strings of the loop or comprehension that binds it."""
    node: ast.AST = call
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef) and name in [a.arg for a in node.args.args]:
            position = [a.arg for a in node.args.args].index(name)
            scope = parents.get(node, node)
            found = []
            for other in ast.walk(scope):
                if (
                    isinstance(other, ast.Call)
                    and isinstance(other.func, ast.Name)
                    and other.func.id == node.name
                    and len(other.args) > position
                ):
                    arg = other.args[position]
                    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                        return None
                    found.append(arg.value)
            return found or None
        loops: list[ast.comprehension | ast.For] = []
        if isinstance(node, ast.GeneratorExp | ast.ListComp | ast.SetComp | ast.DictComp):
            loops = list(node.generators)
        elif isinstance(node, ast.For):
            loops = [node]
        for loop in loops:
            if isinstance(loop.target, ast.Name) and loop.target.id == name:
                return _strings(loop.iter)
    return None


def settings_read() -> dict[str, str]:
    """Every ``[xcom_storage]`` setting the code in include/ reads, with where it is read."""
    read: dict[str, str] = {}
    unresolved = []
    for path in sorted((REPO / "include").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        parents = _parents(tree)
        for node in ast.walk(tree):
            if not _is_conf_get(node):
                continue
            assert isinstance(node, ast.Call)
            where = f"{rel(path)}:{node.lineno}"
            key = node.args[1]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                read.setdefault(key.value, where)
                continue
            names = _names_for(key.id, node, parents) if isinstance(key, ast.Name) else None
            if names is None:
                unresolved.append(where)
                continue
            for name in names:
                read.setdefault(name, where)
    assert not unresolved, f"a setting is read in a way this test cannot follow (name it with a literal): {unresolved}"
    assert "bucket" in read and "stores" in read, f"the scan of include/ found too little: {read}"
    return read


def documented_settings() -> set[str]:
    table = section((DOCS / "configuration.md").read_text(), "Settings")
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", table, re.MULTILINE))


def test_every_setting_the_code_reads_is_in_the_settings_table() -> None:
    read = settings_read()
    documented = documented_settings()
    missing = {name: where for name, where in read.items() if name not in documented}
    assert not missing, f"settings read by the code with no row in docs/configuration.md, Settings: {missing}"
    stale = sorted(documented - set(read))
    assert not stale, f"docs/configuration.md, Settings, has rows for settings no code reads: {stale}"


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_setting_named_exists(page: Path) -> None:
    text = page.read_text()
    named = set(NAMED_SETTING.findall(text)) | {name.lower() for name in ENV_SETTING.findall(text)}
    unknown = sorted(named - set(settings_read()))
    assert not unknown, f"{rel(page)} names [xcom_storage] settings the code does not read: {unknown}"


def _literal(path: Path, name: str) -> ast.expr:
    """The value of the module-level assignment ``name = ...`` (or ``name: T = ...``) in ``path``."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return value
    raise AssertionError(f"{rel(path)} has no module-level {name}")


def first_cells(text: str) -> set[str]:
    """The code-span names in the first cell of every table row."""
    cells = re.findall(r"^\|([^|\n]*)\|", text, re.MULTILINE)
    return {name for cell in cells for name in CODE_SPAN.findall(cell)}


@pytest.mark.parametrize(("constant", "heading"), [("_STORE_FIELDS", "Stores"), ("_RULE_FIELDS", "Rules")])
def test_every_store_and_rule_field_is_documented(constant: str, heading: str) -> None:
    fields = _strings(_literal(REPO / "include/xcom_backends/routing.py", constant))
    assert fields, f"routing.py's {constant} is not a literal set of strings"
    table = section((DOCS / "routing.md").read_text(), heading)
    missing = sorted(set(fields) - first_cells(table))
    assert not missing, f"docs/routing.md, {heading}, has no row for: {missing}"


def test_every_encryption_mode_is_documented() -> None:
    modes = _literal(REPO / "include/xcom_backends/encryption.py", "MODES")
    assert isinstance(modes, ast.Dict)
    text = (DOCS / "encryption.md").read_text()
    for key, fields in zip(modes.keys, modes.values, strict=True):
        assert isinstance(key, ast.Constant) and isinstance(key.value, str) and isinstance(fields, ast.Dict)
        mode = key.value
        assert f'"mode": "{mode}"' in text, f"docs/encryption.md does not show mode {mode!r}"
        for field in fields.keys:
            assert isinstance(field, ast.Constant) and isinstance(field.value, str)
            assert f'"{field.value}"' in text, f"docs/encryption.md does not show {mode!r}'s field {field.value!r}"


# --- links, anchors, images -----------------------------------------------------------------------


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, each space a hyphen."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def mkdocs_slug(heading: str) -> str:
    """The anchor the site gives it: Python-Markdown's ``toc`` slugify of the rendered text."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return str(slugify(text, "-"))


def headings(path: Path) -> Iterator[str]:
    for _, title in HEADING.findall(FENCE.sub("", path.read_text())):
        yield title


def anchors(path: Path) -> set[str]:
    return {github_slug(title) for title in headings(path)}


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_every_heading_has_the_same_anchor_on_github_and_on_the_site(page: Path) -> None:
    differ = [(t, github_slug(t), mkdocs_slug(t)) for t in headings(page) if github_slug(t) != mkdocs_slug(t)]
    assert not differ, f"{rel(page)}: reword these headings (words, spaces and hyphens only): {differ}"


def test_every_relative_link_and_image_of_the_readme_resolves() -> None:
    targets = LINK.findall(without_code(README.read_text()))
    assert targets, "no links found in README.md"
    broken = []
    for target in targets:
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (README.parent / path_part).resolve() if path_part else README
        if not path.is_file():
            broken.append(f"{target}: no file {path_part}")
        elif anchor and (path.suffix != ".md" or anchor not in anchors(path)):
            broken.append(f"{target}: no heading with anchor #{anchor} in {rel(path)}")
    assert not broken, f"README.md: {broken}"


def test_the_readme_links_every_page() -> None:
    linked = {t.partition("#")[0] for t in LINK.findall(README.read_text())}
    missing = sorted(rel(p) for p in DOCS.glob("*.md") if rel(p) not in linked)
    assert not missing, f"README.md's Documentation list does not link: {missing}"


def test_the_readme_is_a_five_minute_read() -> None:
    words = len(README.read_text().split())
    assert words <= 2000, f"README.md has {words} words (at most 2,000: the rest belongs in docs/)"
