"""The pure planner: every row of SPEC section 3, rename hints, order, fingerprints."""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mvsync.model import DesiredApp, DesiredEnvironment, RemoteApp
from mvsync.planner import (
    Action,
    Change,
    FieldDrift,
    Plan,
    build_plan,
    manifest_fingerprint,
    remote_fingerprint,
)

ANSWER = "https://example.com/answer"
HOOK = "https://example.com/hooks"


def desired_env(*apps: DesiredApp, api_url: str = "https://api.minivoice.eu") -> DesiredEnvironment:
    return DesiredEnvironment(
        name="staging",
        api_url=api_url,
        api_key_env="MINIVOICE_API_KEY",
        secrets_path=Path("/tmp/staging.secrets.yaml"),
        apps=apps,
    )


def remote_app(
    app_id: str, name: str, answer_url: str = ANSWER, webhook_url: str | None = HOOK
) -> RemoteApp:
    return RemoteApp(
        id=app_id,
        customer_id="cust_1",
        name=name,
        answer_url=answer_url,
        webhook_url=webhook_url,
        created_at="2026-05-29T12:00:00Z",
    )


def only_change(desired: DesiredEnvironment, remote: list[RemoteApp]) -> Change:
    (change,) = build_plan(desired, remote).changes
    return change


def test_a_name_missing_remotely_is_a_create_carrying_what_apply_sends() -> None:
    want = DesiredApp("Support IVR", ANSWER, HOOK, "${MV_WEBHOOK_SECRET}")
    change = only_change(desired_env(want), [])
    assert (change.action, change.name, change.desired) == (Action.CREATE, "Support IVR", want)


def test_one_remote_app_with_equal_fields_is_unchanged() -> None:
    change = only_change(desired_env(DesiredApp("IVR", ANSWER, HOOK)), [remote_app("app_1", "IVR")])
    assert (change.action, change.id) == (Action.UNCHANGED, "app_1")


def test_a_different_answer_url_is_drift_with_field_remote_and_desired_values() -> None:
    desired = desired_env(DesiredApp("IVR", "https://new.example.com/answer", HOOK))
    change = only_change(desired, [remote_app("app_1", "IVR")])
    assert change.action is Action.DRIFT
    assert change.id == "app_1"
    assert change.drift == (FieldDrift("answer_url", ANSWER, "https://new.example.com/answer"),)


def test_a_webhook_url_set_remotely_but_not_in_the_manifest_is_drift() -> None:
    change = only_change(desired_env(DesiredApp("IVR", ANSWER)), [remote_app("app_1", "IVR")])
    assert change.drift == (FieldDrift("webhook_url", HOOK, None),)


def test_both_fields_drifting_are_reported_in_field_order() -> None:
    desired = desired_env(DesiredApp("IVR", "https://a.example.com/", "https://b.example.com/"))
    change = only_change(desired, [remote_app("app_1", "IVR")])
    assert [d.field for d in change.drift] == ["answer_url", "webhook_url"]


def test_an_empty_remote_webhook_url_equals_an_unset_one() -> None:
    change = only_change(
        desired_env(DesiredApp("IVR", ANSWER)), [remote_app("app_1", "IVR", webhook_url="")]
    )
    assert change.action is Action.UNCHANGED


def test_two_remote_apps_with_the_name_are_ambiguous_with_sorted_ids() -> None:
    remote = [remote_app("app_2", "IVR"), remote_app("app_1", "IVR")]
    change = only_change(desired_env(DesiredApp("IVR", ANSWER, HOOK)), remote)
    assert (change.action, change.ids) == (Action.AMBIGUOUS, ("app_1", "app_2"))


def test_a_remote_app_no_manifest_entry_names_is_unmanaged() -> None:
    change = only_change(desired_env(), [remote_app("app_9", "Old IVR")])
    assert (change.action, change.name, change.id) == (Action.UNMANAGED, "Old IVR", "app_9")


def test_names_differing_only_in_case_do_not_match() -> None:
    plan = build_plan(
        desired_env(DesiredApp("Support IVR", ANSWER)), [remote_app("a", "support ivr")]
    )
    assert [c.action for c in plan.changes] == [Action.CREATE, Action.UNMANAGED]


def test_names_differing_only_in_spacing_do_not_match() -> None:
    plan = build_plan(
        desired_env(DesiredApp("Support IVR", ANSWER)), [remote_app("a", "Support  IVR ")]
    )
    assert [c.action for c in plan.changes] == [Action.CREATE, Action.UNMANAGED]


