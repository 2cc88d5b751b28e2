#!/bin/bash
# Build only the PHP extensions that the base image lacks. On the official php image this
# installs the build libraries and compiles them; on an image that already has them (such as the
# offline stand-in built from Debian packages) it changes nothing.
set -euo pipefail

missing=()
for ext in "$@"; do
	php -m | grep -qixE "${ext}|zend ${ext}" || missing+=("$ext")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "PHP extensions present: $*"
	exit 0
fi
echo "building PHP extensions: ${missing[*]}"
apt-get update
apt-get install -y --no-install-recommends libicu-dev libzip-dev libpng-dev libjpeg62-turbo-dev \
	libfreetype6-dev libonig-dev
if [[ " ${missing[*]} " == *" gd "* ]]; then
	docker-php-ext-configure gd --with-freetype --with-jpeg
fi
docker-php-ext-install -j"$(nproc)" "${missing[@]}"
rm -rf /var/lib/apt/lists/*
