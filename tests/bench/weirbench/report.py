"""Turns the per-round records into Markdown tables (median, min–max, ratios to weir)."""

import re
import statistics

from . import configs

# h2load's `time for request` line: all it gives (no percentiles).
H2LOAD_TIMES = [("min_ms", "min ms ↓", "{:.2f}"), ("mean_ms", "mean ms ↓", "{:.2f}"),
                ("sd_ms", "sd ms ↓", "{:.2f}"), ("max_ms", "max ms ↓", "{:.2f}")]

# workload id -> (title, [(metric, column label, format)])
WORKLOADS = {
    "bulk1": ("Bulk throughput, 1 stream (iperf3)",
              [("gbps", "Gbit/s ↑", "{:.2f}"), ("cpu_ms_per_gb", "proxy CPU ms/GB ↓", "{:.0f}")]),
    "bulk4": ("Bulk throughput, 4 streams (iperf3 -P 4)",
              [("gbps", "Gbit/s ↑", "{:.2f}"), ("cpu_ms_per_gb", "proxy CPU ms/GB ↓", "{:.0f}")]),
    "cps": ("New connections per second (wrk, Connection: close)",
            [("rps", "req/s ↑", "{:.0f}"), ("p50_ms", "p50 ms ↓", "{:.2f}"),
             ("p99_ms", "p99 ms ↓", "{:.2f}"), ("p999_ms", "p99.9 ms ↓", "{:.2f}"),
             ("cpu_us_per_req", "proxy CPU µs/req ↓", "{:.1f}")]),
    "syscalls": ("System calls per proxied short connection (strace -c -f on the workers; a "
                 "diagnostic, not timed)",
                 [("syscalls_per_conn", "syscalls/conn ↓", "{:.1f}"),
                  ("failed_per_conn", "of them failed ↓", "{:.2f}"),
                  ("traced_rps", "req/s under strace", "{:.0f}")]),
    "keepalive": ("Keep-alive requests per second (wrk)",
                  [("rps", "req/s ↑", "{:.0f}"), ("p50_ms", "p50 ms ↓", "{:.2f}"),
                   ("p99_ms", "p99 ms ↓", "{:.2f}"), ("p999_ms", "p99.9 ms ↓", "{:.2f}"),
                   ("cpu_us_per_req", "proxy CPU µs/req ↓", "{:.1f}")]),
    "idle": ("Memory per idle connection (sum of VmRSS of all proxy processes)",
             [("baseline_mib", "RSS fresh MiB ↓", "{:.1f}"),
              ("held_mib", "RSS holding MiB ↓", "{:.1f}"),
              ("kib_per_conn", "KiB/conn opened ↓", "{:.2f}"),
              ("kib_per_conn_after_req", "KiB/conn after 1 request ↓", "{:.2f}")]),
    "evenness": ("Evenness: held connections per worker process",
                 [("busiest_pct", "busiest worker % above mean ↓", "{:.1f}")]),
    "tls-handshake": ("New TLS connections per second, full handshakes (tls-terminate)",
                      [("cps", "conn/s ↑", "{:.0f}"), ("p50_ms", "p50 ms ↓", "{:.2f}"),
                       ("p99_ms", "p99 ms ↓", "{:.2f}"), ("p999_ms", "p99.9 ms ↓", "{:.2f}"),
                       ("cpu_us_per_conn", "proxy CPU µs/handshake ↓", "{:.0f}"),
                       ("client_cpu_us_per_conn", "client CPU µs/conn", "{:.0f}")]),
    "tls-keepalive-h1": ("Keep-alive requests per second over TLS, HTTP/1.1 (tls-terminate)",
                         [("rps", "req/s ↑", "{:.0f}")] + H2LOAD_TIMES
                         + [("cpu_us_per_req", "proxy CPU µs/req ↓", "{:.1f}")]),
    "tls-keepalive-h2": ("Keep-alive requests per second over TLS, HTTP/2 (tls-terminate)",
                         [("rps", "req/s ↑", "{:.0f}")] + H2LOAD_TIMES
                         + [("cpu_us_per_req", "proxy CPU µs/req ↓", "{:.1f}")]),
    "tls-bulk": ("Bulk throughput over TLS, 1 connection (tls-terminate)",
                 [("gbps", "Gbit/s ↑", "{:.2f}"), ("cpu_ms_per_gb", "proxy CPU ms/GB ↓", "{:.0f}")]),
    "tls-passthrough-cps": ("New TLS connections per second through tls-passthrough (SNI route)",
                            [("cps", "conn/s ↑", "{:.0f}"), ("p50_ms", "p50 ms ↓", "{:.2f}"),
                             ("p99_ms", "p99 ms ↓", "{:.2f}"),
                             ("p999_ms", "p99.9 ms ↓", "{:.2f}"),
                             ("cpu_us_per_conn", "proxy CPU µs/conn ↓", "{:.0f}"),
                             ("client_cpu_us_per_conn", "client CPU µs/conn", "{:.0f}")]),
    "denied-flood": ("Allowed connections during a flood of denied ones (access list)",
                     [("rps_alone", "req/s alone ↑", "{:.0f}"),
                      ("rps_flood", "req/s with flood ↑", "{:.0f}"),
                      ("flood_ratio", "with flood / alone ↑", "{:.2f}"),
                      ("p99_alone_ms", "p99 ms alone ↓", "{:.2f}"),
                      ("p99_flood_ms", "p99 ms with flood ↓", "{:.2f}"),
                      ("cpu_ratio", "proxy CPU/req with flood / alone ↓", "{:.2f}"),
                      ("flood_per_s", "denied attempts/s", "{:.0f}"),
                      ("rst_at_syn_pct", "RST to the SYN %", "{:.1f}"),
                      ("proxy_refused_pct", "refused, proxy's own count %", "{:.1f}")]),
}

