#!/bin/bash
# Start the VPS's two daemons; the container lives as long as both do.
set -euo pipefail
install -m 600 /sandbox/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key
install -m 644 /sandbox/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ed25519_key.pub
install -d -m 700 -o deploy -g deploy /home/deploy/.ssh
install -m 600 -o deploy -g deploy /sandbox/authorized_keys /home/deploy/.ssh/authorized_keys
mkdir -p /run/sshd
cron
dockerd >/var/log/dockerd.log 2>&1 &
/usr/sbin/sshd -D -e &
wait -n
echo "vps: a daemon stopped; see /var/log/dockerd.log" >&2
exit 1
