"""Config files for the backends and the proxies under test, all on 127.0.0.1.

Every proxy gets the same two services: `bulk` (to the iperf3 server) and `http` (to the nginx
HTTP backend), the same worker count, and timeouts long enough that no idle connection of the
benchmark is closed by a timer (10 minutes).

When TLS workloads run (`tls` is a TlsFiles, else None), every proxy also gets three TLS
services with the one certificate of the run:
  tls-h1    terminates TLS (ALPN http/1.1) and forwards the plaintext to the HTTP backend
  tls-h2    terminates TLS (ALPN h2) and forwards to the backend's cleartext HTTP/2 port
            (prior knowledge): an L4 terminator passes the decrypted bytes on unchanged
  tls-pass  does not terminate: routes by the ClientHello's SNI (TLS_SNI -> the backend's TLS
            port; the default route is the plaintext HTTP backend, so a proxy that failed to
            route by SNI would fail every handshake instead of passing unnoticed)

When the denied-flood workload runs (`acl` true), every proxy also gets the service `acl`: the
HTTP backend again, behind an access list that refuses DENIED_SOURCE and lets the rest in.
"""

from dataclasses import dataclass

NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

# Connections the benchmark may hold at once through one proxy: 5,000 idle ones, two sockets
# each, under a per-process limit of 20,000 descriptors.
MAX_CONNECTIONS = 8000

# The client address the `acl` service refuses (the flood's source), as each proxy spells it.
DENIED_SOURCE = "127.0.0.2"

# The name in the certificate, sent as SNI by every TLS client of the benchmark.
TLS_SNI = "bench.example"
# The backend's large file (sparse: served from zero pages) for the TLS bulk workload.
BULK_PATH = "/big"
BULK_BYTES = 64 << 20


@dataclass
class TlsFiles:
    """The run's certificate: one ECDSA P-256 self-signed certificate for TLS_SNI."""
    cert: str
    key: str
    combined: str  # cert then key in one file: HAProxy's `crt` wants that
    client_conf: str  # OPENSSL_CONF of tlsclient.py: the one TLS 1.3 cipher suite it offers


# Python's ssl module cannot choose TLS 1.3 cipher suites, and the servers differ in whose order
# wins (weir picks its own, HAProxy and nginx take the client's): left alone, weir negotiated
# AES-128-GCM and the others AES-256-GCM with SHA-384. tlsclient.py offers only the suite h2load
# puts first, so every target and every TLS workload runs the same cipher.
TLS_CLIENT_SUITE = "TLS_AES_128_GCM_SHA256"
TLS_CLIENT_CONF = f"""# OpenSSL configuration of the benchmark's TLS client (generated)
openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_section
[ssl_section]
system_default = system_default_section
[system_default_section]
Ciphersuites = {TLS_CLIENT_SUITE}
"""


def _nginx_tls_lines(tls, indent):
    pad = " " * indent
    return (f"{pad}ssl_certificate {tls.cert};\n{pad}ssl_certificate_key {tls.key};\n"
            f"{pad}ssl_protocols TLSv1.2 TLSv1.3;\n")


def nginx_http_backend(prefix, ports, workers, tls=None, bulk_file=None):
    """nginx answering every request with a 3-byte body; keep-alive and the wait for a first
    request last 10 minutes so that it can also hold the idle connections. With tls, it also
    serves bulk_file at BULK_PATH, listens on ports["h2c"] (cleartext HTTP/2 with prior
    knowledge) and on ports["tls"] (TLS with HTTP/2 and HTTP/1.1: the passthrough backend, and
    `direct` for the TLS workloads)."""
    ok = '        location / {\n            return 200 "ok\\n";\n        }\n'
    bulk = extra = ""
    if tls:
        bulk = (f"        location = {BULK_PATH} {{\n            alias {bulk_file};\n"
                f"            default_type application/octet-stream;\n        }}\n")
        extra = (f"\n    server {{\n        listen 127.0.0.1:{ports['h2c']} http2 reuseport "
                 f"backlog=4096;\n{ok}    }}\n"
                 f"\n    server {{\n        listen 127.0.0.1:{ports['tls']} ssl http2 reuseport "
                 f"backlog=4096;\n{_nginx_tls_lines(tls, 8)}{ok}{bulk}    }}\n")
    return f"""# nginx HTTP backend for the weir benchmark (generated)
worker_processes {workers};
worker_rlimit_nofile 20000;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;

events {{
    worker_connections 16000;
}}

http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    keepalive_timeout 600s;
    keepalive_requests 1000000;
    client_header_timeout 600s;
    sendfile on;

    server {{
        listen 127.0.0.1:{ports["http"]} reuseport backlog=4096;
{ok}{bulk}    }}
{extra}}}
"""