# Issue 10's targets for weir against nginx: (workload, metric, what, bound, higher is better).
# Each is judged on the median of the per-round ratios weir/nginx.
TLS_TARGETS = [
    ("tls-handshake", "cps", "full handshakes per second at least nginx's", 1.0, True),
    ("tls-handshake", "cpu_us_per_conn", "proxy CPU per full handshake at most 0.83x nginx's",
     0.83, False),
    ("tls-keepalive-h1", "rps", "keep-alive HTTP/1.1 requests per second over TLS at least "
     "1.1x nginx's", 1.1, True),
    ("tls-keepalive-h2", "rps", "keep-alive HTTP/2 requests per second over TLS at least "
     "1.1x nginx's", 1.1, True),
]

SYSCALLS_LISTED = 8  # calls named per target under the syscalls table; the rest are summed

RATIO_TO = ["weir-baseline", "direct", "haproxy-spliceauto", "haproxy-splice", "nginx"]


def _cell(values, fmt, rounds):
    if not values:
        return "—"
    text = fmt.format(statistics.median(values))
    if len(values) > 1:
        text += f" ({fmt.format(min(values))}–{fmt.format(max(values))})"
    if len(values) < rounds:
        text += f" n={len(values)}/{rounds}"
    return text


def _escape(text):
    return text.replace("|", "\\|").replace("\n", " ")


def medians(records, workload, targets):
    """{target: {metric: median}} over the rounds that measured it."""
    out = {}
    for t in targets:
        runs = [r for r in records if r["workload"] == workload and r["target"] == t]
        out[t] = {}
        for metric, _, _ in WORKLOADS[workload][1]:
            values = [r["metrics"][metric] for r in runs if metric in r["metrics"]]
            if values:
                out[t][metric] = statistics.median(values)
    return out


