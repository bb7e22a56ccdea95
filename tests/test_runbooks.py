"""The runbooks stay true: indexed, one per alert, and every command in them exists.

- ``docs/runbooks/README.md`` links every page in ``docs/runbooks/`` and nothing that is not there;
- every alert of ``k8s/monitoring/prometheus-rules.yaml`` has a ``runbook`` annotation naming a page that exists,
  names the alert and is listed for it in the index;
- every command in the runbooks' fenced ``bash``/``sh`` blocks exists: ``make`` targets in the Makefile,
  ``python -m`` modules with their subcommands and flags in the module's own argparse parser, ``airflow``
  commands and flags in Airflow's CLI parser (under the private AIRFLOW_HOME of ``tests/conftest.py``), other
  executables on PATH or in ``OPERATOR_TOOLS``, and the repository paths they name (``k8s/...``,
  ``terraform/...``, ``config/...``);
- every relative link in the runbooks resolves, anchors included.

The command parser is deliberately small: a line it cannot classify fails the test, naming the page and line.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import io
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = REPO_ROOT / "docs" / "runbooks"
INDEX = RUNBOOKS / "README.md"
RULES = REPO_ROOT / "k8s" / "monitoring" / "prometheus-rules.yaml"

# Tools an operator has on their workstation that this machine may lack: the cloud CLIs, Helm, Docker and the
# standalone kustomize. Every other executable a runbook runs must be on PATH here.
OPERATOR_TOOLS = frozenset({"aws", "gcloud", "az", "helm", "docker", "kustomize"})
SHELL_BUILTINS = frozenset({"cd", "set", "source", ".", "export"})
PYTHONS = frozenset({"python", "python3"})  # also as .venv/bin/python: programs are classified by base name
REPO_PATH_PREFIXES = ("k8s/", "terraform/", "config/")
SEPARATORS = frozenset({"|", "||", "&&", ";", "&"})
REDIRECTIONS = frozenset({">", ">>", "<"})
PLACEHOLDER = re.compile(r"<[A-Za-z][^<>\n]*>")  # <release>, <a backup region>: what the operator fills in
PLACEHOLDER_TOKEN = "PLACEHOLDER"
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
FENCE = re.compile(r"^```(\S*)\s*$")
LINK = re.compile(r"\]\(([^)\s]+)\)")


class UnclassifiedCommand(ValueError):
    """A runbook line the checker cannot read; the message names what it met."""


@dataclass(frozen=True)
class CommandLine:
    """One shell command of a fenced block: its page, the line it starts on, and its text."""

    page: Path
    line: int
    text: str

    def where(self) -> str:
        return f"{self.page.relative_to(REPO_ROOT)}:{self.line}: {self.text.strip()}"


def runbook_pages() -> list[Path]:
    """Every Markdown page in docs/runbooks/, the index included."""
    return sorted(RUNBOOKS.glob("*.md"))


def index_links() -> set[Path]:
    """The pages the index links to (resolved)."""
    return {(RUNBOOKS / target.split("#")[0]).resolve() for target in LINK.findall(INDEX.read_text())}


def alert_rules() -> list[dict]:
    """The alerting rules of the PrometheusRule in ``k8s/monitoring/prometheus-rules.yaml``."""
    if not RULES.exists():
        pytest.fail(
            f"{RULES.relative_to(REPO_ROOT)} is missing: the alert set is read from it, so every alert's runbook "
            "cannot be checked until the monitoring rules exist"
        )
    documents = [document for document in yaml.safe_load_all(RULES.read_text()) if document]
    rules = [
        rule
        for document in documents
        if document.get("kind") == "PrometheusRule"
        for group in document["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert rules, f"{RULES.relative_to(REPO_ROOT)} holds no PrometheusRule with alerting rules"
    return rules


def strip_comment(line: str, quote: str | None) -> tuple[str, str | None]:
    """``line`` without its shell comment, and the quote still open at its end (``None`` if none).

    A ``#`` starts a comment only at the start of a word and outside quotes, as in the shell."""
    kept, escaped = [], False
    for position, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or line[position - 1].isspace()):
            break
        kept.append(char)
    return "".join(kept), quote


def fenced_commands(page: Path) -> list[CommandLine]:
    """The commands of the page's ``bash`` and ``sh`` blocks: continuation lines and quotes spanning lines
    joined, comments and blank lines dropped."""
    commands: list[CommandLine] = []
    language: str | None = None
    pending, start, quote = "", 0, None
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        fence = FENCE.match(line.strip())
        if fence:
            if language is None:
                language = fence.group(1)
                continue
            if pending.strip() or quote:
                raise AssertionError(f"{page.relative_to(REPO_ROOT)}:{start}: a command does not end in its block")
            language = None
            continue
        if language not in ("bash", "sh"):
            continue
        if not pending:
            start = number
        text, quote = strip_comment(line, quote)
        if quote:
            pending += text + "\n"
        elif text.rstrip().endswith("\\"):
            pending += text.rstrip()[:-1] + " "
        else:
            pending += text
            if pending.strip():
                commands.append(CommandLine(page, start, pending))
            pending = ""
    return commands


