"""Load test of the CRF screens on loopback: gunicorn + PostgreSQL, 50 concurrent coordinators.

Each virtual coordinator logs in, then loops: open its subject's casebook (60 study days), open a
day's form, save a correction (2-5 s think time between actions). After a warm-up the script
measures for --seconds and prints p50/p95/p99 per action, errors, and the load generator's own
CPU share; then a saturation run (no think time) gives requests per second.

    .venv/bin/python bench/web_load.py            # needs PostgreSQL on 127.0.0.1:5432
    .venv/bin/python bench/web_load.py --workers 4 --broker redis://127.0.0.1:6379/14
                                                  # README's deployment: 4 gunicorn workers, tasks
                                                  # (notifications, alerts) on a Celery worker via Redis

Without --broker the tasks a save enqueues run in the request (the embedded default).
"""
import argparse
import http.client
import os
import random
import re
import resource
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB = "cart_bench_web"
PASSWORD = "bench-coordinator-pass"
PORT = 8765


def django_env(db_url, broker=""):
    return {**os.environ, "DATABASE_URL": db_url, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "bench-" + "x" * 50,
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost", "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_BEHIND_TLS_PROXY": "0", "DJANGO_SECURE_HSTS_SECONDS": "0", "CELERY_BROKER_URL": broker,
            "DJANGO_LOG_LEVEL": "WARNING", "DATABASE_CONN_MAX_AGE": "60"}  # persistent connections, as in production


