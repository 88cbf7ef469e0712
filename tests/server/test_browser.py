"""The review flow in Debian's Chromium (headless), driven by Playwright.

Two answers are released, the checkpoint (K = 2) holds the next two; a reviewer logs in, approves
one with the `a` key, overrides the other with `o` + a reason + Ctrl+Enter, clears the
checkpoint, and auto-approval resumes. Markup in a stored prompt must not run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import openai
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian chromium is not installed (.ci/run installs it)"
)


def ask(client: openai.OpenAI, prompt: str) -> str:
    completion = client.chat.completions.create(
        model="cai2-guarded", messages=[{"role": "user", "content": prompt}]
    )
    return str(completion.model_extra["cai2"]["action"])


def test_review_flow_in_chromium(serve: Any, oversight: Any, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    served = serve(oversight=oversight(checkpoint_every=2))
    client = openai.OpenAI(base_url=served.api, api_key=served.key, max_retries=0)
    hostile = "Summarise <img src=x onerror=\"alert('xss')\"> <script>alert(2)</script> please"
    actions = [ask(client, p) for p in ("Hello there", "Name a fruit", hostile, "Count to 3")]
    assert actions == ["answered", "answered", "held", "held"]
    queue = served.app.state.queue
    first, second = (e.id for e in queue.entries("serve"))
    shots = Path(os.environ.get("CAI2_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)

    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{served.url}/ui/")
            assert page.url.endswith("/ui/login")
            page.fill("#username", "rex")
            page.fill("#password", "reviewer-password-1")
            page.click("#login")
            page.wait_for_selector("#checkpoint")
            assert page.is_disabled("#clear-checkpoint")
            assert page.locator("#queue tbody tr").count() == 2
            page.screenshot(path=str(shots / "queue.png"), full_page=True)

            page.click(f"a[href='/ui/review/{first}']")
            page.wait_for_selector("#chain")
            assert "<script>" in page.inner_text("#conversation")  # shown as text, not run
            assert page.inner_text("#reasons") == "checkpoint"
            page.screenshot(path=str(shots / "review.png"), full_page=True)
            page.keyboard.press("a")  # approve; goes on to the next pending decision
            page.wait_for_url(f"**/ui/review/{second}")

            page.keyboard.press("o")
            page.keyboard.type("Held answer is fine to release, but it is a violation <b>x</b>")
            page.select_option("#violation", "yes")
            page.focus("#reason")
            page.keyboard.press("Control+Enter")
            page.wait_for_url("**/ui/")
            assert page.locator("#queue tbody tr").count() == 0
            page.click("#clear-checkpoint")
            page.wait_for_selector("#auto-status")
            assert "0 of 2" in page.inner_text("#auto-status")

            page.goto(f"{served.url}/ui/history")
            assert page.locator("#history tbody tr").count() == 2
            assert "<b>x</b>" in page.inner_text("#history")
            page.goto(f"{served.url}/ui/dashboard")
            page.wait_for_function(
                "document.getElementById('plot').complete && "
                "document.getElementById('plot').naturalWidth > 0"
            )
            page.screenshot(path=str(shots / "dashboard.png"), full_page=True)
            page.goto(f"{served.url}/ui/constitution")
            assert "only admins" in page.inner_text("#error")
        finally:
            browser.close()

    assert dialogs == []
    log = [(e.event, e.actor) for e in queue.audit_log("serve") if e.event != "decision"]
    assert log == [
        ("checkpoint", "hierarchy"),
        ("approved", "rex"),
        ("overridden", "rex"),
        ("checkpoint-cleared", "rex"),
    ]
    assert ask(client, "Hello again") == "answered"
