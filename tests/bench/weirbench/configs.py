"""Config files for the backends and the proxies under test, all on 127.0.0.1.

Every proxy gets the same two services: `bulk` (to the iperf3 server) and `http` (to the nginx
HTTP backend), the same worker count, and timeouts long enough that no idle connection of the
benchmark is closed by a timer (10 minutes).
"""

NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

# Connections the benchmark may hold at once through one proxy: 5,000 idle ones, two sockets
# each, under a per-process limit of 20,000 descriptors.
MAX_CONNECTIONS = 8000


def nginx_http_backend(prefix, port, workers):
    """nginx answering every request with a 3-byte body; keep-alive and the wait for a first
    request last 10 minutes so that it can also hold the idle connections."""
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

    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{
            return 200 "ok\\n";
        }}
    }}
}}
"""


def haproxy(ports, backends, workers, splice):
    """HAProxy in TCP mode with nbthread = workers. splice is "auto" (option splice-auto) or
    "both" (option splice-request + option splice-response)."""
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
    return f"""# HAProxy under test for the weir benchmark (generated)
global
    nbthread {workers}
    maxconn {MAX_CONNECTIONS}
    maxpipes 1500

defaults
    mode tcp
    maxconn {MAX_CONNECTIONS}
    backlog 4096
    timeout connect 5s
    timeout client 10m
    timeout server 10m
{splice_lines}{sections}"""


def nginx_stream(prefix, ports, backends, workers):
    """nginx's stream module: reuseport listeners (one socket per worker), proxy_pass to an
    upstream of one server."""
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
{blocks}}}
"""


def weir(ports, backends, workers, error_log):
    services = ""
    for service in ("bulk", "http"):
        services += f"""
[listeners.{service}]
bind = ["127.0.0.1:{ports[service]}"]
pool = "{service}"
backlog = 4096

[pools.{service}]
connect_timeout = "5s"
idle_timeout = "10m"
backends = [{{ address = "127.0.0.1:{backends[service]}" }}]
"""
    return f"""# weir under test for the weir benchmark (generated)
[global]
workers = {workers}
steering = "least-loaded"
access_log = "off"
log_level = "warn"
error_log = "{error_log}"
max_connections = {MAX_CONNECTIONS}
{services}"""
