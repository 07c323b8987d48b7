"""Every code snippet in the README and docs/ runs, or is marked as the fragment it is.

Each fenced block is checked by its language:

- ``python``: a snippet that builds infrastructure (it imports ``pulumi`` or a component) is a
  complete Pulumi program and is synthesized under the mock runtime; any other is executed, in the
  setting its guide describes (an audit copy in ``./audit-copy``, an emulated AWS account);
- ``json``, ``toml``, ``ini``: parsed;
- ``sh``, ``console``, ``bash``: each ``breakglass ...`` line is parsed (and for docs/cli.md and
  docs/auditor.md run) by tests/test_cli_docs.py, not here.

A block that is partial on purpose says so on the line before its fence, with the reason:
``<!-- snippet: fragment: the reason -->``. A block that goes on from the previous ``python``
block of the same guide says ``<!-- snippet: continues -->`` and runs after it. Every marked
fragment must really be partial (it does not run alone), so a mark cannot outlive its reason.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import json
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from fixtures.audit.scenario import build_local_bucket
from moto import mock_aws

from breakglass.local.synth import synth

ROOT = Path(__file__).resolve().parent.parent
GUIDES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"<!--\s*snippet:\s*(fragment|continues)\s*:?\s*(.*?)\s*-->")
# A program that creates resources: synthesized, never executed against anything.
PROGRAM = re.compile(r"^(import pulumi|from breakglass(\.components)? import)", re.M)
PARSERS: dict[str, Callable[[str], object]] = {
    "json": json.loads,
    "toml": tomllib.loads,
    "ini": lambda text: configparser.ConfigParser().read_string(text),
}
CHECKED_ELSEWHERE = ("sh", "console", "bash", "text", "")


@dataclass(frozen=True)
class Snippet:
    guide: str
    line: int
    language: str
    code: str
    mark: str | None
    reason: str
    previous: Snippet | None  # the guide's python block before this one

    @property
    def id(self) -> str:
        return f"{self.guide}:{self.line}"

    @property
    def program(self) -> str:
        """The code that runs: with the blocks it continues in front."""
        if self.mark == "continues" and self.previous is not None:
            return f"{self.previous.program}\n{self.code}"
        return self.code

    @property
    def synthesized(self) -> bool:
        return bool(PROGRAM.search(self.program))


def snippets() -> list[Snippet]:
    found: list[Snippet] = []
    for path in GUIDES:
        text = path.read_text()
        previous: Snippet | None = None
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip().splitlines()
            mark = MARK.fullmatch(before[-1].strip()) if before else None
            snippet = Snippet(
                guide=str(path.relative_to(ROOT)),
                line=text[: match.start()].count("\n") + 1,
                language=match.group(1),
                code=match.group(2),
                mark=mark.group(1) if mark else None,
                reason=mark.group(2) if mark else "",
                previous=previous,
            )
            found.append(snippet)
            if snippet.language == "python":
                previous = snippet
    return found


ALL = snippets()
PYTHON = [s for s in ALL if s.language == "python" and s.mark != "fragment"]
FRAGMENTS = [s for s in ALL if s.mark == "fragment"]
PARSED = [s for s in ALL if s.language in PARSERS and s.mark != "fragment"]


@contextlib.contextmanager
def audit_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """docs/auditor.md: a verified copy of the audit bucket in ./audit-copy (the fixture incidents)."""
    build_local_bucket(tmp_path / "audit-copy")
    monkeypatch.chdir(tmp_path)
    yield


@contextlib.contextmanager
def halt_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """docs/halt-actions.md: an account holding the target's invoker role and the audit bucket."""
    monkeypatch.chdir(tmp_path)
    with mock_aws():
        trust = {"Version": "2012-10-17", "Statement": []}
        boto3.client("iam").create_role(RoleName="chat-api-role", AssumeRolePolicyDocument=json.dumps(trust))
        boto3.client("s3").create_bucket(Bucket="my-audit-bucket", ObjectLockEnabledForBucket=True)
        yield


@contextlib.contextmanager
def repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Paths in the guides (``examples/quickstart``) are relative to the repository."""
    monkeypatch.chdir(ROOT)
    yield


SETTINGS: dict[str, Callable[[Path, pytest.MonkeyPatch], contextlib.AbstractContextManager[None]]] = {
    "docs/auditor.md": audit_copy,
    "docs/halt-actions.md": halt_account,
}


def test_the_guides_have_snippets_of_each_kind() -> None:
    assert len([s for s in PYTHON if s.synthesized]) >= 10
    assert len([s for s in PYTHON if not s.synthesized]) >= 5
    assert len(PARSED) >= 3


@pytest.mark.parametrize("snippet", [s for s in PYTHON if s.synthesized], ids=lambda s: s.id)
def test_each_program_in_the_guides_synthesizes(snippet: Snippet) -> None:
    code = compile(snippet.program, snippet.id, "exec")
    result = synth(lambda: exec(code, {"__name__": "__main__"}))
    assert result.resources, f"{snippet.id} creates nothing"


@pytest.mark.parametrize("snippet", [s for s in PYTHON if not s.synthesized], ids=lambda s: s.id)
def test_each_other_python_snippet_in_the_guides_runs(
    snippet: Snippet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = compile(snippet.program, snippet.id, "exec")
    setting = SETTINGS.get(snippet.guide, repository)
    with setting(tmp_path, monkeypatch), contextlib.redirect_stdout(io.StringIO()) as printed:
        exec(code, {"__name__": "__main__"})
    assert "Traceback" not in printed.getvalue()


@pytest.mark.parametrize("snippet", PARSED, ids=lambda s: s.id)
def test_each_data_snippet_in_the_guides_parses(snippet: Snippet) -> None:
    PARSERS[snippet.language](snippet.code)


def test_every_block_is_a_language_this_test_or_the_cli_docs_test_checks() -> None:
    unchecked = [
        f"{s.id} ({s.language})"
        for s in ALL
        if s.language not in ("python", *PARSERS, *CHECKED_ELSEWHERE) and s.mark != "fragment"
    ]
    assert not unchecked, f"nothing checks {unchecked}: add a parser here, or mark each a fragment with why"


def test_a_fragment_says_why_and_really_is_one() -> None:
    for fragment in FRAGMENTS:
        assert len(fragment.reason) >= 10, f"{fragment.id}: say why it is a fragment"
        with pytest.raises((NameError, SyntaxError, AttributeError)):
            exec(compile(fragment.code, fragment.id, "exec"), {"__name__": "fragment"})
    # Counted, so that a new fragment is a decision: make a snippet whole where it can be.
    assert len(FRAGMENTS) == 3, [f.id for f in FRAGMENTS]


def test_a_continuation_follows_a_python_block() -> None:
    for snippet in ALL:
        if snippet.mark == "continues":
            assert snippet.previous is not None, f"{snippet.id} continues nothing"