def test_a_create_with_the_answer_url_of_an_unmanaged_app_is_flagged_as_a_rename() -> None:
    plan = build_plan(
        desired_env(DesiredApp("Support IVR v2", ANSWER)),
        [remote_app("app_7", "Support IVR"), remote_app("app_3", "Legacy", answer_url=ANSWER)],
    )
    assert plan.creates[0].rename_of == ("app_3", "app_7")


def test_a_create_with_a_new_answer_url_has_no_rename_hint() -> None:
    plan = build_plan(
        desired_env(DesiredApp("New", "https://other.example.com/")), [remote_app("app_7", "Old")]
    )
    assert plan.creates[0].rename_of == ()


def test_a_managed_app_sharing_the_answer_url_is_not_a_rename_hint() -> None:
    plan = build_plan(
        desired_env(DesiredApp("A", ANSWER, HOOK), DesiredApp("B", ANSWER, HOOK)),
        [remote_app("app_1", "A")],
    )
    assert plan.creates[0].rename_of == ()


def test_changes_are_ordered_by_action_then_name_whatever_the_input_order() -> None:
    apps = [
        DesiredApp("zeta", ANSWER, HOOK),
        DesiredApp("alpha", ANSWER, HOOK),
        DesiredApp("drifted", "https://x.example.com/", HOOK),
        DesiredApp("twice", ANSWER, HOOK),
        DesiredApp("same", ANSWER, HOOK),
    ]
    remote = [
        remote_app("app_5", "twice"),
        remote_app("app_1", "same"),
        remote_app("app_2", "drifted"),
        remote_app("app_4", "twice"),
        remote_app("app_3", "extra"),
    ]
    expected = [
        (Action.CREATE, "alpha"),
        (Action.CREATE, "zeta"),
        (Action.DRIFT, "drifted"),
        (Action.AMBIGUOUS, "twice"),
        (Action.UNCHANGED, "same"),
        (Action.UNMANAGED, "extra"),
    ]
    for seed in range(5):
        shuffled_apps, shuffled_remote = apps[:], remote[:]
        random.Random(seed).shuffle(shuffled_apps)
        random.Random(seed).shuffle(shuffled_remote)
        plan = build_plan(desired_env(*shuffled_apps), shuffled_remote)
        assert [(c.action, c.name) for c in plan.changes] == expected


def test_summary_counts_every_action() -> None:
    plan = build_plan(
        desired_env(DesiredApp("new", ANSWER), DesiredApp("same", ANSWER, HOOK)),
        [remote_app("app_1", "same"), remote_app("app_2", "other"), remote_app("app_3", "other")],
    )
    assert plan.summary == {"create": 1, "drift": 0, "unchanged": 1, "unmanaged": 2, "ambiguous": 0}


def test_only_unchanged_and_unmanaged_means_no_changes() -> None:
    plan = build_plan(
        desired_env(DesiredApp("same", ANSWER, HOOK)),
        [remote_app("a", "same"), remote_app("b", "x")],
    )
    assert not plan.has_changes
    assert not Plan((plan,)).has_changes


def test_an_ambiguous_name_counts_as_a_change() -> None:
    plan = build_plan(
        desired_env(DesiredApp("x", ANSWER, HOOK)), [remote_app("a", "x"), remote_app("b", "x")]
    )
    assert plan.has_changes


def test_change_json_never_holds_the_webhook_secret_reference() -> None:
    plan = build_plan(desired_env(DesiredApp("IVR", ANSWER, HOOK, "${MV_WEBHOOK_SECRET}")), [])
    data = plan.creates[0].to_json()
    assert "MV_WEBHOOK_SECRET" not in repr(data)
    assert data["desired"]["webhook_secret_set"] is True


def test_drift_json_lists_fields_with_remote_and_desired() -> None:
    plan = build_plan(desired_env(DesiredApp("IVR", ANSWER)), [remote_app("app_1", "IVR")])
    assert plan.changes[0].to_json() == {
        "action": "drift",
        "name": "IVR",
        "id": "app_1",
        "fields": {"webhook_url": {"remote": HOOK, "desired": None}},
    }


def test_manifest_fingerprint_ignores_the_webhook_secret_reference() -> None:
    with_secret = desired_env(DesiredApp("IVR", ANSWER, HOOK, "${SECRET_A}"))
    other_secret = desired_env(DesiredApp("IVR", ANSWER, HOOK, "${SECRET_B}"))
    no_secret = desired_env(DesiredApp("IVR", ANSWER, HOOK))
    assert manifest_fingerprint(with_secret) == manifest_fingerprint(other_secret)
    assert manifest_fingerprint(with_secret) == manifest_fingerprint(no_secret)


