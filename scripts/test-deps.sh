#!/usr/bin/env bash
# test-deps.sh — install the Debian packages the tests need when missing:
# postgresql (the test database), openssh-server (the real SFTP server the
# connection tests start), prometheus (its promtool checks metrics and alert
# rules). Idempotent and quiet when everything is there.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v promtool >/dev/null || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
echo "test-deps.sh: installing ${need[*]} from Debian's packages" >&2
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
$SUDO apt-get update -qq
# Packages must not start services (no init system here, and none wanted).
DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
