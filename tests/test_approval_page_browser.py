"""The approval page in a real browser, on the quickstart deployed into the emulator.

Chromium comes from Debian (``make browser``); this test fails, never skips, without it. The
request is made with the ``breakglass`` command; the approvers open the links from the emails
SES accepted, in headless Chromium, on the page the deployed approval API serves, type their code
and approve; the workflow then grants.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from breakglass.lambdas.audit.events import AuditEvent
from breakglass.local.world import World, open_world

REASON = "Fraud model <approves> everything & must be halted"
PEOPLE = {
    "rita": ("responder",),
    "ann": ("approver",),
    "bob": ("approver",),
    "cat": ("approver",),
    "sec": ("security",),
}


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with open_world(name="browser", people=PEOPLE) as opened:
        yield opened


def ask(world: World, tier: str, *extra: str) -> str:
    run = world.request("rita", tier, REASON, "--no-wait", *extra)
    assert run.exit_code == 0, run.stderr
    request_id = str(run.json()["request_id"])
    world.wait_for(request_id, ["pending"])
    return request_id


def link(world: World, user: str, request_id: str) -> str:
    links = world.approval_links(user, request_id, wait=20)
    assert links, f"no approval email for {user}"
    return links[0]


def approve_in_browser(page: Page, world: World, user: str, url: str, request_id: str) -> None:
    page.goto(url)
    assert page.locator("#requester").inner_text() == "rita"
    assert page.locator("#reason").inner_text() == REASON  # shown as text, not parsed as markup
    assert page.locator("#request-id").inner_text() == request_id
    page.fill("#totp", world.code(user))
    page.click("#approve")
    page.wait_for_selector("#message")


def test_approvers_open_the_emailed_link_type_their_code_approve_and_access_is_granted(
    browser: Browser, world: World
) -> None:
    request_id = ask(world, "admin", "--ticket", "INC-2025-0042")
    page = browser.new_page()
    try:
        approve_in_browser(page, world, "ann", link(world, "ann", request_id), request_id)
        assert page.locator("#title").inner_text() == "Approved: your decision was recorded"
        assert "1 of 2 approvals so far" in page.locator("#message").inner_text()
        approve_in_browser(page, world, "bob", link(world, "bob", request_id), request_id)
        assert "has all its approvals" in page.locator("#message").inner_text()
    finally:
        page.close()
    granted = world.wait_for(request_id, ["granted"])
    assert granted["approvals"] == ["ann", "bob"]
    events = [(e.event_type, e.actor, e.outcome) for e in world.audit_events(request_id)]
    assert ("approval", "ann", "succeeded") in events and ("approval", "bob", "succeeded") in events
    assert ("grant", "system", "succeeded") in events
    assert world.cli("rita", "revoke", request_id, "--totp", world.code("rita")).exit_code == 0


def test_opening_the_link_in_a_browser_decides_nothing(browser: Browser, world: World) -> None:
    request_id = ask(world, "operator")
    url = link(world, "cat", request_id)

    # The workflow's own "approvers notified" record may land after the email does: only what
    # people did counts here.
    def decisions() -> list[AuditEvent]:
        return [e for e in world.audit_events(request_id) if e.actor != "system"]

    before = decisions()
    page = browser.new_page()
    try:
        for _ in range(2):  # a mail scanner and then the person, say
            response = page.goto(url)
            assert response is not None and response.status == 200
            assert page.locator("#request-id").inner_text() == request_id
            assert response.headers["x-frame-options"] == "DENY"
    finally:
        page.close()
    status = world.cli("sec", "status", request_id, "--json").json()
    assert (status["status"], status["approvals"]) == ("pending", [])
    assert decisions() == before
    assert world.cli("cat", "deny", request_id, "--totp", world.code("cat")).exit_code == 0
