# Sourced by scripts/run and scripts/test: make sure Debian packages are present.
# As root it installs what is missing; otherwise it prints the exact command to run and stops.

need_packages() {
  # usage: need_packages "<check command>:<package>" ...
  missing=""
  for pair in "$@"; do
    check="${pair%%:*}"; package="${pair#*:}"
    if ! sh -c "$check" >/dev/null 2>&1; then missing="$missing $package"; fi
  done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = 0 ]; then
    echo "Installing:$missing" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    # policy-rc.d 101: the postgresql package must not start its own cluster; we run private ones.
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
    fi
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    [ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
    true
  else
    echo "Missing packages:$missing" >&2
    echo "Install them with:  sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 1
  fi
}

postgres_present='ls /usr/lib/postgresql/*/bin/initdb || command -v initdb'

need_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "Rust is missing: install it with  curl --proto '=https' -sSf https://sh.rustup.rs | sh  (Rust 1.94 or newer)" >&2
    exit 1
  fi
}
