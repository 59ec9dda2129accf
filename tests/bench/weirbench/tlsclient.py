"""Full-handshake TLS load, one connection at a time:

    python3 tlsclient.py PORT SNI SECONDS

For SECONDS, over and over: connect to 127.0.0.1:PORT, full TLS 1.3 handshake with SNI (and
ALPN http/1.1), `GET / HTTP/1.1` with `Connection: close`, read the answer to the end of the
stream, close. Prints one JSON object: connections completed, how many of them resumed a
session (always 0 unless something is wrong: no session is ever offered), errors by kind,
per-connection latencies, the negotiated protocol and cipher, and this process's own CPU time.

Why not wrk or h2load: both resume TLS sessions when they reconnect, so `Connection: close`
through them measures mostly resumed handshakes — nginx's $ssl_session_reused showed 273 of
275 connections of a wrk run resumed, and all but the first of each h2load client. A fresh ssl.SSLSocket here never gets a session to offer, and
session_reused is checked on every connection all the same.

The driver runs several of these processes side by side for concurrency.
"""

import json
import resource
import socket
import ssl
import sys
import time

TIMEOUT_S = 5.0


def one_connection(ctx, port, sni, request):
    """One full cycle. Returns (status code, session reused, protocol, cipher)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname=sni) as tls:
            tls.sendall(request)
            data = b""
            while True:
                chunk = tls.recv(65536)
                if not chunk:
                    break
                data += chunk
            try:
                status = int(data.split(b" ", 2)[1])
            except (IndexError, ValueError):
                status = -1
            cipher = tls.cipher()
            return status, tls.session_reused, tls.version(), cipher[0] if cipher else None


def main():
    port, sni, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the benchmark's own self-signed certificate
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["http/1.1"])
    request = (f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n").encode()

    done, reused, errors, latencies = 0, 0, {}, []
    protocol = cipher = None
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    stop_at = start + seconds
    while True:
        t0 = time.monotonic()
        if t0 >= stop_at:
            break
        try:
            status, was_reused, protocol, cipher = one_connection(ctx, port, sni, request)
        except (OSError, ssl.SSLError) as e:
            kind = type(e).__name__
            errors[kind] = errors.get(kind, 0) + 1
            continue
        if status != 200:
            errors[f"HTTP {status}"] = errors.get(f"HTTP {status}", 0) + 1
            continue
        latencies.append(round((time.monotonic() - t0) * 1000, 3))
        done += 1
        reused += was_reused
    wall = time.monotonic() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(json.dumps({"connections": done, "reused": reused, "errors": errors,
                      "seconds": wall, "latencies_ms": latencies, "protocol": protocol,
                      "cipher": cipher, "client_cpu_s": cpu}))


main()