def test_manifest_fingerprint_ignores_application_order() -> None:
    a, b = DesiredApp("A", ANSWER), DesiredApp("B", ANSWER, HOOK)
    assert manifest_fingerprint(desired_env(a, b)) == manifest_fingerprint(desired_env(b, a))


def test_manifest_fingerprint_changes_with_a_compared_field() -> None:
    before = desired_env(DesiredApp("A", ANSWER))
    after = desired_env(DesiredApp("A", ANSWER + "/v2"))
    assert manifest_fingerprint(before) != manifest_fingerprint(after)


def test_manifest_fingerprint_changes_with_the_api_url() -> None:
    app = DesiredApp("A", ANSWER)
    assert manifest_fingerprint(desired_env(app)) != manifest_fingerprint(
        desired_env(app, api_url="http://127.0.0.1:9")
    )


def test_remote_fingerprint_ignores_list_order() -> None:
    one, two = remote_app("app_1", "A"), remote_app("app_2", "B")
    assert remote_fingerprint([one, two]) == remote_fingerprint([two, one])


def test_remote_fingerprint_changes_when_an_app_appears() -> None:
    one = remote_app("app_1", "A")
    assert remote_fingerprint([one]) != remote_fingerprint([one, remote_app("app_2", "A")])


def test_fingerprints_are_sha256_hex() -> None:
    plan = build_plan(desired_env(DesiredApp("A", ANSWER)), [remote_app("app_1", "B")])
    for fingerprint in (plan.manifest_fingerprint, plan.remote_fingerprint):
        assert len(fingerprint) == 64
        int(fingerprint, 16)


_names = st.sampled_from(["A", "a", "B", "B ", "C", "Support IVR", "ünï"])
_urls = st.sampled_from([ANSWER, "https://two.example.com/", "http://three.example.com/x"])
_hooks = st.one_of(st.none(), st.just(""), _urls)


@settings(max_examples=1000, deadline=None)
@given(
    desired_names=st.lists(_names, unique=True, max_size=6),
    desired_urls=st.lists(st.tuples(_urls, _hooks), min_size=6, max_size=6),
    remote_rows=st.lists(st.tuples(_names, _urls, _hooks), max_size=8),
)
def test_every_desired_name_gets_one_change_and_every_remote_app_is_accounted_for(
    desired_names: list[str],
    desired_urls: list[tuple[str, str | None]],
    remote_rows: list[tuple[str, str, str | None]],
) -> None:
    apps = [
        DesiredApp(name, answer, hook or None)
        for name, (answer, hook) in zip(desired_names, desired_urls, strict=False)
    ]
    remote = [remote_app(f"app_{i}", n, a, h) for i, (n, a, h) in enumerate(remote_rows)]
    plan = build_plan(desired_env(*apps), remote)

    managed = [c for c in plan.changes if c.action is not Action.UNMANAGED]
    assert sorted(c.name for c in managed) == sorted(desired_names)
    referenced = [c.id for c in plan.changes if c.id] + [i for c in plan.changes for i in c.ids]
    assert sorted(referenced) == sorted(app.id for app in remote)
    for change in plan.changes:
        remote_named = [app for app in remote if app.name == change.name]
        if change.action is Action.CREATE:
            assert remote_named == []
        elif change.action is Action.AMBIGUOUS:
            assert len(remote_named) >= 2
        elif change.action in (Action.UNCHANGED, Action.DRIFT):
            (have,) = remote_named
            assert change.desired is not None
            assert (have.compared() == change.desired.compared()) == (
                change.action is Action.UNCHANGED
            )
            assert {d.field for d in change.drift} == {
                k for k, v in have.compared().items() if change.desired.compared()[k] != v
            }
    assert [c.sort_key() for c in plan.changes] == sorted(c.sort_key() for c in plan.changes)


def test_a_large_plan_is_built_per_application() -> None:
    # 20,000 desired against 20,000 remote with 1,000 drifted: linear, not a whole-list diff.
    apps = [DesiredApp(f"app {i}", ANSWER, HOOK) for i in range(20_000)]
    remote = [
        remote_app(f"app_{i:05d}", f"app {i}", ANSWER if i % 20 else ANSWER + "/old")
        for i in range(20_000)
    ]
    summary = build_plan(desired_env(*apps), remote).summary
    assert summary == {
        "create": 0,
        "drift": 1000,
        "unchanged": 19_000,
        "unmanaged": 0,
        "ambiguous": 0,
    }