def simple_commands(command: CommandLine) -> list[list[str]]:
    """The words of each simple command of a line (split at ``|``, ``&&``, ``;`` ...), placeholders replaced by
    ``PLACEHOLDER``, leading ``VAR=value`` assignments and redirections dropped."""
    lexer = shlex.shlex(PLACEHOLDER.sub(PLACEHOLDER_TOKEN, command.text), posix=True, punctuation_chars=";&|<>()")
    lexer.whitespace_split = True
    lexer.commenters = ""
    segments: list[list[str]] = [[]]
    words = iter(list(lexer))
    for word in words:
        if word in SEPARATORS:
            segments.append([])
        elif word in REDIRECTIONS:
            next(words, None)
        elif word in ("(", ")") or "$(" in word or "`" in word:
            raise UnclassifiedCommand(f"subshells and command substitution are not checked: {word!r}")
        elif set(word) <= set(";&|<>"):
            raise UnclassifiedCommand(f"unknown shell operator {word!r}")
        elif segments[-1] or not ASSIGNMENT.match(word):
            segments[-1].append(word)
    return [segment for segment in segments if segment]


@functools.cache
def make_targets() -> frozenset[str]:
    """Every target the Makefile defines."""
    targets = set()
    for line in (REPO_ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-/ ]+):(?!=)", line)
        if match:
            targets.update(match.group(1).split())
    return frozenset(targets)


class ParserCaptured(Exception):
    """Raised by the patched ``parse_args`` to hand the CLI's parser back to the test."""

    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__(parser.prog)
        self.parser = parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """A parser's subcommands by name (none for a parser without them)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(parser: argparse.ArgumentParser) -> frozenset[str]:
    """Every option string a parser accepts (``--help`` included)."""
    return frozenset(option for action in parser._actions for option in action.option_strings)


@functools.cache
def module_parser(module: str) -> argparse.ArgumentParser:
    """The argparse parser of ``python -m module``, taken from its ``main(argv)`` at the moment it parses."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise UnclassifiedCommand(f"no module {module}")
    entry = importlib.import_module(f"{module}.__main__" if spec.submodule_search_locations else module)
    if not hasattr(entry, "main"):
        raise UnclassifiedCommand(f"{entry.__name__} has no main(argv) to read its parser from")
    original = argparse.ArgumentParser.parse_args

    def capture(self, *args, **kwargs):
        raise ParserCaptured(self)

    argparse.ArgumentParser.parse_args = capture
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            entry.main([])
    except ParserCaptured as captured:
        return captured.parser
    finally:
        argparse.ArgumentParser.parse_args = original
    raise UnclassifiedCommand(f"{entry.__name__}.main() returned without parsing its arguments")


@functools.cache
def airflow_parser() -> argparse.ArgumentParser:
    """Airflow's own CLI parser (AIRFLOW_HOME is the private one of tests/conftest.py)."""
    from airflow.cli.cli_parser import get_parser

    return get_parser()


def check_options(words: list[str], parser: argparse.ArgumentParser, command: str) -> None:
    """Every ``-x``/``--xyz`` word is an option of ``parser``."""
    known = options(parser)
    unknown = [word.split("=")[0] for word in words if word.startswith("-") and word.split("=")[0] not in known]
    if unknown:
        raise UnclassifiedCommand(f"{command} has no option {', '.join(unknown)}")


def check_cli(words: list[str], parser: argparse.ArgumentParser, command: str, depth: int) -> None:
    """Walk ``depth`` levels of subcommands, then check the options of the one reached."""
    for _ in range(depth):
        choices = subcommands(parser)
        if not choices:
            break
        if not words or words[0] not in choices:
            found = words[0] if words else "nothing"
            raise UnclassifiedCommand(f"{command}: {found!r} is not one of its commands {sorted(choices)}")
        command, parser, words = f"{command} {words[0]}", choices[words[0]], words[1:]
    if subcommands(parser):
        raise UnclassifiedCommand(f"{command} needs one of its commands {sorted(subcommands(parser))}")
    check_options(words, parser, command)


def check_python(words: list[str]) -> None:
    if len(words) < 3 or words[1] != "-m":
        raise UnclassifiedCommand("python is checked only as `python -m <module> ...`")
    check_cli(words[3:], module_parser(words[2]), f"python -m {words[2]}", depth=1)


def check_repo_paths(words: list[str]) -> None:
    """A word (or an option's value) naming a file under k8s/, terraform/ or config/ names one that exists."""
    for word in words:
        value = word.split("=", 1)[1] if word.startswith("-") and "=" in word else word
        if value.startswith(REPO_PATH_PREFIXES):
            pattern = value.replace(PLACEHOLDER_TOKEN, "*")
            if not list(REPO_ROOT.glob(pattern)):
                raise UnclassifiedCommand(f"no {value} in the repository")