def workload_table(records, workload, targets, rounds, note=""):
    title, metrics = WORKLOADS[workload]
    lines = [f"### {title}", ""]
    if note:
        lines += [note, ""]
    header = ["target"] + [label for _, label, _ in metrics]
    if workload == "evenness":
        header.append("connections per worker, each round")
    header.append("errors / crashes")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for t in targets:
        runs = sorted((r for r in records if r["workload"] == workload and r["target"] == t),
                      key=lambda r: r["round"])
        if runs and all(r["not_applicable"] for r in runs):
            lines.append(f"| {t} | " + " | ".join(["n/a"] * (len(header) - 1)) + " |")
            continue
        row = [t]
        for metric, _, fmt in metrics:
            row.append(_cell([r["metrics"][metric] for r in runs if metric in r["metrics"]],
                             fmt, rounds))
        if workload == "evenness":
            row.append(", ".join("/".join(str(c) for c in r["raw"].get("per_worker", []))
                                 or "—" for r in runs))
        errors = [f"r{r['round'] + 1}: {'; '.join(r['errors'])}" for r in runs if r["errors"]]
        if not runs:
            errors = ["not run"]
        row.append(_escape("; ".join(errors)) if errors else "none")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines += ratio_table(records, workload, targets)
    busy = [r["raw"]["other_cpu_pct"] for r in records
            if r["workload"] == workload and "other_cpu_pct" in r["raw"] and not r["not_applicable"]]
    if busy:
        lines += [f"Other processes on the machine used {statistics.median(busy):.0f}% of its "
                  f"CPUs during these runs (median; up to {max(busy):.0f}%).", ""]
    return lines


def paired_ratios(records, workload, target, metric):
    """weir / target for each round in which both measured `metric`. Within a round the
    targets run back to back, so a change of the machine's speed between rounds (on a shared
    VM this swings figures by 2x for minutes at a time) divides out; the ratio of two medians
    taken over different rounds does not."""
    per_round = {}
    for r in records:
        if r["workload"] == workload and r["target"] in ("weir", target) \
                and metric in r["metrics"]:
            per_round.setdefault(r["round"], {})[r["target"]] = r["metrics"][metric]
    return [v["weir"] / v[target] for _, v in sorted(per_round.items())
            if "weir" in v and v.get(target)]


def ratio_table(records, workload, targets):
    if "weir" not in targets:
        return []
    med = medians(records, workload, targets)
    # A column with no figure at all (direct for the memory workloads, say) says nothing.
    others = [t for t in RATIO_TO if t in targets and t != "weir"
              and any(m in med[t] for m, _, _ in WORKLOADS[workload][1])]
    if not others:
        return []
    lines = ["| weir / target, median of per-round ratios (min–max) | "
             + " | ".join(f"weir/{t}" for t in others) + " |",
             "|" + "---|" * (len(others) + 1)]
    for metric, label, _ in WORKLOADS[workload][1]:
        if "↑" not in label and "↓" not in label:
            continue  # a figure of the load generator, not of the target
        row = [label]
        for t in others:
            ratios = paired_ratios(records, workload, t, metric)
            row.append(_cell(ratios, "{:.2f}", len(ratios)) if ratios else "n/a")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    return lines


def syscall_lines(records, targets):
    """Per target, its system calls per connection by call, busiest first: for each call the
    median over rounds of calls / requests (failed calls in parentheses)."""
    lines = []
    for t in targets:
        runs = [r for r in records if r["workload"] == "syscalls" and r["target"] == t
                and r["raw"].get("calls") and r["raw"].get("requests")]
        if not runs:
            continue
        per_call = {}
        for r in runs:
            for name, (calls, errors) in r["raw"]["calls"].items():
                per_call.setdefault(name, ([], []))
                per_call[name][0].append(calls / r["raw"]["requests"])
                per_call[name][1].append(errors / r["raw"]["requests"])
        # A call missing from a round counts as 0 in that round.
        rows = sorted(((statistics.median(c + [0.0] * (len(runs) - len(c))),
                        statistics.median(e + [0.0] * (len(runs) - len(e))), name)
                       for name, (c, e) in per_call.items()), reverse=True)
        total = statistics.median(r["metrics"]["syscalls_per_conn"] for r in runs)
        named = [f"{c:.2f} {name}" + (f" ({e:.2f} failed)" if e >= 0.005 else "")
                 for c, e, name in rows[:SYSCALLS_LISTED]]
        rest = sum(c for c, _, _ in rows[SYSCALLS_LISTED:])
        if rest >= 0.005:
            named.append(f"{rest:.2f} in {len(rows) - SYSCALLS_LISTED} other calls")
        lines.append(f"- {t}: {total:.1f} per conn: " + ", ".join(named))
    if lines:
        lines = ["Per call, per connection (median over rounds of calls / wrk's completed "
                 "requests):", ""] + lines + [""]
    return lines


