# shellcheck shell=bash
# apt-get that waits for another apt-get (an unattended upgrade, a second script installing at the
# same time) instead of failing on its lock: `apt_get ARGS...`, stdout dropped, tried again every 5 s
# for up to 10 minutes while apt's lock is held; any other failure is printed and returned at once.
# Sourced by scripts/services.sh and scripts/go_peer.sh.
apt_get() {
  local err attempt
  for attempt in $(seq 1 120); do
    if err=$(DEBIAN_FRONTEND=noninteractive apt-get "$@" 2>&1 >/dev/null); then
      [ -z "$err" ] || printf '%s\n' "$err" >&2 # warnings (an index not fetched) stay visible
      return 0
    fi
    if ! grep -q "Could not get lock" <<<"$err"; then
      printf '%s\n' "$err" >&2
      return 1
    fi
    [ "$attempt" = 1 ] && echo "apt-get: another apt-get holds its lock; waiting for it" >&2
    sleep 5
  done
  printf '%s\n' "$err" >&2
  return 1
}