def setup(db_url, users):
    """A fresh database with a synthetic trial whose subjects have 60 days, and one coordinator each."""
    subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {DB}",
                    "-c", f"CREATE DATABASE {DB}"], check=True)
    env = django_env(db_url)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "generate_synthetic", "WEB-1", "--subjects", str(users * 4), "--days", "60", "--seed", "5"],
                   cwd=ROOT, env=env, check=True)
    script = f"""
from django.contrib.auth import get_user_model
from trials.models import Subject
from trials import services
subjects = list(Subject.objects.filter(trial__protocol_code="WEB-1").select_related("site", "trial").order_by("pk"))
for n in range({users}):
    s = subjects[n]
    u, _ = get_user_model().objects.get_or_create(username=f"load{{n}}")
    u.set_password("{PASSWORD}"); u.save()
    services.membership_grant(user=u, role="coordinator", trial=s.trial, site=s.site)
    print(u.username, s.pk, s.day0.isoformat())
"""
    out = subprocess.run([*manage, "shell", "-c", script], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return [line.split() for line in out.stdout.splitlines() if line.startswith("load")]


class Client:
    """A tiny keep-alive HTTP client with a cookie jar (sessions and CSRF)."""

    def __init__(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        self.cookies = {}

    def request(self, method, path, form=None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form, doseq=True)
            headers.update({"Content-Type": "application/x-www-form-urlencoded", "Referer": f"http://127.0.0.1:{PORT}{path}"})
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read().decode()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
            raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";")[0]
        return response.status, data

    def csrf(self, html):
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        return match.group(1) if match else ""


def login(username) -> "Client":
    c = Client()
    status, page = c.request("GET", "/accounts/login/")
    c.request("POST", "/accounts/login/", {"csrfmiddlewaretoken": c.csrf(page), "username": username,
                                           "password": PASSWORD, "next": "/"})
    return c


def virtual_user(c, username, subject, day0, stop, warm_until, results, think, lock):
    """Logged in before the clock starts: password hashing is not part of the measured load."""
    rng = random.Random(username)
    day0 = time.strptime(day0, "%Y-%m-%d")
    while time.monotonic() < stop:
        day = time.strftime("%Y-%m-%d", time.localtime(time.mktime(day0) + 86400 * rng.randint(0, 59) + 43200))
        for action in ("casebook", "form", "save"):
            started = time.monotonic()
            try:
                if action == "casebook":
                    status, _ = c.request("GET", f"/subjects/{subject}/")
                    ok = status == 200
                elif action == "form":
                    status, form_page = c.request("GET", f"/subjects/{subject}/day/{day}/")
                    ok = status == 200
                else:
                    version = re.search(r'name="version" value="(\d+)"', form_page)
                    data = {"csrfmiddlewaretoken": c.csrf(form_page), "temperature": f"{rng.uniform(36.5, 39.5):.1f}",
                            "temperature_unit": "C", "oxygen_device": "none", "ice_score": "10", "capd_score": "0",
                            "consciousness": "alert", "seizure": "none", "motor_weakness": "none",
                            "cerebral_edema": "none", "version": version.group(1) if version else "",
                            "reason": "load test correction"}
                    status, body = c.request("POST", f"/subjects/{subject}/day/{day}/", data)
                    ok = status == 302
            except (http.client.HTTPException, OSError):
                ok = False
            elapsed = time.monotonic() - started
            if started >= warm_until:
                with lock:
                    results.setdefault(action, []).append(elapsed)
                    if not ok:
                        results.setdefault("errors", []).append(action)
            if think:
                time.sleep(rng.uniform(*think))  # the coordinator reads the screen
            if time.monotonic() >= stop:
                break


def run(users, seconds, warmup, think, clients):
    results, lock = {}, threading.Lock()
    now = time.monotonic()
    stop, warm_until = now + warmup + seconds, now + warmup
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    threads = [threading.Thread(target=virtual_user, args=(clients[u], u, s, d, stop, warm_until, results, think, lock))
               for u, s, d in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return results, cpu / (warmup + seconds) / os.cpu_count()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=15)
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--broker", default="", help="a Redis URL: tasks go to a Celery worker (README deployment)")
    args = parser.parse_args()
    db_url = f"postgres://postgres@127.0.0.1:5432/{DB}"
    users = setup(db_url, args.users)
    if args.broker:
        import redis

        redis.Redis.from_url(args.broker).flushdb()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "--workers", str(args.workers), "--bind", f"127.0.0.1:{PORT}",
         "--log-level", "warning"], cwd=ROOT, env=django_env(db_url, args.broker))
    worker = subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "config", "worker", "--concurrency", "1", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"bench-web-{os.getpid()}@%h"],
        cwd=ROOT, env=django_env(db_url, args.broker)) if args.broker else None
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/accounts/login/")
                break
            except OSError:
                time.sleep(0.1)
        clients = {u: login(u) for u, _, _ in users}
        results, cpu_share = run(users, args.seconds, args.warmup, think=(2, 5), clients=clients)
        print(f"\n{args.users} coordinators, {args.seconds} s after a {args.warmup} s warm-up, think time 2-5 s, "
              f"gunicorn {args.workers} workers, PostgreSQL, subjects with 60 study days, tasks "
              + (f"on a Celery worker via {args.broker}" if args.broker else "in the request (no broker)"))
        print(f"{'action':<10}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
        for action in ("casebook", "form", "save"):
            v = results.get(action, [])
            if v:
                print(f"{action:<10}{len(v):>7}{pct(v, 50):>9.0f}{pct(v, 95):>9.0f}{pct(v, 99):>9.0f}")
        print(f"errors: {len(results.get('errors', []))}; load generator CPU share: {cpu_share:.1%} of the machine")
        sat, sat_cpu = run(users[:8], 20, 3, think=None, clients=clients)
        total = sum(len(sat.get(a, [])) for a in ("casebook", "form", "save"))
        print(f"saturation (8 clients, no think time, 20 s): {total / 20:.0f} requests/s, "
              f"save p95 {pct(sat['save'], 95):.0f} ms, errors {len(sat.get('errors', []))}, "
              f"generator CPU share {sat_cpu:.1%}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
            import redis

            redis.Redis.from_url(args.broker).flushdb()
        subprocess.run(["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {DB}"])


if __name__ == "__main__":
    main()
