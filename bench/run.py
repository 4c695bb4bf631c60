"""Grading benchmarks: pure grade() throughput, and `manage.py grade` end to end.

    .venv/bin/python bench/run.py                  # both, with the default sizes
    .venv/bin/python bench/run.py --calls 200000 --lines 100000   # a quicker run

(a) grade() on one core over ~10,000 distinct generated assessments (adults and children,
    every scale, normal days, fever, CRS 2-4, ICANS 1-4, NE days, deaths), cycled to --calls
    calls. Goal: >= 200,000 assessments per second.
(b) `manage.py grade FILE > /dev/null` on a generated JSON Lines file of --lines lines (and of
    --lines / 10 lines, to show that peak memory does not grow with the file), written to a
    temporary directory that is deleted afterwards. Goal: >= 50,000 lines per second; peak RSS
    of the child process from os.wait4 (cross-checked with getrusage(RUSAGE_CHILDREN)).

The inputs are valid grading inputs (no error lines); the generator is seeded, so every run
grades the same assessments.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from toxicity.grading import engine, grade  # noqa: E402  (after the sys.path line on purpose)

CRS_SCALES = ["astct_2019"] * 7 + ["ctcae_v5"] * 2 + ["ctcae_v6"]
ICANS_SCALES = ["astct_2019"] * 4 + ["ctcae_v6"]
PRESSORS = ["norepinephrine", "epinephrine", "phenylephrine", "dopamine", "angiotensin_ii",
            "other"]
LOW_FLOW = [("nasal_cannula", 1.0), ("nasal_cannula", 2.0), ("nasal_cannula", 4.0),
            ("nasal_cannula", 6.0), ("blow_by", None)]
HIGH = [("nasal_cannula", 6.5), ("nasal_cannula", 8.0), ("high_flow_nasal_cannula", 30.0),
        ("high_flow_nasal_cannula", 50.0), ("facemask", None), ("non_rebreather", 15.0),
        ("venturi_mask", None)]
POSITIVE = [("cpap", None), ("bipap", None)]


def _temperature(rng: random.Random, fever: bool) -> float:
    if fever:
        return round(rng.uniform(38.0, 40.8), rng.choice((1, 1, 1, 2)))
    return round(rng.uniform(35.8, 37.9), rng.choice((1, 1, 1, 2)))


def generate_assessment(rng: random.Random) -> dict:
    """One realistic daily assessment with its context, as the CLI or the preview receives it."""
    roll = rng.random()
    age = (rng.randint(18, 82) if roll < 0.72 else rng.randint(12, 17) if roll < 0.80
           else rng.randint(1, 11))
    delay = rng.random() < 0.03
    a: dict = {
        "subject_id": f"{rng.randint(101, 120)}-{rng.randint(1, 9999):04d}",
        "assessment_date": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "study_day": rng.randint(-1, 28),
        "age_years": age if rng.random() < 0.8 else round(age + rng.random(), 1),
        "developmental_delay": delay,
        "crs_scale": rng.choice(CRS_SCALES),
        "icans_scale": rng.choice(ICANS_SCALES),
        "crs_ongoing": False, "anticytokine_or_antipyretic_since_onset": False,
        "temperature_max_c": None, "fever_other_cause": False, "antipyretic_given": False,
        "hypotension": False, "hypotension_other_cause": False, "vasopressors": [],
        "vasopressin_other_indication": False, "hypoxia": False, "hypoxia_other_cause": False,
        "oxygen_device": "none", "oxygen_flow_l_min": None, "fio2_percent": None,
        "intubation_reason": None, "ice_score": None, "ice_not_assessable": None,
        "capd_score": None, "capd_unable": False, "consciousness": "alert",
        "consciousness_other_cause": False, "seizure": "none", "seizure_other_cause": False,
        "motor_weakness": "none", "motor_other_cause": False, "cerebral_edema": "none",
        "cerebral_edema_other_cause": False, "crs_grade_reported": None,
        "icans_grade_reported": None, "death_primary_cause": None,
    }
    # --- CRS picture of the day
    day = rng.random()
    fever = day >= 0.50
    a["temperature_max_c"] = None if rng.random() < 0.02 else _temperature(rng, fever)
    if fever and rng.random() < 0.05:
        a["fever_other_cause"] = True
    if day >= 0.50 and rng.random() < 0.15:
        a["crs_ongoing"] = True
        a["anticytokine_or_antipyretic_since_onset"] = rng.random() < 0.7
        a["antipyretic_given"] = rng.random() < 0.3
    if day >= 0.75:  # hypotension and/or hypoxia
        if rng.random() < 0.6:
            a["hypotension"] = True
            n = rng.choice((0, 0, 1, 1, 1, 2))
            agents = rng.sample(PRESSORS[:4], n) if rng.random() < 0.9 else rng.sample(PRESSORS, n)
            if rng.random() < 0.15:
                agents.append("vasopressin")
            a["vasopressors"] = agents
            a["hypotension_other_cause"] = rng.random() < 0.05
        if rng.random() < 0.6:
            a["hypoxia"] = True
            device, flow = rng.choice(LOW_FLOW * 3 + HIGH * 2 + POSITIVE)
            if rng.random() < 0.04:
                device, flow = "mechanical_ventilation", None
                a["intubation_reason"] = rng.choice(("hypoxia", "hypoxia", "airway_protection"))
            a["oxygen_device"], a["oxygen_flow_l_min"] = device, flow
            a["fio2_percent"] = rng.choice((None, 24, 28, 32, 36, 40, 50, 60, 100))
            a["hypoxia_other_cause"] = rng.random() < 0.05
    # --- ICANS picture of the day
    neuro = rng.random()
    child_tool = age < 12 or delay
    if child_tool:
        a["capd_score"] = (0 if neuro < 0.7 else rng.randint(1, 8) if neuro < 0.9
                           else rng.randint(9, 32))
        if neuro > 0.98:
            a["capd_score"], a["capd_unable"] = None, True
        if rng.random() < 0.2:
            a["capd_baseline"] = rng.randint(0, 6)
    else:
        a["ice_score"] = (10 if neuro < 0.7 else rng.randint(7, 9) if neuro < 0.85
                          else rng.randint(0, 6))
        if neuro > 0.98:
            a["ice_score"], a["ice_not_assessable"] = None, rng.choice(("unarousable", "sedated"))
            a["consciousness"] = a["ice_not_assessable"]
    if neuro > 0.9 and a["consciousness"] == "alert":
        a["consciousness"] = rng.choice(("awakens_to_voice", "awakens_to_tactile"))
    if neuro > 0.95:
        a["seizure"] = rng.choice(("rapidly_resolving", "prolonged_or_repetitive"))
    if neuro > 0.985:
        a["cerebral_edema"] = rng.choice(("focal", "diffuse_or_signs"))
        a["motor_weakness"] = rng.choice(("none", "deep_focal"))
    if rng.random() < 0.005:
        a["death_primary_cause"] = rng.choice(("crs", "icans", "disease_progression",
                                               "infection"))
    if rng.random() < 0.5:
        a["crs_grade_reported"] = rng.choice((0, 0, 1, 1, 2, 3))
        a["icans_grade_reported"] = rng.choice((0, 0, 0, 1, 2))
    if rng.random() < 0.3:  # the API preview sends only what was filled in
        a = {k: v for k, v in a.items()
             if not (v is None or v is False or v == [] or v == "none")}
    return a


def generate(n: int, seed: int = 2026) -> list[dict]:
    rng = random.Random(seed)
    return [generate_assessment(rng) for _ in range(n)]


def bench_grade(calls: int, distinct: int) -> dict:
    inputs = generate(distinct)
    start = time.perf_counter()
    for data in inputs:  # all valid; the engine's per-state memos start empty here
        grade(data)
    first = time.perf_counter() - start
    rounds, rest = divmod(calls, len(inputs))
    work = inputs * rounds + inputs[:rest]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for data in work:
            grade(data)
        best = min(best, time.perf_counter() - start)
    fresh = generate(distinct, seed=99)  # never seen, graded with the memos as they now are
    start = time.perf_counter()
    for data in fresh:
        grade(data)
    fresh_seconds = time.perf_counter() - start
    return {"calls": len(work), "distinct": len(inputs), "seconds": best,
            "per_second": len(work) / best, "first_pass_per_second": len(inputs) / first,
            "fresh_per_second": len(fresh) / fresh_seconds,
            "crs_states": len(getattr(engine, "_CRS_MEMO", ())),
            "icans_states": len(getattr(engine, "_ICANS_MEMO", ()))}


def _write_jsonl(path: Path, lines: int, distinct: int) -> int:
    encoded = [json.dumps(a, separators=(",", ":")) + "\n" for a in generate(distinct, seed=7)]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(lines):
            f.write(encoded[i % distinct])
    return path.stat().st_size


def _run_cli(path: Path, *options: str) -> dict:
    """Run manage.py grade on the file, stdout to /dev/null; wall time and peak RSS."""
    cmd = [sys.executable, str(ROOT / "manage.py"), "grade", *options, str(path)]
    load = os.getloadavg()[0]  # other work on the machine skews the figures: say so
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(cmd, stdout=devnull, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    # ru_maxrss (KiB on Linux) of the command, or of its largest worker process
    return {"seconds": seconds, "load_before": load, "peak_rss_mib": usage.ru_maxrss / 1024,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,  # the command and its workers
            "children_max_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def bench_cli(lines: int) -> list[dict]:
    results = []
    with tempfile.TemporaryDirectory(prefix="grade-bench-") as tmp:
        startup = Path(tmp) / "empty.jsonl"
        startup.write_text("")
        results.append({"lines": 0, "size_mib": 0, "options": (), **_run_cli(startup)})
        for n, options in ((lines // 10, ()), (lines, ()), (lines, ("--jobs", "1"))):
            path = Path(tmp) / f"assessments-{n}.jsonl"
            if not path.exists():
                for old in Path(tmp).glob("assessments-*.jsonl"):
                    old.unlink()
                _write_jsonl(path, n, distinct=min(n, 20_000))
            run = _run_cli(path, *options)
            run.update(lines=n, size_mib=path.stat().st_size / 2**20, options=options,
                       per_second=n / run["seconds"])
            results.append(run)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=600_000, help="grade() calls (default 600000)")
    parser.add_argument("--distinct", type=int, default=10_000,
                        help="distinct assessments cycled by the grade() bench (default 10000)")
    parser.add_argument("--lines", type=int, default=1_000_000,
                        help="lines of the big JSONL file (default 1000000)")
    parser.add_argument("--skip-cli", action="store_true", help="only the grade() bench")
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.system()} {platform.release()}")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (figures need a quiet machine)")
    g = bench_grade(args.calls, args.distinct)
    print(f"(a) grade(): {g['calls']:,} calls over {g['distinct']:,} distinct assessments in "
          f"{g['seconds']:.2f} s (best of 3) = {g['per_second']:,.0f} assessments/s "
          f"[goal >= 200,000/s: {'met' if g['per_second'] >= 200_000 else 'NOT met'}]")
    print(f"    first pass over them, the engine's memos empty: "
          f"{g['first_pass_per_second']:,.0f}/s; then {g['distinct']:,} new assessments "
          f"(another seed): {g['fresh_per_second']:,.0f}/s; clinical states remembered: "
          f"{g['crs_states']:,} CRS, {g['icans_states']:,} ICANS")
    if args.skip_cli:
        return
    for run in bench_cli(args.lines):
        if run["lines"] == 0:
            print(f"(b) manage.py grade, empty file (start-up cost): {run['seconds']:.2f} s, "
                  f"peak RSS {run['peak_rss_mib']:.1f} MiB")
            continue
        jobs = " ".join(run["options"]) or f"default --jobs ({os.cpu_count()})"
        goal = (f" [goal >= 50,000 lines/s: {'met' if run['per_second'] >= 50_000 else 'NOT met'}]"
                if run["lines"] == args.lines else "")
        print(f"(b) manage.py grade FILE > /dev/null, {jobs}: {run['lines']:,} lines "
              f"({run['size_mib']:.0f} MiB) in {run['seconds']:.2f} s = "
              f"{run['per_second']:,.0f} lines/s, peak RSS {run['peak_rss_mib']:.1f} MiB "
              f"(getrusage children max so far {run['children_max_rss_mib']:.1f} MiB), "
              f"CPU {run['cpu_seconds']:.1f} s, load average before {run['load_before']:.2f}"
              f"{goal}")


if __name__ == "__main__":
    main()
