"""The verdict of scripts/ratio-smoke.sh, from its runs file (one wrk run per line:
"round workload side requests duration-µs server-CPU-µs Redis-CPU-µs wrk-CPU-µs").

A workload's ratio is the median over its rounds of the reference's CPU per request over
seatlock's, counting the server process, its Redis and the load generator: on two cores that the
three share, that is the throughput ratio of a quiet machine, and unlike the throughput it does
not move when other processes take CPU away in the middle of a round.

FLOORS is "holds=0.20,refusals=0.25": a floor per workload.

  ratio_smoke.py RUNS FLOORS --below         print the workloads whose ratio is below its floor
  ratio_smoke.py RUNS FLOORS TAKEN ERRORS NOTE
      print the ratios and every round; exit 1 when a ratio is below its floor, when seatlock's 2xx
      answers (TAKEN) are fewer than half of its random holds (the smoke measured something else
      than holds being taken) or when it answered a 5xx (ERRORS)
"""

import statistics
import sys

WORKLOADS = ("holds", "refusals")
SIDES = ("seatlock", "reference")


def read_runs(path):
    """workload -> round -> side -> the numbers of one wrk run"""
    runs = {}
    with open(path) as f:
        for line in f:
            rnd, workload, side, *numbers = line.split()
            requests, duration, server, redis, wrk = map(int, numbers)
            runs.setdefault(workload, {}).setdefault(int(rnd), {})[side] = {
                "rate": requests * 1e6 / duration,
                "requests": requests,
                "server": server,
                "redis": redis,
                "wrk": wrk,
            }
    return runs


def cost(run):
    """CPU µs per request: the server, its Redis and wrk"""
    return (run["server"] + run["redis"] + run["wrk"]) / run["requests"]


def cost_ratios(rounds):
    return [cost(r["reference"]) / cost(r["seatlock"]) for r in rounds.values()]


def rate_ratios(rounds):
    return [r["seatlock"]["rate"] / r["reference"]["rate"] for r in rounds.values()]


def per_request(rounds, side):
    """'total (server + Redis + wrk)' CPU µs per request over every round of one side"""
    total = {k: sum(r[side][k] for r in rounds.values()) for k in ("requests", "server", "redis", "wrk")}
    parts = [total[k] / total["requests"] for k in ("server", "redis", "wrk")]
    return f"{sum(parts):.0f} ({parts[0]:.0f} + {parts[1]:.0f} + {parts[2]:.0f})"


def main(argv):
    runs = read_runs(argv[1])
    floor = {w: float(f) for w, f in (item.split("=") for item in argv[2].split(","))}
    ratio = {w: statistics.median(cost_ratios(rounds)) for w, rounds in runs.items()}
    below = [w for w in WORKLOADS if w in ratio and ratio[w] < floor[w]]
    if argv[3:] == ["--below"]:
        print(" ".join(below))
        return 0
    taken, errors, note = int(argv[3]), int(argv[4]), argv[5]
    print(
        "ratio smoke: "
        + ", ".join(f"{w} {ratio[w]:.2f}x (floor {floor[w]:.2f}x)" for w in WORKLOADS)
        + f"; CPU per request, reference over seatlock; {note}"
    )
    for w in WORKLOADS:
        rounds = runs[w]
        rates = {s: statistics.median(r[s]["rate"] for r in rounds.values()) for s in SIDES}
        print(
            f"  {w}: CPU µs per request (server + Redis + wrk): seatlock {per_request(rounds, 'seatlock')}, "
            f"reference {per_request(rounds, 'reference')}; rounds "
            + " ".join(f"{x:.2f}" for x in cost_ratios(rounds))
        )
        print(
            f"  {w}: throughput {statistics.median(rate_ratios(rounds)):.2f}x "
            f"(seatlock {rates['seatlock']:,.0f}/s, reference {rates['reference']:,.0f}/s; "
            "not gated, it moves with the machine's other load); rounds "
            + " ".join(f"{x:.2f}" for x in rate_ratios(rounds))
        )
    failed = [f"{w} {ratio[w]:.2f}x is below its floor {floor[w]:.2f}x" for w in below]
    holds = sum(r["seatlock"]["requests"] for r in runs["holds"].values())
    if taken < holds / 2:
        failed.append(f"seatlock took only {taken} of {holds} random holds")
    if errors:
        failed.append(f"seatlock answered {errors} requests with a 5xx")
    if failed:
        print("ratio smoke FAILED: " + "; ".join(failed) + " (see bench/README.md, The ratio smoke)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
