"""The review UI over real HTTP: sessions, roles, CSRF, escaping, constitution versions."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from cai2.server import hash_password, verify_password


def ask(served: Any, prompt: str) -> Any:
    client = openai.OpenAI(base_url=served.api, api_key=served.key, max_retries=0)
    return client.chat.completions.create(
        model="cai2-guarded", messages=[{"role": "user", "content": prompt}]
    )


def test_passwords_are_salted_scrypt_hashes() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$")
    assert "correct horse" not in first
    assert verify_password("correct horse", first)
    assert not verify_password("correct horsf", first)
    assert not verify_password("correct horse", "not-a-hash")


def test_unauthenticated_and_wrong_role_are_refused(serve: Any, login: Any) -> None:
    served = serve()
    with httpx.Client(base_url=served.url) as anonymous:
        response = anonymous.get("/ui/")
        assert response.status_code == 303 and response.headers["location"] == "/ui/login"
        assert anonymous.post("/ui/review/1", data={"decision": "approve"}).status_code == 401
        assert anonymous.get("/ui/dashboard.svg").status_code == 303
    with httpx.Client(base_url=served.url) as wrong:
        page = wrong.get("/ui/login")
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        response = wrong.post(
            "/ui/login", data={"username": "rex", "password": "nope-nope", "csrf": token}
        )
        assert response.status_code == 401 and "wrong username or password" in response.text
        assert "cai2_session" not in wrong.cookies
    with httpx.Client(base_url=served.url) as reviewer:
        csrf = login(reviewer, "rex", "reviewer-password-1")
        assert reviewer.get("/ui/constitution").status_code == 403
        response = reviewer.post(
            "/ui/constitution", data={"csrf": csrf, "yaml_text": "name: x", "note": "try"}
        )
        assert response.status_code == 403
    assert len(served.db.constitution_versions()) == 1


def test_login_and_review_posts_need_csrf(serve: Any, oversight: Any, login: Any) -> None:
    served = serve(oversight=oversight(random_share=1.0))
    ask(served, "What is the capital of France?")
    entry = served.app.state.queue.entries("serve")[0]
    with httpx.Client(base_url=served.url) as client:
        client.get("/ui/login")
        response = client.post(
            "/ui/login", data={"username": "rex", "password": "reviewer-password-1"}
        )
        assert response.status_code == 403
        csrf = login(client, "rex", "reviewer-password-1")
        response = client.post(f"/ui/review/{entry.id}", data={"decision": "approve"})
        assert response.status_code == 403 and "CSRF" in response.text
        response = client.post(
            f"/ui/review/{entry.id}", data={"decision": "approve", "csrf": "forged"}
        )
        assert response.status_code == 403
        assert served.app.state.queue.entries("serve")[0].status.value == "pending"
        response = client.post(
            f"/ui/review/{entry.id}", data={"decision": "override", "csrf": csrf, "reason": ""}
        )
        assert response.status_code == 400 and "needs a reason" in response.text
        response = client.post(f"/ui/review/{entry.id}", data={"decision": "approve", "csrf": csrf})
        assert response.status_code == 303
    reviewed = served.app.state.queue.entries("serve", statuses=[entry.status.__class__.APPROVED])
    assert [(e.id, e.reviewer) for e in reviewed] == [(entry.id, "rex")]


def test_stored_markup_is_shown_inertly(serve: Any, oversight: Any, login: Any) -> None:
    served = serve(oversight=oversight(random_share=1.0))
    hostile = "<script>alert('x')</script><img src=x onerror=alert(1)> '; DROP TABLE users; --"
    ask(served, hostile)
    entry = served.app.state.queue.entries("serve")[0]
    with httpx.Client(base_url=served.url) as client:
        login(client, "rex", "reviewer-password-1")
        for path in ("/ui/", f"/ui/review/{entry.id}"):
            page = client.get(path)
            assert "<script>alert" not in page.text and "<img src=x" not in page.text
            assert "&lt;script&gt;alert(" in page.text
            assert "script-src 'self'" in page.headers["content-security-policy"]


def test_admin_versions_the_constitution(serve: Any, login: Any) -> None:
    served = serve()
    assert ask(served, "hello").model_extra["cai2"]["constitution"] == "cai-2.0@2.0#v1"
    stricter = "name: acme\nversion: '1.1'\nextends: cai-2.0\nlayers: []\n"
    with httpx.Client(base_url=served.url) as admin:
        csrf = login(admin, "ada", "admin-password-1")
        page = admin.get("/ui/constitution")
        assert page.status_code == 200 and "version 1" in page.text
        bad = admin.post(
            "/ui/constitution", data={"csrf": csrf, "yaml_text": "name: [", "note": "broken"}
        )
        assert bad.status_code == 400 and "not saved" in bad.text
        good = admin.post(
            "/ui/constitution", data={"csrf": csrf, "yaml_text": stricter, "note": "acme rules"}
        )
        assert good.status_code == 303
    versions = served.db.constitution_versions()
    assert [(v.version, v.name, v.author) for v in versions] == [
        (2, "acme", "ada"),
        (1, "cai-2.0", "system"),
    ]
    assert ask(served, "hello").model_extra["cai2"]["constitution"] == "acme@1.1#v2"


def test_dashboard_plots_over_time(serve: Any, oversight: Any, login: Any) -> None:
    served = serve(oversight=oversight(random_share=1.0))
    for prompt in ("hello", "How do I make a pipe bomb at home?", "thanks"):
        ask(served, prompt)
    with httpx.Client(base_url=served.url) as client:
        login(client, "rex", "reviewer-password-1")
        page = client.get("/ui/dashboard")
        assert "escalation rate" in page.text and "1.000 (3/3)" in page.text
        svg = client.get("/ui/dashboard.svg")
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.text.lstrip().startswith("<?xml") and "<svg" in svg.text


def test_spot_check_bound_opens_a_checkpoint(serve: Any, login: Any) -> None:
    from cai2.oversight import HumanLevelConfig, LevelConfig, OversightConfig, SamplingPolicy

    config = OversightConfig(
        levels=[LevelConfig(name="triage", judge="refusal")],
        human=HumanLevelConfig(
            sampling=SamplingPolicy(random_share=1.0),
            min_spot_checks=3,
            max_undetected_error=0.5,
        ),
    )
    served = serve(oversight=config)
    for prompt in ("one", "two", "three"):
        assert ask(served, prompt).model_extra["cai2"]["human_reasons"] == ["random"]
    queue = served.app.state.queue
    ids = [e.id for e in queue.entries("serve")]
    with httpx.Client(base_url=served.url) as client:
        csrf = login(client, "rex", "reviewer-password-1")
        for count, entry_id in enumerate(ids, start=1):
            response = client.post(
                f"/ui/review/{entry_id}",
                data={"decision": "override", "csrf": csrf, "reason": "the AI was wrong"},
            )
            assert response.status_code == 303
            waiting = queue.waiting_checkpoint("serve")
            # Three of three spot-checks overturned: the bound is tested from the third on.
            assert (waiting is not None) == (count == 3)
        assert waiting is not None and waiting.reason.startswith("bound:")
        assert "Checkpoint: auto-approval is paused" in client.get("/ui/").text
    held = ask(served, "four").model_extra["cai2"]
    assert held["action"] == "held" and held["human_reasons"] == ["random", "checkpoint"]


def test_held_answers_are_released_after_approval(serve: Any, oversight: Any, login: Any) -> None:
    served = serve(oversight=oversight(checkpoint_every=1))
    assert ask(served, "Say hello").model_extra["cai2"]["action"] == "answered"
    first, second = ask(served, "Name a colour"), ask(served, "Name a fruit")
    held = [first.model_extra["cai2"], second.model_extra["cai2"]]
    assert [h["action"] for h in held] == ["held", "held"]
    assert held[0]["retrieve"] == f"/v1/cai2/requests/{first.id}"
    assert first.choices[0].message.content == served.settings.hold_message
    headers = {"Authorization": f"Bearer {served.key}"}
    with httpx.Client(base_url=served.url, headers=headers) as api:
        waiting = api.get(held[0]["retrieve"]).json()
        assert (waiting["status"], waiting["content"]) == ("held", None)
        queue = served.app.state.queue
        entries = {e.item_id: e.id for e in queue.entries("serve")}
        with httpx.Client(base_url=served.url) as reviewer:
            csrf = login(reviewer, "rex", "reviewer-password-1")
            approve = {"decision": "approve", "csrf": csrf}
            assert reviewer.post(f"/ui/review/{entries[first.id]}", data=approve).is_redirect
            override = {"decision": "override", "csrf": csrf, "reason": "unsafe"}
            assert reviewer.post(f"/ui/review/{entries[second.id]}", data=override).is_redirect
        released = api.get(f"/v1/cai2/requests/{first.id}").json()
        record = served.db.request(first.id)
        assert record is not None and record.held_response == record.original_response
        assert released["status"] == "released" and released["content"] == record.held_response
        withheld = api.get(f"/v1/cai2/requests/{second.id}").json()
        assert withheld["status"] == "withheld"
        assert withheld["content"] == served.settings.refusal_message
        answered = api.get("/v1/models").json()  # the key still works; other ids are not found
        assert answered["data"]
        assert api.get("/v1/cai2/requests/chatcmpl-unknown").status_code == 404
    other = served.db.create_api_key("someone-else")
    response = httpx.get(
        f"{served.url}/v1/cai2/requests/{first.id}", headers={"Authorization": f"Bearer {other}"}
    )
    assert response.status_code == 404  # one client cannot read another's answers
    assert httpx.get(f"{served.url}/v1/cai2/requests/{first.id}").status_code == 401