def check_command(words: list[str]) -> None:
    """Check one simple command; raise ``UnclassifiedCommand`` naming what does not exist."""
    program, name = words[0], Path(words[0]).name
    check_repo_paths(words[1:])
    if program in SHELL_BUILTINS:
        return
    if "/" in program and not (REPO_ROOT / program).exists():
        raise UnclassifiedCommand(f"no {program} in the repository")
    if name == "make":
        missing = [word for word in words[1:] if not word.startswith("-") and not ASSIGNMENT.match(word)]
        missing = [target for target in missing if target not in make_targets()]
        if missing or len(words) == 1:
            raise UnclassifiedCommand(f"the Makefile has no target {', '.join(missing) or '(none named)'}")
    elif name in PYTHONS:
        check_python(words)
    elif name == "airflow":
        check_cli(words[1:], airflow_parser(), "airflow", depth=2)
    elif program in OPERATOR_TOOLS or shutil.which(program):
        if program == "kubectl" and "--" in words:
            check_command(words[words.index("--") + 1 :])  # kubectl exec ... -- <command in the pod>
    else:
        raise UnclassifiedCommand(f"{program} is not on PATH and not in OPERATOR_TOOLS")


ALL_COMMANDS = [command for page in runbook_pages() for command in fenced_commands(page)]


def test_index_lists_every_runbook_and_only_existing_ones():
    pages = {page.resolve() for page in runbook_pages() if page != INDEX}
    linked = {page for page in index_links() if page.parent == RUNBOOKS.resolve()}
    assert sorted(str(page.relative_to(REPO_ROOT)) for page in pages - linked) == [], "runbooks the index misses"
    assert sorted(str(page.relative_to(REPO_ROOT)) for page in linked - pages) == [], "index links to no page"


def test_every_alert_has_a_runbook_that_names_it():
    index_rows = [line for line in INDEX.read_text().splitlines() if line.startswith("|")]
    problems = []
    for rule in alert_rules():
        alert, runbook = rule["alert"], rule.get("annotations", {}).get("runbook", "")
        page = REPO_ROOT / runbook
        if not runbook.startswith("docs/runbooks/") or not page.is_file():
            problems.append(f"{alert}: runbook annotation {runbook!r} names no page in docs/runbooks/")
            continue
        if alert not in page.read_text():
            problems.append(f"{alert}: {runbook} does not name the alert")
        rows = [row for row in index_rows if f"`{alert}`" in row]
        if not any(f"({page.name})" in row or f"({page.name}#" in row for row in rows):
            problems.append(f"{alert}: the index has no row linking it to {page.name}")
    assert problems == []


def test_fenced_blocks_hold_commands():
    assert len(ALL_COMMANDS) > 50, "the runbooks' commands were not found: is the fence parser broken?"


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda command: f"{command.page.name}:{command.line}")
def test_runbook_command_exists(command: CommandLine):
    try:
        for words in simple_commands(command):
            check_command(words)
    except UnclassifiedCommand as problem:
        pytest.fail(f"{command.where()}\n  {problem}")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("make no-such-target", "no target no-such-target"),
        (".venv/bin/python -m include.failover status --no-such-flag", "has no option --no-such-flag"),
        ("python -m include.replication no-such-command", "'no-such-command' is not one of its commands"),
        ("python -m include.state", "'nothing' is not one of its commands"),
        ("python -m include.no_such_module status", "no module include.no_such_module"),
        ("python benchmarks/failover.py", "only as `python -m <module> ...`"),
        ("kubectl -n airflow exec deploy/airflow-scheduler -- airflow dags no-such", "'no-such' is not one of"),
        ("airflow jobs check --no-such-flag", "airflow jobs check has no option --no-such-flag"),
        ("kubectl kustomize k8s/overlays/no-such-region", "no k8s/overlays/no-such-region"),
        ("terraform -chdir=terraform/live/no-such-root plan", "no terraform/live/no-such-root"),
        ("no-such-tool --help", "not on PATH and not in OPERATOR_TOOLS"),
        ("echo $(date)", "command substitution"),
    ],
)
def test_the_checker_refuses_what_does_not_exist(text: str, problem: str):
    with pytest.raises(UnclassifiedCommand, match=re.escape(problem)):
        for words in simple_commands(CommandLine(INDEX, 1, text)):
            check_command(words)


def test_the_checker_reads_placeholders_continuations_and_multi_line_quotes(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\n"
        "kubectl kustomize k8s/overlays/<region>   # a comment\n"
        'curl -fsS -X POST "$AIRFLOW/api/v2/dags/x/dagRuns" \\\n'
        '  -d \'{"conf": {"a": 1,\n'
        '       "b": "# not a comment"}}\'\n'
        "```\n"
    )
    commands = fenced_commands(page)
    assert [command.line for command in commands] == [2, 3]
    assert simple_commands(commands[0]) == [["kubectl", "kustomize", f"k8s/overlays/{PLACEHOLDER_TOKEN}"]]
    assert simple_commands(commands[1])[0][-1] == '{"conf": {"a": 1,\n       "b": "# not a comment"}}'


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_relative_link_in_the_runbooks_resolves():
    broken = []
    for page in runbook_pages():
        for target in LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []
