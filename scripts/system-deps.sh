#!/usr/bin/env bash
# The Debian packages the integration tests start, installed when missing and installable:
#   postgresql (the server profile), chromium + chromium-driver (browser tests), openjdk-17-jre-headless (Spark),
#   prometheus (make observe; promtool checks the alert rules, tests/monitoring/test_observe_*.py).
# `make test` runs it (so does .ci/run, with --strict). Where a package cannot be installed (no apt-get, not
# root and no sudo, no network), it says so and exits 0: the tests that need it skip, naming what is missing.
# --strict: exit 1 instead (CI must not skip silently).
set -uo pipefail
strict=0
[ "${1:-}" = "--strict" ] && strict=1

need=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
command -v java >/dev/null 2>&1 || [ -x "${JAVA_HOME:-/nonexistent}/bin/java" ] || need+=(openjdk-17-jre-headless)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0

why=""
if ! command -v apt-get >/dev/null 2>&1; then
  why="apt-get is not available"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else why="not root and no passwordless sudo"; fi
  fi
  if [ -z "$why" ]; then
    echo "system-deps: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
      why="apt-get install ${need[*]} failed"
    fi
  fi
fi
if [ -n "$why" ]; then
  echo "system-deps: ${need[*]} missing and not installed ($why); the tests that need them will skip" >&2
  exit $strict
fi