def flood_lines(records, targets):
    """Per target, what became of the flood's attempts (medians over rounds, % of attempts):
    refused at the SYN, accepted (then reset by the flood, or by the proxy before the flood
    looked), no answer within 1 s."""
    lines = []
    for t in targets:
        runs = [r["raw"]["flood_counts"] for r in records if r["workload"] == "denied-flood"
                and r["target"] == t and r["raw"].get("flood_counts", {}).get("attempts")]
        if not runs:
            continue

        def pct(key):
            return statistics.median(100 * c[key] / c["attempts"] for c in runs)

        attempts = statistics.median(c["attempts"] for c in runs)
        for c in runs:
            c.setdefault("reset", 0)
        cpu = [100 * c["cpu_seconds"] / c["seconds"] for c in runs
               if c.get("cpu_seconds") is not None and c["seconds"] > 0]
        lines.append(f"- {t}: {attempts:.0f} attempts per run; refused at SYN "
                     f"{pct('refused'):.1f}%, accepted and reset by the flood "
                     f"{pct('established'):.1f}%, accepted and reset by the proxy first "
                     f"{pct('reset'):.1f}%, no answer within 1 s {pct('timed_out'):.1f}%"
                     + (f"; the flood process took {statistics.median(cpu):.0f}% of a CPU"
                        if cpu else ""))
    if lines:
        lines = ["What became of the flood's attempts (median over rounds):", ""] + lines + [""]
    return lines


def tls_verdicts(records, targets):
    """One line per target of issue 10: met or missed, with the ratio and the medians."""
    if "weir" not in targets or "nginx" not in targets:
        return []
    lines = []
    for workload, metric, what, bound, higher in TLS_TARGETS:
        if not any(r["workload"] == workload for r in records):
            continue
        label, fmt = next((l, f) for m, l, f in WORKLOADS[workload][1] if m == metric)
        ratios = paired_ratios(records, workload, "nginx", metric)
        if not ratios:
            lines.append(f"- **not measured**: {what} (no round measured both weir and nginx)")
            continue
        ratio = statistics.median(ratios)
        met = ratio >= bound if higher else ratio <= bound
        med = medians(records, workload, ["weir", "nginx"])
        unit = label.rsplit(" ", 1)[0]
        errors = sum(1 for r in records if r["workload"] == workload and r["target"] == "weir"
                     and r["errors"])
        lines.append(f"- **{'met' if met else 'missed'}**: {what}: weir/nginx "
                     f"{_cell(ratios, '{:.2f}', len(ratios))} (bound {bound:.2f}); medians "
                     f"weir {fmt.format(med['weir'].get(metric, float('nan')))}, nginx "
                     f"{fmt.format(med['nginx'].get(metric, float('nan')))} {unit}"
                     + (f"; weir had errors in {errors} round(s)" if errors else ""))
    if lines:
        lines = ["### Issue 10's TLS targets (weir against nginx)", ""] + lines + [""]
    return lines


