"""Optimistic concurrency: two edits from the same version never both win (workflow.md).

The threaded test runs two real transactions at once against the configured database
(PostgreSQL in CI): exactly one succeeds, the other gets 409, and the stored row and its
history hold the winner's change only.
"""
import threading

from django.db import connection

from trials.models import Infusion, Subject


def test_second_edit_from_the_same_version_gets_409_and_the_first_survives(world):
    first = world.client("coordinator_a")
    second = world.client("investigator_a")
    url = f"/api/v1/subjects/{world.subject_a.pk}/"
    version = world.subject_a.version
    ok = first.patch(url, {"version": version, "reason": "source updated", "baseline_weight_kg": "71.00"}, format="json")
    assert ok.status_code == 200, ok.content
    stale = second.patch(url, {"version": version, "reason": "chart says 69", "baseline_weight_kg": "69.00"}, format="json")
    assert stale.status_code == 409
    assert stale.json()["current_version"] == version + 1
    assert "version" in stale.json()
    world.subject_a.refresh_from_db()
    assert str(world.subject_a.baseline_weight_kg) == "71.00"
    assert world.subject_a.history.filter(history_change_reason="chart says 69").count() == 0


def test_stale_void_gets_409(world):
    client = world.client("coordinator_a")
    url = f"/api/v1/infusions/{world.infusion_a.pk}/"
    assert client.patch(url, {"version": 1, "reason": "fix", "lot_number": "L2"}, format="json").status_code == 200
    assert client.post(f"{url}void/", {"version": 1, "reason": "dup"}, format="json").status_code == 409
    assert not Infusion.objects.get(pk=world.infusion_a.pk).voided


def _race(world, url, bodies):
    barrier = threading.Barrier(len(bodies))
    results = [None] * len(bodies)

    def edit(i, user, body):
        try:
            client = world.client(user)
            barrier.wait()
            results[i] = client.patch(url, body, format="json").status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=edit, args=(i, u, b)) for i, (u, b) in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_edits_from_one_version_in_real_transactions(world_tx):
    w = world_tx
    subject = Subject.objects.get(pk=w.subject_a.pk)
    url = f"/api/v1/subjects/{subject.pk}/"
    for round_ in range(5):
        version = Subject.objects.get(pk=subject.pk).version
        weights = [f"{60 + round_}.25", f"{80 + round_}.75"]
        statuses = _race(
            w,
            url,
            [
                ("coordinator_a", {"version": version, "reason": "A", "baseline_weight_kg": weights[0]}),
                ("investigator_a", {"version": version, "reason": "B", "baseline_weight_kg": weights[1]}),
            ],
        )
        assert sorted(statuses) == [200, 409], statuses
        winner = weights[statuses.index(200)]
        stored = Subject.objects.get(pk=subject.pk)
        assert str(stored.baseline_weight_kg) == winner
        assert stored.version == version + 1
        assert stored.history.filter(version=version + 1).count() == 1
