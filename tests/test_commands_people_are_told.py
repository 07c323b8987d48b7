"""Every `breakglass` command people are told to type exists, and the ones in emails work as written.

The guides' command lines are parsed in tests/test_cli_docs.py. Here: what the deployed system
itself tells people (emails, approval page, API errors) names real commands, and the commands in
the emails a responder and an approver receive during a request run as written, by that person,
on the quickstart deployed into the emulator.
"""

from __future__ import annotations

import re
import tokenize
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from breakglass.cli.main import app
from breakglass.local.world import World, open_world

PACKAGE = Path(__file__).resolve().parents[1] / "breakglass"
# What the deployment says to people: everything the Lambda archive ships, and the components'
# descriptions (alarm and dashboard text).
TELLERS = (PACKAGE / "lambdas", PACKAGE / "components")
TOLD = re.compile(r"\bbreakglass ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")
REQUEST_ID_IN_TEXT = re.compile(r"\b(r\d{12}[0-9a-f]{10})\b")
PEOPLE = {"rita": ("responder",), "ann": ("approver",), "bob": ("approver",), "sec": ("security",)}
REASON = "the chat model answers with other customers' data"


def command_path(words: list[str]) -> list[str]:
    """The command words of ``breakglass WORDS...`` that name commands; AssertionError if none."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    for word in words:
        if word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]
        path.append(word)
    assert path, f"`breakglass {' '.join(words)}` names no command"
    assert not hasattr(command, "commands"), f"`breakglass {' '.join(path)}` is a group, not a command"
    return path


def _message(token: tokenize.TokenInfo) -> bool:
    """A string literal that is a message (docstrings and notes in triple quotes are for readers)."""
    return token.type == tokenize.STRING and not token.string.lstrip("rbfu").startswith(('"""', "'''"))


def told_in_source() -> list[tuple[str, str]]:
    """(where, command words) for each `breakglass ...` in a string or template people may read."""
    found = []
    for root in TELLERS:
        for path in sorted(root.rglob("*")):
            if path.suffix == ".html":
                texts = [path.read_text()]
            elif path.suffix == ".py":
                with path.open("rb") as source:
                    texts = [t.string for t in tokenize.tokenize(source.readline) if _message(t)]
            else:
                continue
            for text in texts:
                found += [(str(path.relative_to(PACKAGE)), m) for m in TOLD.findall(text)]
    return found


SOURCE_TOLD = told_in_source()


def test_the_deployment_tells_people_to_run_commands() -> None:
    told = {words.split()[0] for _, words in SOURCE_TOLD}
    assert {"approve", "deny", "assume", "revoke", "enroll"} <= told


@pytest.mark.parametrize(("where", "words"), SOURCE_TOLD, ids=[f"{w}: {c}" for w, c in SOURCE_TOLD])
def test_each_command_the_deployment_mentions_exists(where: str, words: str) -> None:
    command_path(words.split())


# -- the emails, run as written ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with open_world(name="told", people=PEOPLE) as opened:
        # A responder's AWS profile names their MFA device, as the responder guide sets it up.
        config = opened.home / "config"
        serial = f"arn:aws:iam::{opened.emulator.account_id}:mfa/rita"
        config.write_text(
            config.read_text().replace("[profile rita]\n", f"[profile rita]\nmfa_serial = {serial}\n")
        )
        yield opened


def told_in_emails(world: World, person: str, request_id: str) -> list[list[str]]:
    """The `breakglass` command lines in ``person``'s emails about ``request_id``, as argv."""
    commands: list[list[str]] = []
    for body in world.emails_about(person, request_id, wait=20):
        for match in re.finditer(r"\bbreakglass ([a-z][a-z-]*) (r\d{12}[0-9a-f]{10})\b", body):
            argv = [match.group(1), match.group(2)]
            if argv not in commands:
                commands.append(argv)
    return commands


def run_as_told(world: World, person: str, argv: list[str]) -> None:
    """Run ``breakglass ARGV`` as ``person`` typing what it asks for (TOTP, MFA code) at its prompts."""
    answers = f"{world.code(person)}\n" if argv[0] in ("approve", "deny", "revoke") else "123456\n"
    run = world.cli(person, *argv, input=answers)
    assert run.exit_code == 0, f"`breakglass {' '.join(argv)}` as {person}: {run.stderr or run.stdout}"


def request(world: World, tier: str) -> str:
    run = world.request("rita", tier, REASON, "--no-wait")
    assert run.exit_code == 0, run.stderr
    return str(run.json()["request_id"])


def test_an_approver_runs_the_command_in_the_approval_email_and_the_responder_those_in_the_grant(
    world: World,
) -> None:
    rid = request(world, "operator")
    world.wait_for(rid, ["pending"])
    asked = told_in_emails(world, "ann", rid)
    assert ["approve", rid] in asked and ["deny", rid] in asked

    run_as_told(world, "ann", ["approve", rid])
    world.wait_for(rid, ["granted"])

    granted = told_in_emails(world, "rita", rid)
    assert granted == [["assume", rid], ["revoke", rid]]
    for argv in granted:
        run_as_told(world, "rita", argv)
    assert world.cli("sec", "status", rid, "--json").json()["status"] == "revoked"


def test_the_approvers_told_of_an_automatic_grant_can_revoke_it_as_the_notice_says(world: World) -> None:
    rid = request(world, "halt")
    world.wait_for(rid, ["granted"])
    notice = told_in_emails(world, "bob", rid)
    assert notice == [["revoke", rid]]
    run_as_told(world, "bob", notice[0])
    assert world.cli("sec", "status", rid, "--json").json()["status"] == "revoked"
    assert ("revoke", "bob") in {(e.event_type, e.actor) for e in world.audit_events(rid)}