def _haproxy_tls(ports, backends, tls):
    """tls-h1 and tls-h2 terminate (`bind ... ssl crt`; no splicing is possible there: the
    bytes pass through HAProxy's TLS layer), tls-pass routes by `req_ssl_sni`."""
    crt = f"ssl crt {tls.combined} ssl-min-ver TLSv1.2"
    return f"""
listen tls-h1
    bind 127.0.0.1:{ports["tls-h1"]} {crt} alpn http/1.1
    server http1 127.0.0.1:{backends["http"]}

listen tls-h2
    bind 127.0.0.1:{ports["tls-h2"]} {crt} alpn h2
    server h2c1 127.0.0.1:{backends["h2c"]}

frontend tls-pass
    bind 127.0.0.1:{ports["tls-pass"]}
    tcp-request inspect-delay 5s
    tcp-request content accept if {{ req_ssl_hello_type 1 }}
    use_backend tls-backend if {{ req_ssl_sni -i {TLS_SNI} }}
    default_backend http-backend

backend tls-backend
    server tls1 127.0.0.1:{backends["tls"]}

backend http-backend
    server http1 127.0.0.1:{backends["http"]}
"""


def _haproxy_acl(ports, backends):
    """The refusal HAProxy has before any byte is read: it accept()s, then closes."""
    return f"""
listen acl
    bind 127.0.0.1:{ports["acl"]}
    tcp-request connection reject if {{ src {DENIED_SOURCE} }}
    server acl1 127.0.0.1:{backends["http"]}
"""


def haproxy(ports, backends, workers, splice, tls=None, stats_socket=None):
    """HAProxy in TCP mode with nbthread = workers. splice is "auto" (option splice-auto) or
    "both" (option splice-request + option splice-response). With tls, the TLS services too.
    With stats_socket (a path), the `acl` service too, and a stats socket there from which its
    count of refused connections is read."""
    splice_lines = {
        "auto": "    option splice-auto\n",
        "both": "    option splice-request\n    option splice-response\n",
    }[splice]
    sections = ""
    for service in ("bulk", "http"):
        sections += f"""
listen {service}
    bind 127.0.0.1:{ports[service]}
    server {service}1 127.0.0.1:{backends[service]}
"""
    if stats_socket:
        sections += _haproxy_acl(ports, backends)
    stats = f"    stats socket {stats_socket} mode 600 level user\n" if stats_socket else ""
    return f"""# HAProxy under test for the weir benchmark (generated)
global
    nbthread {workers}
    maxconn {MAX_CONNECTIONS}
    maxpipes 1500
{stats}
defaults
    mode tcp
    maxconn {MAX_CONNECTIONS}
    backlog 4096
    timeout connect 5s
    timeout client 10m
    timeout server 10m
{splice_lines}{sections}{_haproxy_tls(ports, backends, tls) if tls else ""}"""


def _nginx_stream_tls(ports, backends, tls):
    """tls-h1 and tls-h2 terminate (`listen ... ssl`, session tickets and cache at their
    defaults), tls-pass routes by `ssl_preread` + a map of the SNI."""
    return f"""
    upstream h2c {{
        server 127.0.0.1:{backends["h2c"]};
    }}
    upstream tls-backend {{
        server 127.0.0.1:{backends["tls"]};
    }}
    server {{
        listen 127.0.0.1:{ports["tls-h1"]} ssl reuseport backlog=4096;
{_nginx_tls_lines(tls, 8)}        ssl_alpn http/1.1;
        proxy_pass http;
    }}
    server {{
        listen 127.0.0.1:{ports["tls-h2"]} ssl reuseport backlog=4096;
{_nginx_tls_lines(tls, 8)}        ssl_alpn h2;
        proxy_pass h2c;
    }}
    map $ssl_preread_server_name $tls_route {{
        {TLS_SNI} tls-backend;
        default http;
    }}
    server {{
        listen 127.0.0.1:{ports["tls-pass"]} reuseport backlog=4096;
        ssl_preread on;
        proxy_pass $tls_route;
    }}
"""


