# Shared by check.sh and measure.sh: the nginx backend (settings of tests/bench/weirbench's
# backend), waiting for ports, and the clean-up of every process these scripts started.
work=/tmp/uring-proto
pids=()

start_nginx() {
  mkdir -p "$work/tmp"
  cat >"$work/nginx.conf" <<CONF
worker_processes 2;
worker_rlimit_nofile 20000;
pid $work/nginx.pid;
error_log $work/error.log warn;
daemon off;
events {
    worker_connections 16000;
}
http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $work/tmp/body;
    proxy_temp_path $work/tmp/proxy;
    fastcgi_temp_path $work/tmp/fastcgi;
    uwsgi_temp_path $work/tmp/uwsgi;
    scgi_temp_path $work/tmp/scgi;
    keepalive_timeout 600s;
    keepalive_requests 1000000;
    client_header_timeout 600s;
    sendfile on;
    server {
        listen 127.0.0.1:18081 reuseport backlog=4096;
        location / {
            return 200 "ok\n";
        }
        location = /big {
            alias $work/big.bin;
        }
    }
}
CONF
  nginx -c "$work/nginx.conf" -p "$work/" &
  pids+=($!)
  wait_port 18081
}

# Waits (at most 5 s) until something accepts on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  return 1
}

stop_all() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
