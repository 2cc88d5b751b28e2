#!/bin/bash
# The official mysql image's entrypoint contract, over MariaDB: MYSQL_ROOT_PASSWORD(_FILE),
# MYSQL_DATABASE, MYSQL_USER/MYSQL_PASSWORD(_FILE), /docker-entrypoint-initdb.d on an empty
# data directory, then mysqld as the mysql user. Unlike the official image it does not export the
# passwords it reads to the processes it starts.
set -euo pipefail

say() { echo "[entrypoint] $*" >&2; }

file_env() {
	local var="$1" file_var="${1}_FILE"
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		say "both $var and $file_var are set; use one"; exit 1
	fi
	if [ -n "${!file_var:-}" ]; then
		printf -v "$var" '%s' "$(< "${!file_var}")"
		unset "$file_var"
	fi
	# Stricter than the official image: the value stays in this shell, so the init scripts and
	# clients it starts never carry it in their environment.
	export -n "${var?}"
}

sql_string() { printf "'%s'" "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g")"; }

wait_for_socket() {
	local deadline=$((SECONDS + 60))
	until mariadb-admin --socket=/run/mysqld/mysqld.sock --user=root ping >/dev/null 2>&1; do
		if [ "$SECONDS" -ge "$deadline" ]; then say "temporary server did not start"; exit 1; fi
		sleep 0.2
	done
}

initialise() {
	if [ -z "${MYSQL_ROOT_PASSWORD:-}" ]; then
		say "database is uninitialized and MYSQL_ROOT_PASSWORD is not set"; exit 1
	fi
	say "initialising the data directory"
	mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=normal \
		--skip-test-db >/dev/null
	runuser -u mysql -- mariadbd --skip-networking --socket=/run/mysqld/mysqld.sock "$@" &
	local pid=$!
	wait_for_socket
	local root_pw
	root_pw=$(sql_string "$MYSQL_ROOT_PASSWORD")
	{
		echo "SET @@SESSION.SQL_LOG_BIN=0;"
		echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $root_pw;"
		echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY $root_pw;"
		echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
		if [ -n "${MYSQL_DATABASE:-}" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"; fi
		if [ -n "${MYSQL_USER:-}" ] && [ -n "${MYSQL_PASSWORD:-}" ]; then
			echo "CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
			if [ -n "${MYSQL_DATABASE:-}" ]; then echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';"; fi
		fi
		echo "FLUSH PRIVILEGES;"
	} | mariadb --socket=/run/mysqld/mysqld.sock --user=root
	local options
	options=$(mktemp)
	chmod 600 "$options"
	printf '[client]\nuser=root\npassword=%s\nsocket=/run/mysqld/mysqld.sock\n' "$MYSQL_ROOT_PASSWORD" > "$options"
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
			*.sh) say "running $f"; runuser -u mysql -- bash "$f" ;;
			*.sql) say "running $f"; mariadb --defaults-extra-file="$options" < "$f" ;;
			*.sql.gz) say "running $f"; gunzip -c "$f" | mariadb --defaults-extra-file="$options" ;;
			*) say "ignoring $f" ;;
		esac
	done
	mariadb-admin --defaults-extra-file="$options" shutdown
	rm -f "$options"
	wait "$pid" || true
	say "initialisation done"
}

if [ "${1:0:1}" = "-" ]; then set -- mysqld "$@"; fi
if [ "$1" = "mysqld" ] || [ "$1" = "mariadbd" ]; then
	shift
	file_env MYSQL_ROOT_PASSWORD
	file_env MYSQL_PASSWORD
	mkdir -p /run/mysqld
	chown mysql:mysql /run/mysqld /var/lib/mysql
	if [ ! -d /var/lib/mysql/mysql ]; then initialise "$@"; fi
	unset MYSQL_ROOT_PASSWORD MYSQL_PASSWORD
	exec runuser -u mysql -- mariadbd "$@"
fi
exec "$@"
