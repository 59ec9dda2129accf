"""weir's side-by-side benchmark: weir against direct, HAProxy and nginx on 127.0.0.1.

Run it through tests/bench/run.sh, which installs the tools and builds weir first.
"""
