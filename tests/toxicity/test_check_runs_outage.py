"""The consistency job survives a database outage (issue 8, "No lost data").

The Celery tasks retry on OperationalError / InterfaceError with back-off (toxicity.tasks.RETRY);
a chunk is counted once by index and its queries are reconciled idempotently, so a retried
chunk -- whether it failed before or after its queries committed -- neither loses nor
duplicates anything.

- In-process (every pass): the chunk task's first attempt loses the database right after its
  queries committed; Celery retries it and the run ends with the right counts.
- Real worker (PostgreSQL + Redis pass): the worker reaches PostgreSQL through a TCP proxy that
  the test cuts mid-run -- open connections are dropped, new ones refused -- and restores once
  the worker has logged a retry. The run completes with the same queries as an undisturbed run
  would open, each once. Everything synchronises by polling the database or the worker's log.
"""
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.db import OperationalError, connection

from tests.toxicity.test_check_runs import BROKER, ROOT, expected_keys, open_keys, wait_for
from toxicity import check_runs
from toxicity.models import CheckRun, Query, QueryMessage
from toxicity.synthetic import generate
from toxicity.tasks import RETRY, check_run_chunk
from trials.models import Trial


def test_the_tasks_retry_on_database_errors():
    for task in (check_run_chunk,):
        assert set(task.autoretry_for) >= {OperationalError} and task.max_retries >= 3
    assert RETRY["retry_backoff"] and RETRY["retry_backoff_max"] <= 60


def rule_query_counts(trial) -> Counter:
    return Counter(Query.objects.filter(trial=trial, origin="rule").values_list("rule_id", "record_type", "record_id", "field"))


def test_a_chunk_that_loses_the_database_after_its_queries_committed_is_retried_and_counted_once(
        transactional_db, monkeypatch, settings):
    settings.CHECKS_CHUNK_SIZE = 4
    generate("OUTAGE-1", subjects=8, days=10, seed=5)
    trial = Trial.objects.get(protocol_code="OUTAGE-1")
    expected = expected_keys(trial)
    run = CheckRun.objects.create(trial=trial)
    chunks = check_runs.check_run_begin(run.pk)
    assert len(chunks) == 2
    attempts = Counter()
    original = check_runs.check_subjects

    def flaky(subject_ids, **kwargs):
        attempts[tuple(subject_ids)] += 1
        outcome = original(subject_ids, **kwargs)  # the chunk's queries are committed ...
        if attempts[tuple(subject_ids)] == 1:
            raise OperationalError("server closed the connection unexpectedly")  # ... then the database goes
        return outcome

    monkeypatch.setattr(check_runs, "check_subjects", flaky)
    for index, ids in enumerate(chunks):
        result = check_run_chunk.apply(args=(run.pk, index, ids), throw=False)  # in-process; runs the retry too
        assert result.successful(), result.traceback
    assert set(attempts.values()) == {2}  # each chunk: the failed attempt and its retry
    run.refresh_from_db()
    assert (run.status, run.done, run.total, sorted(run.chunks_done)) == ("succeeded", 8, 8, [0, 1])
    assert open_keys(trial) == expected and run.opened == len(expected)
    assert max(rule_query_counts(trial).values()) == 1
    raised = Counter(QueryMessage.objects.filter(query__trial=trial, action="raise").values_list("query_id", flat=True))
    assert set(raised.values()) == {1}


