#!/bin/bash
# One database (utf8mb4) per panel and one user per panel with rights on its own database
# only. Passwords come from the secret files Compose mounts under /run/secrets; they reach mysql
# through a 0600 option file and stdin, never argv or the environment.
#
# The mysql image runs this at the first start of an empty data directory; `fab setup` runs it
# again against a running server (docker compose exec -T mysql bash ...). Both are safe: every
# statement is idempotent, and ALTER USER brings passwords in line with the secrets.
set -euo pipefail

secrets=/run/secrets

secret() {
	local value
	value=$(<"$secrets/$1")
	if [[ ! "$value" =~ ^[A-Za-z0-9_-]{16,128}$ ]]; then
		echo "init-db: $secrets/$1 must hold 16 to 128 characters of A-Z a-z 0-9 _ -" >&2
		exit 1
	fi
	printf '%s' "$value"
}

options=$(mktemp)
trap 'rm -f "$options"' EXIT
chmod 600 "$options"
printf '[client]\nuser=root\npassword=%s\n' "$(secret mysql_root_password)" >"$options"

# One database and user per panel: each panel's password is a secret mounted by compose.yaml.
panels=()
for file in "$secrets"/*_db_password; do
	name=$(basename "$file")
	panels+=("${name%_db_password}")
done

{
	for panel in "${panels[@]}"; do
		db="fikaso_${panel}"
		password=$(secret "${panel}_db_password")
		echo "CREATE DATABASE IF NOT EXISTS \`${db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
		echo "CREATE USER IF NOT EXISTS '${db}'@'%' IDENTIFIED BY '${password}';"
		echo "ALTER USER '${db}'@'%' IDENTIFIED BY '${password}';"
		echo "GRANT ALL PRIVILEGES ON \`${db}\`.* TO '${db}'@'%';"
	done
	echo "FLUSH PRIVILEGES;"
} | mysql --defaults-extra-file="$options" --protocol=socket

echo "init-db: databases ${panels[*]/#/fikaso_} and their users are in place"