def _log_summary(target, entries):
    """One bullet per target: how many lines in which workload, and one example of each kind
    of line (lines that differ only in numbers are one kind)."""
    where = {}
    kinds = {}
    for rnd, workload, line in entries:
        label = workload if rnd is None else f"{workload} r{rnd + 1}"
        where[label] = where.get(label, 0) + 1
        kinds.setdefault(re.sub(r"[0-9]+", "N", line), [0, line])[0] += 1
    out = [f"- {target}: {len(entries)} line(s) ("
           + ", ".join(f"{k}: {n}" for k, n in where.items()) + ")"]
    for n, example in sorted(kinds.values(), key=lambda kv: -kv[0])[:5]:
        out.append(f"  - {n} x `{_escape(example[:240])}`")
    if len(kinds) > 5:
        out.append(f"  - … {len(kinds) - 5} more kinds in results.json")
    return out


def _flood_rate(cfg):
    rate = cfg.get("flood_rate")
    return f"{rate} attempts/s" if rate else "as fast as it can"


def _negotiated(records, workload):
    seen = sorted({f"{r['raw']['protocol']} {r['raw']['cipher']}" for r in records
                   if r["workload"] == workload and r["raw"].get("protocol")})
    return f" Negotiated: {', '.join(seen)}." if seen else ""