class FlakyProxy:
    """A TCP proxy in front of a server (PostgreSQL, Redis) that the test can cut (an outage) and restore."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.down = threading.Event()
        self.refused = 0
        self.pairs: set[tuple[socket.socket, socket.socket]] = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            if self.down.is_set():
                with self.lock:
                    self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            pair = (client, upstream)
            with self.lock:
                self.pairs.add(pair)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, pair), daemon=True).start()

    def _pump(self, src, dst, pair):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(pair)

    def _drop(self, pair):
        with self.lock:
            self.pairs.discard(pair)
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def cut(self):
        """The outage: every open connection drops, every new one is refused."""
        self.down.set()
        with self.lock:
            pairs = list(self.pairs)
        for pair in pairs:
            self._drop(pair)

    def restore(self):
        self.down.clear()

    def close(self):
        self.cut()
        self.server.close()


def start_worker(env: dict, log) -> subprocess.Popen:
    from config.celery import app

    app.control.purge()
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "prefork", "--concurrency", "2",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


def assert_complete_once(run, trial, expected, log_text):
    assert run.status == "succeeded", (run.error, log_text[-3000:])
    assert run.done == run.total == 60 and len(run.chunks_done) == run.chunks_total == 30
    assert open_keys(trial) == expected and run.opened == len(expected)
    assert max(rule_query_counts(trial).values()) == 1
    raised = Counter(QueryMessage.objects.filter(query__trial=trial, action="raise").values_list("query_id", flat=True))
    assert set(raised.values()) == {1}


@pytest.mark.broker
@pytest.mark.skipif(not BROKER or connection.vendor != "postgresql",
                    reason="a worker process needs a real broker and a PostgreSQL server to cut off; "
                           "the embedded pass runs tasks in-process (the test above)")
def test_worker_retries_through_a_database_outage_and_the_run_completes_once(transactional_db, tmp_path):
    generate("OUTAGE-2", subjects=60, days=30, seed=7)
    trial = Trial.objects.get(protocol_code="OUTAGE-2")
    expected = expected_keys(trial)
    db = connection.settings_dict
    proxy = FlakyProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}{password}@127.0.0.1:{proxy.port}/{db['NAME']}",
        "DATABASE_CONN_MAX_AGE": "0",  # a new connection per task: a retry really reconnects
        "CHECKS_CHUNK_SIZE": "2",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    log = tmp_path / "worker.log"
    proc = start_worker(env, log)
    try:
        run = check_runs.check_run_create(user=None, trial=trial)
        wait_for(lambda: CheckRun.objects.get(pk=run.pk).done >= 4, what="the run to make progress")
        proxy.cut()
        at_cut = CheckRun.objects.get(pk=run.pk)
        assert at_cut.status == "running" and at_cut.done < at_cut.total, "the run finished before the outage"
        wait_for(lambda: "check_run_chunk" in log.read_text() and "retry: Retry in" in log.read_text()
                 and proxy.refused >= 1, timeout=60, what="the worker to fail on the database and schedule a retry")
        proxy.restore()
        wait_for(lambda: CheckRun.objects.get(pk=run.pk).status in ("succeeded", "failed"), timeout=240,
                 what="the run to finish after the outage")
        run.refresh_from_db()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        proxy.close()
    text = log.read_text()
    assert "OperationalError" in text or "InterfaceError" in text, text[-3000:]
    assert_complete_once(run, trial, expected, text)


@pytest.mark.broker
@pytest.mark.skipif(not BROKER or not django_settings.CELERY_BROKER_URL.startswith("redis://"),
                    reason="needs the Redis broker of the services pass, to cut the worker off from it")
def test_worker_reconnects_after_a_broker_outage_and_the_run_completes_once(transactional_db, tmp_path):
    """The worker loses Redis mid-run (connections dropped, reconnects refused) and gets it back:
    it reconnects, the tasks it held are delivered again after the visibility timeout (10 s
    here), and the run completes with each chunk counted and each query raised once."""
    generate("OUTAGE-3", subjects=60, days=30, seed=9)
    trial = Trial.objects.get(protocol_code="OUTAGE-3")
    expected = expected_keys(trial)
    broker = urlsplit(django_settings.CELERY_BROKER_URL)
    proxy = FlakyProxy(broker.hostname or "127.0.0.1", broker.port or 6379)
    via_proxy = urlunsplit(broker._replace(netloc=f"{broker.hostname}:{proxy.port}"))
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": via_proxy,
        "CELERY_RESULT_BACKEND": via_proxy,
        "CELERY_VISIBILITY_TIMEOUT": "10",  # tasks held by the lost connection come back soon
        "CHECKS_CHUNK_SIZE": "2",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    log = tmp_path / "worker.log"
    proc = start_worker(env, log)
    try:
        run = check_runs.check_run_create(user=None, trial=trial)  # published directly, not through the proxy
        wait_for(lambda: CheckRun.objects.get(pk=run.pk).done >= 4, what="the run to make progress")
        proxy.cut()
        at_cut = CheckRun.objects.get(pk=run.pk)
        assert at_cut.status == "running" and at_cut.done < at_cut.total, "the run finished before the outage"
        wait_for(lambda: proxy.refused >= 2, timeout=60, what="the worker to try to reconnect to the broker")
        proxy.restore()
        wait_for(lambda: CheckRun.objects.get(pk=run.pk).status in ("succeeded", "failed"), timeout=240,
                 what="the run to finish after the broker came back")
        run.refresh_from_db()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        proxy.close()
    text = log.read_text()
    assert "broker" in text.lower() and ("lost" in text or "Cannot connect" in text), text[-3000:]
    assert_complete_once(run, trial, expected, text)