# What nginx logs (at level error, its default) for each connection an access rule refused:
# the benchmark counts these lines in ACL_ERROR_LOG.
NGINX_DENIED_LINE = "access forbidden by rule"
ACL_ERROR_LOG = "acl-error.log"


def _nginx_stream_acl(prefix, ports):
    """The access module refuses in its access phase, right after accept(): nginx closes the
    connection and logs one line at level error (its default level, in a file of its own)."""
    return f"""
    server {{
        listen 127.0.0.1:{ports["acl"]} reuseport backlog=4096;
        deny {DENIED_SOURCE};
        allow all;
        error_log {prefix}/{ACL_ERROR_LOG} error;
        proxy_pass http;
    }}
"""


def nginx_stream(prefix, ports, backends, workers, tls=None, acl=False):
    """nginx's stream module: reuseport listeners (one socket per worker), proxy_pass to an
    upstream of one server. With tls, the TLS services too; with acl, the `acl` service."""
    blocks = ""
    for service in ("bulk", "http"):
        blocks += f"""
    upstream {service} {{
        server 127.0.0.1:{backends[service]};
    }}
    server {{
        listen 127.0.0.1:{ports[service]} reuseport backlog=4096;
        proxy_pass {service};
    }}
"""
    extra = (_nginx_stream_tls(ports, backends, tls) if tls else "") \
        + (_nginx_stream_acl(prefix, ports) if acl else "")
    return f"""# nginx (stream) under test for the weir benchmark (generated)
load_module {NGINX_STREAM_MODULE};
worker_processes {workers};
worker_rlimit_nofile 20000;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;

events {{
    worker_connections 16000;
}}

stream {{
    proxy_connect_timeout 5s;
    proxy_timeout 10m;
{blocks}{extra}}}
"""


def _weir_pool(name, port):
    return f"""
[pools.{name}]
connect_timeout = "5s"
idle_timeout = "10m"
backends = [{{ address = "127.0.0.1:{port}" }}]
"""


def _weir_tls(ports, backends, tls):
    """tls-h1 and tls-h2 in mode tls-terminate, tls-pass in mode tls-passthrough."""
    certs = f'certificates = [{{ cert = "{tls.cert}", key = "{tls.key}" }}]'
    text = ""
    for service, pool, alpn in (("tls-h1", "http", "http/1.1"), ("tls-h2", "h2c", "h2")):
        text += f"""
[listeners.{service}]
bind = ["127.0.0.1:{ports[service]}"]
mode = "tls-terminate"
pool = "{pool}"
backlog = 4096

[listeners.{service}.tls]
{certs}
alpn = ["{alpn}"]
"""
    return text + f"""
[listeners.tls-pass]
bind = ["127.0.0.1:{ports["tls-pass"]}"]
mode = "tls-passthrough"
pool = "http"
backlog = 4096

[listeners.tls-pass.sni]
"{TLS_SNI}" = "tls-backend"
""" + _weir_pool("h2c", backends["h2c"]) + _weir_pool("tls-backend", backends["tls"])


def _weir_acl(ports, deny):
    """The `acl` listener; with deny false (a weir without access lists), the same listener
    without its `deny` key: the plumbing runs, nothing is refused."""
    return f"""
[listeners.acl]
bind = ["127.0.0.1:{ports["acl"]}"]
pool = "http"
backlog = 4096
""" + (f'deny = ["{DENIED_SOURCE}/32"]\n' if deny else "")


def weir(ports, backends, workers, error_log, tls=None, engine=None, acl=None, metrics=None):
    """weir's config. acl: None (no `acl` listener), "deny" (with its access list) or
    "no-deny" (the listener without one). metrics: the port of its Prometheus endpoint on
    127.0.0.1, or None for none."""
    services = ""
    for service in ("bulk", "http"):
        services += f"""
[listeners.{service}]
bind = ["127.0.0.1:{ports[service]}"]
pool = "{service}"
backlog = 4096
""" + _weir_pool(service, backends[service])
    if tls:
        services += _weir_tls(ports, backends, tls)
    if acl:
        services += _weir_acl(ports, acl == "deny")
    return f"""# weir under test for the weir benchmark (generated)
[global]
workers = {workers}
steering = "least-loaded"
access_log = "off"
log_level = "warn"
error_log = "{error_log}"
max_connections = {MAX_CONNECTIONS}
{f'event_engine = "{engine}"' if engine else ""}
{f'metrics = "127.0.0.1:{metrics}"' if metrics else ""}
{services}"""