def markdown(results):
    meta, cfg = results["meta"], results["settings"]
    records, targets, rounds = results["records"], results["targets"], cfg["rounds"]
    lines = [
        "# weir side-by-side benchmark",
        "",
        f"{meta['date']} · {meta['cpus']} CPUs · kernel {meta['kernel']} · "
        f"weir {meta['weir_version']} ({meta['weir_commit']})",
        "",
    ] + ([f"weir-baseline: {meta['baseline_binary']}", ""] if meta.get("baseline_binary")
         else []) + ([f"event_engine: weir {meta.get('weir_engine', 'default')}, weir-baseline "
                      f"{meta.get('baseline_engine', 'default')}", ""]
                     if meta.get("weir_engine", "default") != "default"
                     or meta.get("baseline_engine", "default") != "default" else []) + [
        f"{rounds} round(s), targets rotated each round; {cfg['workers']} workers/threads per "
        f"proxy; everything on 127.0.0.1. Cells: median (min–max over rounds); ↑ higher is "
        f"better, ↓ lower is better. Proxy CPU = utime+stime of all the proxy's processes.",
        "",
        "Tools: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        "",
        f"Load average (1 min) before the run: {meta['loadavg_start']:.2f} (near 0 on a quiet "
        f"machine). Under each table: how much CPU other processes took while it was "
        f"measured; every figure shares the cores with them. Measuring took "
        f"{meta.get('measure_seconds', '?')} s.",
        "",
    ]
    notes = {
        "bulk1": f"iperf3 client → target → iperf3 server, {cfg['bulk_seconds']} s per run.",
        "bulk4": f"Same with 4 parallel streams, {cfg['bulk_seconds']} s per run.",
        "cps": f"wrk -t{cfg['wrk_threads']} -c{cfg['wrk_connections']} -d{cfg['http_seconds']}s "
               f"-H 'Connection: close' → target → nginx returning \"ok\\n\": every request is "
               f"a new client and backend connection.",
        "syscalls": f"`strace -c -f -p <each worker>` (HAProxy: its one process, every thread) "
                    f"attached while `wrk -t1 -c{cfg.get('syscall_connections')} "
                    f"-d{cfg.get('syscall_seconds')}s -H 'Connection: close'` runs through the "
                    f"target; all calls counted / requests wrk completed. strace stops the "
                    f"workers at every call, so they run many times slower: the req/s here "
                    f"only show how much, and no timed figure is taken while it is attached.",
        "keepalive": f"wrk -t{cfg['wrk_threads']} -c{cfg['wrk_connections']} "
                     f"-d{cfg['http_seconds']}s, keep-alive.",
        "idle": f"Fresh proxy, then {cfg['idle_conns']} connections opened through it to the "
                f"nginx backend and held; (RSS holding − RSS fresh) / connections, measured "
                f"once just opened and once after one request/response on each.",
        "evenness": f"{cfg['even_conns']} connections opened in bursts of 200 and held; "
                    f"established accepted sockets per worker process (from /proc). n/a for "
                    f"HAProxy: one process, threads.",
    }
    tls_seconds, tls_clients = cfg.get("tls_seconds"), cfg.get("tls_clients")
    tls_common = ("TLS 1.3, one ECDSA P-256 certificate for all; `direct` is the backend nginx "
                  "terminating TLS itself; haproxy-splice n/a (TLS termination cannot splice: "
                  "haproxy-spliceauto is HAProxy's row).")
    notes.update({
        "tls-handshake": f"{tls_clients} tlsclient.py processes, {tls_seconds} s, each "
                         f"connection a full TLS 1.3 handshake (no session offered; every "
                         f"connection checked not resumed) + `GET /` with Connection: close → "
                         f"target terminating TLS → nginx returning \"ok\\n\". Proxy CPU "
                         f"per handshake is the fair figure: the client takes most of the 2 "
                         f"cores. {tls_common}" + _negotiated(records, "tls-handshake"),
        "tls-keepalive-h1": f"h2load --h1 -t{cfg['wrk_threads']} -c{cfg['wrk_connections']} "
                            f"-D{tls_seconds}, keep-alive, ALPN http/1.1. {tls_common}",
        "tls-keepalive-h2": f"h2load -t{cfg['wrk_threads']} -c{cfg['wrk_connections']} "
                            f"-m{cfg.get('h2_streams')} -D{tls_seconds}, ALPN h2; the proxies "
                            f"forward the decrypted HTTP/2 to the backend's cleartext HTTP/2 "
                            f"port (prior knowledge). {tls_common}",
        "tls-bulk": f"h2load --h1 -c1 -D{tls_seconds} fetching a {configs.BULK_BYTES >> 20} MiB "
                    f"file over and over through the terminating target. {tls_common}",
        "tls-passthrough-cps": f"As tls-handshake, but the target does not terminate: it routes "
                               f"by SNI to the backend nginx, which terminates TLS (its default "
                               f"route is the plaintext backend, where a misrouted handshake "
                               f"fails). haproxy-splice n/a." + _negotiated(records,
                                                                           "tls-passthrough-cps"),
        "denied-flood": f"wrk -t{cfg['wrk_threads']} -c{cfg['wrk_connections']} "
                        f"-d{cfg['http_seconds']}s -H 'Connection: close' from 127.0.0.1 → the "
                        f"target's `acl` service, which refuses {configs.DENIED_SOURCE} → nginx "
                        f"returning \"ok\\n\"; once alone, once while the flood tool opens "
                        f"connections from {configs.DENIED_SOURCE} to the same port "
                        f"({_flood_rate(cfg)}, at most {cfg.get('flood_in_flight')} pending, "
                        f"each reset once accepted) in the same round. weir refuses in its "
                        f"sk_reuseport program (the kernel answers the SYN with a RST), HAProxy "
                        f"(`tcp-request connection reject`) and nginx (`deny`, which logs a line "
                        f"per refusal at its default level) after accept(). The flood shares the "
                        f"{meta['cpus']} CPUs with everything else: what it costs the kernel "
                        f"and itself is in every row. direct and haproxy-splice n/a.",
    })
    for workload in WORKLOADS:
        if any(r["workload"] == workload for r in records):
            lines += workload_table(records, workload, targets, rounds, notes[workload])
            if workload == "syscalls":
                lines += syscall_lines(records, targets)
            if workload == "denied-flood":
                lines += flood_lines(records, targets)
    lines += tls_verdicts(records, targets)
    if results["events"]:
        lines += ["### Events", ""]
        lines += [f"- {_escape(e)}" for e in results["events"]]
        lines.append("")
    logs = results["log_lines"]
    if any(logs.values()):
        lines += ["### Warnings and errors the proxies logged", "",
                  "Not counted as errors above: some are expected (iperf3 resets its data "
                  "connections at the end of a test, which nginx logs as errors).", ""]
        for t, entries in logs.items():
            if entries:
                lines += _log_summary(t, entries)
        lines.append("")
    return "\n".join(lines)
